# services.homelab-observability: one declaration -> configgen's rendered tree
# (a derivation) -> nixpkgs' own services pointed at files of that tree by path.
# Nothing here reads a build output at evaluation time (no import-from-derivation).
{
  config,
  options,
  lib,
  pkgs,
  ...
}: let
  cfg = config.services.homelab-observability;

  stateDir = "/var/lib/homelab-observability";
  dashboardsDir = "/etc/homelab-observability/grafana/dashboards";
  adminPasswordFile =
    if cfg.grafana.adminPasswordFile != null
    then cfg.grafana.adminPasswordFile
    else "${stateDir}/grafana-admin-password";
  secretKeyFile =
    if cfg.grafana.secretKeyFile != null
    then cfg.grafana.secretKeyFile
    else "${stateDir}/grafana-secret-key";

  docker = config.virtualisation.docker.enable;
  podman = config.virtualisation.podman.enable;
  containerSocket =
    if docker
    then "/var/run/docker.sock"
    else if podman
    then "/run/podman/podman.sock"
    else null;

  discovered = import ./discovery.nix {inherit lib;} {inherit config cfg;};

  model = import ./model.nix {inherit lib;} {
    inherit
      cfg
      discovered
      containerSocket
      dashboardsDir
      adminPasswordFile
      secretKeyFile
      ;
  };

  # The container sockets of the config configgen renders (`alloy.container_sockets`).
  alloyModel = model.alloy or {};
  writtenSockets =
    if alloyModel ? container_sockets
    then alloyModel.container_sockets
    else alloyModel.container_socket or "/var/run/docker.sock";
  containerSockets =
    if writtenSockets == null || writtenSockets == false
    then []
    else lib.toList writtenSockets;

  # Which daemons run, decided by the config configgen renders (typed options
  # and `settings` alike), so that the units and the rendered files agree.
  server = cfg.role == "server";
  on = {
    inherit server;
    node = model.exporters.node.enable or true;
    blackbox = model.exporters.blackbox.enable or true;
    cadvisor = model.exporters.cadvisor.enable or true;
    probe = model.exporters.probe.enable or true;
    alloy = model.alloy.enable or true;
    loki = server && model.loki.enable or true;
    tempo = server && model.tempo.enable or true;
    grafana = server && model.grafana.enable or true;
  };

  configFile = pkgs.writeText "homelab-observability.json" (builtins.toJSON model);

  tree = pkgs.runCommand "homelab-observability-tree" {nativeBuildInputs = [cfg.package];} ''
    configgen render --config ${configFile} --out $out
  '';

  # The few adaptations nixpkgs' services need: scrape fragments as file_sd
  # target groups (services.prometheus has no scrape_config_files option), and
  # the rule groups in one file (services.prometheus.ruleFiles takes files, and
  # promtool checks each at build time).
  # Prometheus' own default, unless the user sets another.
  scrapeTimeout =
    if config.services.prometheus.globalConfig.scrape_timeout != null
    then config.services.prometheus.globalConfig.scrape_timeout
    else "10s";
  wiring =
    pkgs.runCommand "homelab-observability-wiring"
    {
      nativeBuildInputs = [
        pkgs.jq
        pkgs.yq
      ];
    }
    ''
      shopt -s nullglob
      mkdir -p $out/prometheus/file_sd
      for fragment in ${tree}/prometheus/scrape/*.yml; do
        yq . "$fragment" \
          | jq --arg global_timeout ${scrapeTimeout} -f ${./scrape-to-file-sd.jq} \
          > "$out/prometheus/file_sd/$(basename "$fragment" .yml).json"
      done
      yq -y -s '{groups: (map(.groups // []) | add // [])}' ${tree}/prometheus/rules/*.yml /dev/null \
        > $out/prometheus/rules.yml
    '';

  shared = {
    inherit
      config
      options
      lib
      pkgs
      cfg
      model
      on
      tree
      wiring
      stateDir
      dashboardsDir
      adminPasswordFile
      secretKeyFile
      docker
      podman
      containerSockets
      ;
    flags = import ./flags.nix {inherit config lib cfg model on tree;};
  };
in {
  imports = [./options.nix];

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        services.homelab-observability = {
          generatedConfig = model;
          inherit tree;
        };
      }
      (import ./assertions.nix shared)
      (import ./values.nix shared)
      (import ./common.nix shared)
      (import ./server.nix shared)
      (import ./probe.nix shared)
    ]
  );
}
