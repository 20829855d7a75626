# Every command-line flag the module adds to a daemon, in one place. They are
# configgen's runtime model (crates/configgen/src/runtime.rs) decided from the
# same JSON config (`model`): the module cannot read configgen's output at
# evaluation time, so nix-checks' flag_parity test rebuilds each unit's
# command line the way nixpkgs' module does and requires it to equal
# configgen's, flag for flag. Listen addresses, ports and retention, which the
# upstream modules turn into flags themselves, are set in ./common.nix and
# ./server.nix through their own options.
{
  config,
  lib,
  cfg,
  model,
  on,
  tree,
  ...
}: let
  # Where textfile scripts (the reboot check of docs/alerts.md) leave *.prom
  # files: configgen's runtime::NODE_TEXTFILE_DIR, Debian's default.
  nodeTextfileDirectory = "/var/lib/prometheus/node-exporter";
in {
  prometheus =
    # Exemplars carry the trace ids behind the metric-to-trace links.
    ["--enable-feature=exemplar-storage"]
    # Agents remote-write here, and so does Tempo's metrics generator (span metrics).
    ++ lib.optional (model.prometheus.remote_write_receiver || on.tempo) "--web.enable-remote-write-receiver";

  # Without peers Alertmanager still gossips on 0.0.0.0:9094 (TCP and UDP);
  # an empty cluster address turns clustering off, so nothing listens there.
  alertmanager = lib.optional (config.services.prometheus.alertmanager.clusterPeers == []) "--cluster.listen-address=";

  # Not a flag: ./common.nix creates the directory.
  inherit nodeTextfileDirectory;

  node =
    ["--collector.textfile.directory=${nodeTextfileDirectory}"]
    # The systemd collector exports node_systemd_service_restart_total, which
    # the HostSystemdUnitCrashLooping alert counts, only with this flag.
    ++ lib.optional (lib.elem "systemd" model.exporters.node.collectors) "--collector.systemd.enable-restarts-metrics";

  cadvisor = [
    # Without it cAdvisor reports docker containers only, not systemd services.
    "--docker_only=false"
    "--housekeeping_interval=30s"
  ];

  alloy = [
    "--server.http.listen-addr=${model.alloy.listen_address}:${toString model.alloy.port}"
    "--storage.path=${model.alloy.data_dir}"
    "--disable-reporting"
  ];

  probe =
    [
      "--config"
      "${tree}/probe/probe.toml"
    ]
    # libssl uprobes need CAP_SYS_ADMIN (see ./probe.nix)
    ++ lib.optional (!model.exporters.probe.tls) "--no-tls";
}
