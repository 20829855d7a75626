# Each daemon's command line as nixpkgs' own NixOS module builds it from the
# options the evaluated configuration holds: the words the program receives
# (after systemd's or the shell's word splitting), its own path left out.
# Mirrored from faukah/nixpkgs 3b20077cd82f (the revision of docs/nixos.md);
# each daemon names the file and binding it follows.
#
# For nix-checks' flag_parity test, which requires these to equal configgen's
# runtime model (crates/configgen/src/runtime.rs) for the same JSON config.
# Result: configgen's daemon name -> {
#   argv;     # absent where the module takes no flags from configgen (Grafana)
#   files;    # each path word of argv -> the rendered tree's file it stands
#             # for, following the links the module and nixpkgs put between
#   dataDir;  # where the unit may write, when nixpkgs fixes it
#   listeners; # listeners set through options, not flags (Grafana)
#   secrets;  # secret files the module hands the daemon in Nix options
#   capabilities; # the unit's capability bounding set, without CAP_ (the probe)
#   bindReadOnly; # the unit's BindReadOnlyPaths= (Alloy's container sockets)
# }, for the units that are enabled.
{
  lib,
  pkgs,
}: config: let
  inherit (config.services) prometheus cadvisor loki tempo alloy grafana;
  alertmanager = prometheus.alertmanager;
  node = prometheus.exporters.node;
  blackbox = prometheus.exporters.blackbox;
  tree = toString config.services.homelab-observability.tree;

  # systemd's (and the shell's) splitting of an unquoted command line.
  words = s: lib.filter (w: w != "") (lib.splitString " " (lib.replaceStrings ["\n"] [" "] s));

  # The tree's file a store path stands for: the tree's own path, a
  # `runCommand` whose script begins `ln -s TARGET $out` (the module's
  # blackbox.yml), or one of this file's stand-ins for upstream's checked
  # copies (`linksTo`).
  treeFile = v: let
    s = toString v;
    link = builtins.match "ln -s ([^ \n]+) \\$out.*" (v.script or "");
  in
    if lib.hasPrefix "${tree}/" s
    then lib.removePrefix "${tree}/" s
    else if lib.isAttrs v && v ? linksTo
    then treeFile v.linksTo
    else if link != null
    then treeFile (lib.head link)
    else null;
  # A store file of nixpkgs' making that is a symlink to `target` (its
  # checked copies: `ln -s ${file} $out` followed by a check).
  checkedCopy = name: target:
    pkgs.runCommand name {} "# stands for upstream's checked copy of ${toString target}"
    // {linksTo = target;};
  # A store file nixpkgs generates from its own options.
  generated = name: "/nix/store/generated-by-nixpkgs-${name}";

  filesOf = paths:
    lib.listToAttrs (map (p: lib.nameValuePair (toString p) (treeFile p)) paths);

  daemons = {
    # prometheus/default.nix: `cmdlineArgs`, joined one per line into ExecStart.
    prometheus = lib.optionalAttrs prometheus.enable (let
      p = prometheus;
    in {
      argv = lib.concatMap words (
        p.extraFlags
        ++ [
          "--config.file=${
            if p.enableReload
            then "/etc/prometheus/prometheus.yaml"
            else generated "prometheus.yml"
          }"
          "--web.listen-address=${p.listenAddress}:${toString p.port}"
        ]
        ++ (
          if p.enableAgentMode
          then ["--enable-feature=agent"]
          else [
            "--alertmanager.notification-queue-capacity=${toString p.alertmanagerNotificationQueueCapacity}"
            "--storage.tsdb.path=/var/lib/${p.stateDir}/data/"
          ]
        )
        ++ lib.optional (p.webExternalUrl != null) "--web.external-url=${p.webExternalUrl}"
        ++ lib.optional (p.retentionTime != null) "--storage.tsdb.retention.time=${p.retentionTime}"
        ++ lib.optional (p.webConfigFile != null) "--web.config.file=${toString p.webConfigFile}"
      );
      files = {};
      dataDir = "/var/lib/${p.stateDir}";
      # Remote-write credentials, in the prometheus.yml nixpkgs generates.
      secrets = lib.concatMap (rw:
        lib.optional (rw.bearer_token_file != null) rw.bearer_token_file
        ++ lib.optional (rw.basic_auth != null && rw.basic_auth.password_file != null) rw.basic_auth.password_file)
      p.remoteWrite;
    });

    # prometheus/alertmanager.nix: `cmdlineArgs` ("--flag value" words); the
    # unit's preStart (forced by the module) writes the config it reads.
    alertmanager = lib.optionalAttrs alertmanager.enable (let
      a = alertmanager;
      substituted = "/tmp/alert-manager-substituted.yaml";
      installed = builtins.match "install -m 0400 ([^ ]+) ${substituted}\n?" config.systemd.services.alertmanager.preStart;
      source = lib.head installed;
    in {
      argv = lib.concatMap words (
        a.extraFlags
        ++ [
          "--config.file ${substituted}"
          "--web.listen-address ${a.listenAddress}:${toString a.port}"
          "--log.level ${a.logLevel}"
          "--storage.path /var/lib/alertmanager"
          (toString (map (peer: "--cluster.peer ${peer}:9094") a.clusterPeers))
        ]
        ++ lib.optional (a.webExternalUrl != null) "--web.external-url ${a.webExternalUrl}"
        ++ lib.optional (a.logFormat != null) "--log.format ${a.logFormat}"
      );
      files.${substituted} =
        if installed == null
        then null
        # The amtool-checked link of server.nix (one-switch-server checks it).
        else if lib.hasSuffix "-alertmanager-checked.yml" source
        then "alertmanager/alertmanager.yml"
        else treeFile source;
      dataDir = "/var/lib/alertmanager";
    });

    # prometheus/exporters/node.nix: `serviceOpts.serviceConfig.ExecStart`.
    node-exporter = lib.optionalAttrs node.enable {
      argv =
        map (c: "--collector.${c}") node.enabledCollectors
        ++ map (c: "--no-collector.${c}") node.disabledCollectors
        ++ [
          "--web.listen-address"
          "${node.listenAddress}:${toString node.port}"
        ]
        ++ lib.concatMap words node.extraFlags;
      files = {};
    };

    # prometheus/exporters/blackbox.nix: `serviceOpts` (`adjustedConfigFile`).
    blackbox-exporter = lib.optionalAttrs blackbox.enable (let
      b = blackbox;
      configFile =
        if b.enableConfigCheck
        then checkedCopy "checked-blackbox-exporter.conf" b.configFile
        else b.configFile;
    in {
      argv =
        [
          "--web.listen-address"
          "${b.listenAddress}:${toString b.port}"
          "--config.file"
          (toString configFile)
        ]
        ++ lib.concatMap words b.extraFlags;
      files = filesOf [configFile];
    });

    # cadvisor.nix: the unit's `script` (a shell command line: quotes removed).
    cadvisor = lib.optionalAttrs cadvisor.enable {
      argv =
        [
          "-logtostderr=true"
          "-listen_ip=${cadvisor.listenAddress}"
          "-port=${toString cadvisor.port}"
        ]
        ++ cadvisor.extraOptions
        ++ lib.optionals (cadvisor.storageDriver != null) (throw "command-lines.nix: cadvisor's storage driver flags are not mirrored");
      files = {};
    };

    # loki.nix: `serviceConfig.ExecStart` (escapeShellArgs of extraFlags).
    loki = lib.optionalAttrs loki.enable {
      argv = ["--config.file=${toString loki.configFile}"] ++ loki.extraFlags;
      files = filesOf [loki.configFile];
      inherit (loki) dataDir;
    };

    # tracing/tempo.nix: `serviceConfig.ExecStart`; StateDirectory = "tempo".
    tempo = lib.optionalAttrs tempo.enable {
      argv = ["--config.file=${toString tempo.configFile}"] ++ tempo.extraFlags;
      files = filesOf [tempo.configFile];
      dataDir = "/var/lib/tempo";
    };

    # alloy.nix: `serviceConfig.ExecStart`; StateDirectory = "alloy".
    alloy = lib.optionalAttrs alloy.enable {
      argv = ["run" (toString alloy.configPath)] ++ alloy.extraFlags;
      files = filesOf [alloy.configPath];
      dataDir = "/var/lib/alloy";
      bindReadOnly = config.systemd.services.alloy.serviceConfig.BindReadOnlyPaths or [];
    };

    # The module's own unit (probe.nix): ExecStart is escapeShellArgs of the
    # binary and flags.probe, none of which needs quoting.
    homelab-probe = lib.optionalAttrs (config.systemd.services ? homelab-probe) (let
      service = config.systemd.services.homelab-probe.serviceConfig;
      probeToml = lib.elemAt (words service.ExecStart) 2;
    in {
      argv = lib.tail (words service.ExecStart);
      files.${probeToml} = treeFile probeToml;
      capabilities = map (lib.removePrefix "CAP_") service.CapabilityBoundingSet;
    });

    # Grafana reads the grafana.ini nixpkgs writes from services.grafana.settings.
    grafana = lib.optionalAttrs grafana.enable {
      # Settings Grafana reads from a file: `$__file{PATH}`.
      secrets = lib.concatMap (value: let
        file = builtins.match "\\$__file\\{(.*)}" value;
      in
        lib.optional (file != null) (lib.head file)) (
        lib.concatMap (section: lib.filter lib.isString (lib.attrValues section)) (lib.attrValues grafana.settings)
      );
      listeners = [
        {
          purpose = "http";
          address = grafana.settings.server.http_addr;
          port = grafana.settings.server.http_port;
        }
      ];
    };
  };
in
  lib.filterAttrs (_: d: d != {}) daemons
