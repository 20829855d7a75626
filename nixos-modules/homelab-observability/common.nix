# What runs on every host, server or agent: the exporters and Alloy.
# Ports and config files must agree with the rendered tree, so they are set
# with normal priority (a contradicting definition is an evaluation error);
# listen addresses and extras are defaults a user may override.
{
  config,
  lib,
  pkgs,
  cfg,
  model,
  on,
  tree,
  docker,
  podman,
  flags,
  containerSockets,
  ...
}: let
  inherit (cfg) ports;
  ex = model.exporters;
in {
  services.prometheus.exporters.node = lib.mkIf on.node {
    enable = true;
    listenAddress = lib.mkDefault ex.node.listen_address;
    port = ports.node;
    enabledCollectors = ex.node.collectors;
    extraFlags = flags.node;
  };
  # Root's to write; the exporter only reads it.
  systemd.tmpfiles.rules = lib.optional on.node "d ${flags.nodeTextfileDirectory} 0755 root root -";

  services.prometheus.exporters.blackbox = lib.mkIf on.blackbox {
    enable = true;
    listenAddress = lib.mkDefault ex.blackbox.listen_address;
    port = ports.blackbox;
    # A store path of its own: upstream's config check accepts a path inside
    # the store only when it is a whole store path (lib.isStorePath), and
    # would otherwise try to copy it as a local file.
    configFile = pkgs.runCommand "blackbox.yml" {} "ln -s ${tree}/blackbox/blackbox.yml $out";
  };

  services.cadvisor = lib.mkIf on.cadvisor {
    enable = true;
    listenAddress = lib.mkDefault ex.cadvisor.listen_address;
    port = ports.cadvisor;
    extraOptions = flags.cadvisor;
  };

  services.alloy = lib.mkIf on.alloy {
    enable = true;
    # Every *.alloy file of that directory is loaded.
    configPath = "${tree}/alloy";
    extraFlags = flags.alloy;
  };
  # Reading container logs through the docker/podman API socket, and nginx's
  # log files when they are among the shipped ones.
  systemd.services.alloy = lib.mkIf on.alloy {
    # The rendered config names each socket where configgen's runtime model
    # mounts it (`containers::in_daemon`): under one directory, named after
    # the host path. `-`: a missing socket leaves the unit starting.
    serviceConfig.BindReadOnlyPaths =
      map (
        s: "-${s}:/run/homelab-observability/container-sockets/${lib.replaceStrings ["/"] ["_"] (lib.removePrefix "/" s)}"
      )
      containerSockets;
    serviceConfig.SupplementaryGroups =
      lib.optional (containerSockets != [] && docker) "docker"
      ++ lib.optional (containerSockets != [] && podman && !docker) "podman"
      ++ lib.optional (config.services.nginx.enable
        && lib.any (
          files: lib.hasPrefix "/var/log/nginx/" files.path
        ) (model.alloy.log_files or [])) "nginx";
  };
}
