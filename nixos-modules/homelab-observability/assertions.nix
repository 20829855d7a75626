# Contradictory settings fail evaluation with a message naming the options.
{
  config,
  options,
  lib,
  pkgs,
  cfg,
  model,
  on,
  ...
}: let
  opt = "services.homelab-observability";
  inherit (on) server;

  # homelab-probe's BPF programs read syscall arguments from x86_64 registers.
  inherit (pkgs.stdenv.hostPlatform) isx86_64 system;
  probeDefaulted = options.services.homelab-observability.probe.enable.highestPrio == (lib.mkOptionDefault null).priority;
  redServices = map (s: s.name) (lib.filter (s: s ? red) model.services);

  # Every daemon this host runs, with the port it listens on.
  listeners = lib.filter (l: l.enabled) [
    {
      name = "prometheus";
      enabled = server;
    }
    {
      name = "alertmanager";
      enabled = server;
    }
    {
      name = "loki";
      enabled = on.loki;
    }
    {
      name = "lokiGrpc";
      enabled = on.loki;
    }
    {
      name = "tempo";
      enabled = on.tempo;
    }
    {
      name = "tempoOtlpGrpc";
      enabled = on.tempo;
    }
    {
      name = "grafana";
      enabled = on.grafana;
    }
    {
      name = "node";
      enabled = on.node;
    }
    {
      name = "blackbox";
      enabled = on.blackbox;
    }
    {
      name = "cadvisor";
      enabled = on.cadvisor;
    }
    {
      name = "probe";
      enabled = on.probe;
    }
    {
      name = "alloy";
      enabled = on.alloy;
    }
    {
      name = "otlpGrpc";
      enabled = on.alloy;
    }
    {
      name = "otlpHttp";
      enabled = on.alloy;
    }
  ];
  # Tempo's internal gRPC server and its memberlist (bound to 127.0.0.1 by
  # configgen, on memberlist's default port) listen on fixed ports.
  tempoFixed = [
    {
      name = "tempo gRPC (9095, fixed)";
      port = 9095;
    }
    {
      name = "tempo memberlist (7946, fixed)";
      port = 7946;
    }
  ];
  portOf = l: l.port or cfg.ports.${l.name};
  byPort = lib.groupBy (l: toString (portOf l)) (
    listeners ++ lib.optionals on.tempo tempoFixed
  );
  clashes = lib.filterAttrs (_: ls: lib.length ls > 1) byPort;
  clashMessage = port: ls: "port ${port}: ${
    lib.concatMapStringsSep ", " (l:
      if l ? port
      then l.name
      else "${opt}.ports.${l.name}")
    ls
  }";

  receiverSecrets = lib.listToAttrs (
    lib.concatMap (
      r:
        map (key: lib.nameValuePair "receivers.${r.name}.${key}" r.${key}) (
          lib.filter (key: r ? ${key}) [
            "password_file"
            "token_file"
          ]
        )
    )
    cfg.receivers
  );
  secretFiles = lib.filterAttrs (_: f: f != null) (
    {
      "grafana.adminPasswordFile" = cfg.grafana.adminPasswordFile;
      "grafana.secretKeyFile" = cfg.grafana.secretKeyFile;
      "grafana.smtp.passwordFile" = cfg.grafana.smtp.passwordFile;
    }
    // receiverSecrets
  );
  # Alertmanager refuses a flag given twice (kingpin: "cannot be repeated").
  clusterAddressFlags = lib.filter (lib.hasPrefix "--cluster.listen-address") config.services.prometheus.alertmanager.extraFlags;

  # Upstream options the module cannot share with the user's own definitions:
  # nixpkgs' modules take either a whole file or settings, and the module's
  # files come from configgen's tree. Upstream's own assertion fires too, but
  # does not say what to change.
  exclusive = [
    {
      when = on.loki && config.services.loki.configuration != {};
      message = "services.loki.configuration is set, but ${opt} runs Loki with the file configgen renders (services.loki.configFile), and nixpkgs' Loki takes only one of the two. Move your settings to services.loki.extraFlags (Loki has a command-line flag for most settings, e.g. -querier.max-concurrent=8) or to ${opt}.settings.loki (configgen's keys); or set ${opt}.settings.loki.enable = false to keep your own Loki.";
    }
    {
      when = on.tempo && config.services.tempo.settings != {};
      message = "services.tempo.settings is set, but ${opt} runs Tempo with the file configgen renders (services.tempo.configFile), and nixpkgs' Tempo takes only one of the two. Move your settings to services.tempo.extraFlags (Tempo's command-line flags) or to ${opt}.settings.tempo (configgen's keys); or set ${opt}.tempo.enable = false to keep your own Tempo.";
    }
    {
      when = on.grafana && config.services.grafana.provision.datasources.settings != null;
      message = "services.grafana.provision.datasources.settings is set, but ${opt} provisions Grafana's datasources as a directory (services.grafana.provision.datasources.path), and nixpkgs' Grafana takes only one of the two. Move the entries of services.grafana.provision.datasources.settings.datasources to ${opt}.grafana.extraDatasources: they are provisioned next to the module's.";
    }
    {
      when = on.grafana && config.services.grafana.provision.dashboards.path != null;
      message = "services.grafana.provision.dashboards.path is set, but ${opt} adds its dashboard provider to services.grafana.provision.dashboards.settings.providers, and nixpkgs' Grafana takes only one of the two. List your providers in services.grafana.provision.dashboards.settings.providers instead: they are kept beside the module's.";
    }
  ];

  # services.prometheus takes the rendered jobs as file_sd target groups
  # (./scrape-to-file-sd.jq), which carry no credentials or TLS settings.
  clientSettings = ["basic_auth" "bearer_token_file" "tls_config"];
  unwirableJobs =
    lib.filter (sc: lib.any (k: (sc.${k} or null) != null) clientSettings)
    (model.prometheus.scrape_configs or []);
  inStore = f: lib.hasPrefix builtins.storeDir f;
  relative = f: !lib.hasPrefix "/" f;
in {
  assertions =
    [
      {
        assertion = server || cfg.serverAddress != null || model.host ? ship_to;
        message = ''${opt}: role = "agent" ships everything to a server, but ${opt}.serverAddress is not set. Set it to the server's host name (the server sets ${opt}.acceptAgents = true).'';
      }
      {
        assertion = server || !cfg.acceptAgents;
        message = ''${opt}: acceptAgents = true needs role = "server"; an agent does not receive from other agents.'';
      }
      {
        assertion = clashes == {};
        message = "${opt}: two daemons on one port: ${lib.concatStringsSep "; " (lib.mapAttrsToList clashMessage clashes)}.";
      }
      {
        assertion = on.probe -> isx86_64;
        message = "${opt}.probe.enable: homelab-probe runs on x86_64-linux only (its BPF programs read syscall arguments from x86_64 registers), and this system is ${system}. Set ${opt}.probe.enable = false; request rate, errors and duration (red) are then not measured.";
      }
      {
        assertion = lib.length clusterAddressFlags <= 1;
        message = "services.prometheus.alertmanager.extraFlags: ${opt} turns Alertmanager's cluster gossip off with --cluster.listen-address= (services.prometheus.alertmanager.clusterPeers is empty), and Alertmanager refuses the flag twice. Remove your --cluster.listen-address, or set services.prometheus.alertmanager.clusterPeers to cluster it (gossip then listens on your address).";
      }
      {
        assertion = !server || unwirableJobs == [];
        message = "${opt}.settings.prometheus.scrape_configs: ${lib.concatMapStringsSep ", " (sc: sc.job_name) unwirableJobs} use ${lib.concatStringsSep " / " clientSettings}, which the NixOS module cannot hand to services.prometheus (it wires jobs as file_sd target groups). Add such a job to services.prometheus.scrapeConfigs yourself.";
      }
      {
        assertion = cfg.openFirewall -> cfg.acceptAgents;
        message = "${opt}: openFirewall = true opens the ports agents push to, but acceptAgents = false keeps those daemons on 127.0.0.1.";
      }
    ]
    ++ map (e: {
      assertion = !e.when;
      inherit (e) message;
    })
    exclusive
    ++ lib.mapAttrsToList (name: file: {
      assertion = !(inStore file || relative file);
      message = "${opt}.${name} = \"${file}\": give an absolute path outside the Nix store (the store is world-readable); the file is read at run time.";
    })
    secretFiles;

  warnings =
    lib.optional (server && cfg.serverAddress != null) "${opt}.serverAddress is set but role = \"server\": it is only used by agents and is ignored here."
    ++ lib.optional (!isx86_64 && probeDefaulted && redServices != []) "${opt}.probe.enable defaults to false on ${system} (homelab-probe runs on x86_64-linux only): request rate, errors and duration of ${lib.concatStringsSep ", " redServices} are not measured. Set ${opt}.probe.enable = false to acknowledge.";
}
