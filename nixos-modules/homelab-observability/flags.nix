# Every command-line flag the module adds to a daemon, in one place (they are
# to come from configgen's runtime model). Listen addresses and ports the
# upstream modules turn into flags themselves are set in ./common.nix and
# ./server.nix through their own options.
{
  config,
  lib,
  cfg,
  model,
  on,
  tree,
  ...
}: {
  # Agents remote-write here, and so does Tempo's metrics generator (span metrics).
  prometheus = lib.optional (cfg.acceptAgents || on.tempo) "--web.enable-remote-write-receiver";

  # Without peers Alertmanager still gossips on 0.0.0.0:9094 (TCP and UDP);
  # an empty cluster address turns clustering off, so nothing listens there.
  alertmanager = lib.optional (config.services.prometheus.alertmanager.clusterPeers == []) "--cluster.listen-address=";

  # The systemd collector exports node_systemd_service_restart_total, which
  # the HostSystemdUnitCrashLooping alert counts, only with this flag.
  node = lib.optional (lib.elem "systemd" model.exporters.node.collectors) "--collector.systemd.enable-restarts-metrics";

  # Without it cAdvisor reports docker containers only, not systemd services.
  cadvisor = ["--docker_only=false"];

  alloy = [
    "--server.http.listen-addr=${model.alloy.listen_address}:${toString cfg.ports.alloy}"
    "--disable-reporting"
  ];

  probe =
    [
      "--config"
      "${tree}/probe/probe.toml"
    ]
    # libssl uprobes need CAP_SYS_ADMIN (see ./probe.nix)
    ++ lib.optional (!cfg.probe.tls) "--no-tls";
}
