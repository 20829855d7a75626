# Example configurations and what the module must make of them.
{
  lib,
  pkgs,
  evalHost,
  check,
  holds,
  rendering,
  refused,
  refusedByConfiggen,
  refusedLikeConfiggen,
}: let
  enable = {
    services.homelab-observability.enable = true;
  };

  nginxApp = {
    services.nginx = {
      enable = true;
      virtualHosts."app.local".locations."/".proxyPass = "http://127.0.0.1:8080";
    };
  };

  onAarch64 = {
    _module.args.pkgs = lib.mkForce (pkgs
      // {
        stdenv.hostPlatform = {
          system = "aarch64-linux";
          isx86_64 = false;
        };
      });
  };

  hasPrefixAndSuffix = prefix: suffix: s:
    lib.hasPrefix prefix s && lib.hasSuffix suffix s;
  serviceNamed = name: config: lib.findFirst (s: s.name == name) null config.services.homelab-observability.generatedConfig.services;
  unit = config: name: config.systemd.services.${name};
in {
  one-switch-server = let
    c = evalHost [
      enable
      nginxApp
      {networking.hostName = "nas";}
    ];
    h = c.services.homelab-observability;
    tree = toString h.tree;
    p = c.services.prometheus;
    g = c.services.grafana;
    probe = (unit c "homelab-probe").serviceConfig;
    amConfig = lib.head (builtins.match "install -m 0400 ([^ ]+) .*" (unit c "alertmanager").preStart);
    json = builtins.toJSON h.generatedConfig;
  in
    rendering c [
      (holds "the tree runs configgen render on the JSON config" (
        lib.hasInfix "configgen render --config /nix/store/" h.tree.script
        && lib.hasInfix "homelab-observability.json --out $out" h.tree.script
      ))
      (check "host label" h.generatedConfig.host.name "nas")
      (check "prometheus enabled" p.enable true)
      (check "prometheus on loopback" p.listenAddress "127.0.0.1")
      (check "prometheus port" p.port 9090)
      (check "retention" p.retentionTime "30d")
      (check "exemplars, and the remote-write receiver for Tempo's span metrics" p.extraFlags [
        "--enable-feature=exemplar-storage"
        "--web.enable-remote-write-receiver"
      ])
      (check "external labels" p.globalConfig.external_labels {host = "nas";})
      (check "one scrape config" (map (s: s.job_name) p.scrapeConfigs) ["homelab-observability"])
      (holds "jobs come from the rendered fragments as file_sd" (
        hasPrefixAndSuffix "/nix/store/" "-homelab-observability-wiring/prometheus/file_sd/*.json" (
          lib.head (lib.head (lib.head p.scrapeConfigs).file_sd_configs).files
        )
      ))
      (holds "rules from the tree" (
        lib.all (hasPrefixAndSuffix "/nix/store/" "-homelab-observability-wiring/prometheus/rules.yml") (
          map toString p.ruleFiles
        )
      ))
      (check "alerts go to the local alertmanager" p.alertmanagers [
        {static_configs = [{targets = ["127.0.0.1:9093"];}];}
      ])
      (check "alertmanager on loopback" c.services.prometheus.alertmanager.listenAddress "127.0.0.1")
      (check "alertmanager's cluster gossip (0.0.0.0:9094) turned off" c.services.prometheus.alertmanager.extraFlags [
        "--cluster.listen-address="
      ])
      (holds "alertmanager runs the rendered file, amtool-checked, not upstream's" (
        hasPrefixAndSuffix "/nix/store/" "-alertmanager-checked.yml" amConfig
      ))
      (check "node exporter" {
          inherit (p.exporters.node) enable listenAddress port;
        } {
          enable = true;
          listenAddress = "127.0.0.1";
          port = 9100;
        })
      (check "node collectors" p.exporters.node.enabledCollectors [
        "systemd"
        "processes"
      ])
      (check "textfile directory, and the restart counter for HostSystemdUnitCrashLooping" p.exporters.node.extraFlags [
        "--collector.textfile.directory=/var/lib/prometheus/node-exporter"
        "--collector.systemd.enable-restarts-metrics"
      ])
      (check "the textfile directory exists" c.systemd.tmpfiles.rules ["d /var/lib/prometheus/node-exporter 0755 root root -"])
      (holds "blackbox config is a whole store path (upstream's lib.isStorePath check)" (
        lib.isStorePath p.exporters.blackbox.configFile
      ))
      (check "blackbox config from the tree" p.exporters.blackbox.configFile.script "ln -s ${tree}/blackbox/blackbox.yml $out")
      (check "blackbox on loopback" p.exporters.blackbox.listenAddress "127.0.0.1")
      (check "cadvisor" {
          inherit (c.services.cadvisor) enable listenAddress port;
        } {
          enable = true;
          listenAddress = "127.0.0.1";
          port = 8088;
        })
      (check "loki config from the tree" (toString c.services.loki.configFile) "${tree}/loki/loki.yaml")
      (check "tempo config from the tree" (toString c.services.tempo.configFile) "${tree}/tempo/tempo.yaml")
      (check "alloy config dir from the tree" (toString c.services.alloy.configPath) "${tree}/alloy")
      (holds "alloy on loopback" (lib.elem "--server.http.listen-addr=127.0.0.1:12345" c.services.alloy.extraFlags))
      (check "grafana on loopback" g.settings.server.http_addr "127.0.0.1")
      (check "grafana admin password from a file" g.settings.security.admin_password "$__file{/var/lib/homelab-observability/grafana-admin-password}")
      (check "grafana secret key from a file" g.settings.security.secret_key "$__file{/var/lib/homelab-observability/grafana-secret-key}")
      (check "grafana datasources: a directory of the tree's files" g.provision.datasources.path.script ''
        mkdir $out
        ln -s ${tree}/grafana/provisioning/datasources/* $out/
      '')
      (check "grafana dashboards through provider settings, not a path" g.provision.dashboards.path null)
      (check "the dashboard provider reads the installed dashboards" (map (p: p.options.path) g.provision.dashboards.settings.providers) [
        "/etc/homelab-observability/grafana/dashboards"
      ])
      (check "dashboards installed where the provider looks" (
        toString
        c.environment.etc."homelab-observability/grafana/dashboards".source
      ) "${tree}/grafana/dashboards")
      (check "grafana secrets generated before grafana" (unit c "homelab-observability-grafana-secrets").before [
        "grafana.service"
      ])
      (check "probe reads the rendered probe.toml, TLS off" probe.ExecStart "${toString h.probe.package}/bin/homelab-probe --config ${tree}/probe/probe.toml --no-tls")
      (check "probe runs as a dynamic user" probe.DynamicUser true)
      (check "probe capabilities, as measured by the probe" probe.AmbientCapabilities [
        "CAP_BPF"
        "CAP_PERFMON"
        "CAP_DAC_READ_SEARCH"
        "CAP_SYS_PTRACE"
      ])
      (check "probe capability bounding set" probe.CapabilityBoundingSet probe.AmbientCapabilities)
      (check "probe hardening" {
          inherit
            (probe)
            NoNewPrivileges
            ProtectSystem
            ProtectHome
            PrivateTmp
            PrivateDevices
            ProtectKernelTunables
            ProtectControlGroups
            MemoryDenyWriteExecute
            LockPersonality
            RestrictAddressFamilies
            SystemCallFilter
            SystemCallErrorNumber
            ;
        } {
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          ProtectKernelTunables = true;
          ProtectControlGroups = true;
          MemoryDenyWriteExecute = true;
          LockPersonality = true;
          RestrictAddressFamilies = [
            "AF_INET"
            "AF_INET6"
          ];
          SystemCallFilter = [
            "@system-service"
            "bpf"
            "perf_event_open"
          ];
          SystemCallErrorNumber = "EPERM";
        })
      (check "no memlock rlimit or CAP_SYS_RESOURCE (BPF memory is charged to the cgroup since 5.11)" (probe ? LimitMEMLOCK) false)
      (check "probe starts after tracefs is mounted" {
          inherit (unit c "homelab-probe") wants after;
        } {
          wants = ["sys-kernel-tracing.mount"];
          after = [
            "network.target"
            "sys-kernel-tracing.mount"
          ];
        })
      (check "the nginx vhost is watched" (serviceNamed "app-local" c) {
        name = "app-local";
        http.url = "http://app.local/";
        red.ports = [8080];
        labels.discovered_from = "nginx";
      })
      (holds "no password value in the config, only *_file paths" (!lib.hasInfix "\"password\":" json))
      (check "no firewall port opened" c.networking.firewall.allowedTCPPorts [])
      (check "no warning" c.warnings [])
    ]
    // {
      # tests/alertmanager_listeners.rs runs real Alertmanager with them.
      alertmanagerFlags = c.services.prometheus.alertmanager.extraFlags;
      # The Rust test requires configgen's rendering of this file to be equal.
      sameAsRendered."grafana/provisioning/dashboards/homelab.yaml" = {
        apiVersion = 1;
        providers = map (p: removeAttrs p ["_module"]) g.provision.dashboards.settings.providers;
      };
    };

  agent = let
    c = evalHost [
      enable
      {
        networking.hostName = "media";
        services.homelab-observability = {
          role = "agent";
          serverAddress = "monitor.lan";
        };
      }
    ];
    m = c.services.homelab-observability.generatedConfig;
  in
    rendering c [
      (check "role" m.host.role "agent")
      (check "ships to the server" m.host.ship_to {
        prometheus_remote_write = "http://monitor.lan:9090/api/v1/write";
        loki_push = "http://monitor.lan:3100/loki/api/v1/push";
        otlp_grpc = "monitor.lan:4327";
      })
      (check "no server daemons" (map (s: s.enable) [
          c.services.prometheus
          c.services.prometheus.alertmanager
          c.services.loki
          c.services.tempo
          c.services.grafana
        ]) [
          false
          false
          false
          false
          false
        ])
      (check "exporters, alloy and the probe run" (map (s: s.enable) [
          c.services.prometheus.exporters.node
          c.services.prometheus.exporters.blackbox
          c.services.cadvisor
          c.services.alloy
        ]) [
          true
          true
          true
          true
        ])
      (holds "probe unit" (c.systemd.services ? homelab-probe))
    ];

  server-accepting-agents = let
    c = evalHost [
      enable
      {
        services.homelab-observability = {
          acceptAgents = true;
          openFirewall = true;
        };
      }
    ];
    m = c.services.homelab-observability.generatedConfig;
  in
    rendering c [
      (check "configgen decides the remote-write receiver" m.prometheus.remote_write_receiver true)
      (check "remote-write receiver" c.services.prometheus.extraFlags [
        "--enable-feature=exemplar-storage"
        "--web.enable-remote-write-receiver"
      ])
      (check "prometheus listens for agents" c.services.prometheus.listenAddress "0.0.0.0")
      (check "rendered listeners for agents: remote write, Loki push, Tempo OTLP gRPC" [
          m.prometheus.listen_address
          m.loki.listen_address
          m.tempo.otlp_grpc_listen_address
        ] [
          "0.0.0.0"
          "0.0.0.0"
          "0.0.0.0"
        ])
      (check "firewall opens the push ports" c.networking.firewall.allowedTCPPorts [
        9090
        3100
        4327
      ])
      (check "the rest stays on loopback" [
          m.tempo.listen_address
          m.alertmanager.listen_address
          m.grafana.listen_address
          m.exporters.node.listen_address
        ] [
          "127.0.0.1"
          "127.0.0.1"
          "127.0.0.1"
          "127.0.0.1"
        ])
    ];

  # Agents push to a server without Tempo: the remote-write receiver is
  # configgen's decision from prometheus.remote_write_receiver alone.
  agents-without-tempo = let
    c = evalHost [
      enable
      {
        services.homelab-observability = {
          acceptAgents = true;
          tempo.enable = false;
        };
      }
    ];
  in
    rendering c [
      (check "remote-write receiver for agents" c.services.prometheus.extraFlags [
        "--enable-feature=exemplar-storage"
        "--web.enable-remote-write-receiver"
      ])
    ];

  custom-ports-retention-collectors = let
    c = evalHost [
      enable
      {
        services.homelab-observability = {
          ports = {
            prometheus = 9191;
            alertmanager = 9193;
            node = 9101;
            blackbox = 9116;
            cadvisor = 8089;
            loki = 3101;
            alloy = 12346;
            grafana = 3001;
          };
          retention.metrics = "90d";
          settings.exporters.node.collectors = [
            "systemd"
            "ethtool"
          ];
        };
      }
    ];
  in
    rendering c [
      (check "retention" c.services.prometheus.retentionTime "90d")
      (check "collectors" c.services.prometheus.exporters.node.enabledCollectors [
        "systemd"
        "ethtool"
      ])
    ];

  remote-write = let
    c = evalHost [
      enable
      {
        services.homelab-observability.settings.prometheus.remote_write = [
          {
            url = "https://vm.example.org/api/v1/write";
            bearer_token_file = "/run/secrets/vm-token";
          }
        ];
      }
    ];
  in
    rendering c [
      (check "remote write handed to nixpkgs" (map (lib.filterAttrs (_: v: v != null)) c.services.prometheus.remoteWrite) [
        {
          url = "https://vm.example.org/api/v1/write";
          bearer_token_file = "/run/secrets/vm-token";
        }
      ])
      (check "promtool cannot read the token in the sandbox" c.services.prometheus.checkConfig "syntax-only")
    ];

  discovery = let
    c = evalHost [
      enable
      {
        virtualisation.docker.enable = true;
        services.nginx = {
          enable = true;
          virtualHosts = {
            "jellyfin.example.org" = {
              forceSSL = true;
              locations."/".proxyPass = "http://127.0.0.1:8096";
            };
            "static.lan" = {
              listen = [
                {
                  addr = "0.0.0.0";
                  port = 8081;
                }
              ];
            };
            "~^(?<sub>.+)\\.wild\\.org$" = {};
            "_" = {};
          };
        };
        services.caddy = {
          enable = true;
          virtualHosts = {
            "photos.example.org".extraConfig = "reverse_proxy localhost:2283";
            "http://wiki.lan".extraConfig = "reverse_proxy 127.0.0.1:3001";
            ":8082".extraConfig = "respond 200";
          };
        };
        virtualisation.oci-containers.containers = {
          immich_server = {
            image = "ghcr.io/immich-app/immich-server";
            ports = ["127.0.0.1:2283:3001"];
          };
          pihole = {
            image = "pihole/pihole";
            ports = [
              "53:53/udp"
              "8053:80"
            ];
          };
          worker = {
            image = "busybox";
          };
        };
        # A declared service replaces the discovered one of the same name.
        services.homelab-observability.services.static-lan = {
          http.url = "http://static.lan:8081/health";
          logs.unit = "nginx.service";
        };
      }
    ];
    m = c.services.homelab-observability.generatedConfig;
    svc = name: serviceNamed name c;
  in
    rendering c [
      (check "service names, ordered" (map (s: s.name) m.services) [
        "caddy-8082"
        "immich_server"
        "jellyfin-example-org"
        "photos-example-org"
        "pihole"
        "static-lan"
        "wiki-lan"
        "worker"
      ])
      (check "https nginx vhost with RED on its backend" (svc "jellyfin-example-org") {
        name = "jellyfin-example-org";
        http.url = "https://jellyfin.example.org/";
        red.ports = [8096];
        labels.discovered_from = "nginx";
      })
      (check "declared service wins" (svc "static-lan") {
        name = "static-lan";
        http.url = "http://static.lan:8081/health";
        logs.unit = "nginx.service";
        labels = {};
      })
      (check "caddy https vhost" (svc "photos-example-org") {
        name = "photos-example-org";
        http.url = "https://photos.example.org/";
        red.ports = [2283];
        labels.discovered_from = "caddy";
      })
      (check "caddy plain http vhost" (svc "wiki-lan").http.url "http://wiki.lan/")
      (check "caddy port-only site" (svc "caddy-8082").http.url "http://127.0.0.1:8082/")
      (check "container with a published port" (svc "immich_server") {
        name = "immich_server";
        tcp = "127.0.0.1:2283";
        logs.container = "immich_server";
        labels.discovered_from = "oci-containers";
      })
      (check "udp ports are skipped" (svc "pihole").tcp "127.0.0.1:8053")
      (check "container without ports: logs only" (svc "worker") {
        name = "worker";
        logs.container = "worker";
        labels.discovered_from = "oci-containers";
      })
      (check "alloy reads container logs from docker" m.alloy.container_socket "/var/run/docker.sock")
      (check "alloy may use the docker socket" c.systemd.services.alloy.serviceConfig.SupplementaryGroups [
        "docker"
      ])
      (check "alloy sees the docker socket where its config names it" c.systemd.services.alloy.serviceConfig.BindReadOnlyPaths [
        "-/var/run/docker.sock:/run/homelab-observability/container-sockets/var_run_docker.sock"
      ])
    ];

  # Podman keeps containers' labels in its database only: the probe asks the
  # socket (homelab.red) and its unit may reach it; on a Docker host it reads
  # them on disk and its unit is unchanged.
  podman-host = let
    c = evalHost [
      enable
      {virtualisation.podman.enable = true;}
    ];
    probe = (unit c "homelab-probe").serviceConfig;
  in
    rendering c [
      (check "alloy reads podman's socket" c.services.homelab-observability.generatedConfig.alloy.container_socket "/run/podman/podman.sock")
      (check "the probe may connect to podman's 0660 socket" probe.CapabilityBoundingSet [
        "CAP_BPF"
        "CAP_PERFMON"
        "CAP_DAC_READ_SEARCH"
        "CAP_SYS_PTRACE"
        "CAP_DAC_OVERRIDE"
      ])
      (check "the probe may open unix sockets" probe.RestrictAddressFamilies [
        "AF_INET"
        "AF_INET6"
        "AF_UNIX"
      ])
      (check "rootless users' sockets are under /run/user" probe.ProtectHome "read-only")
    ];

  docker-host-probe = let
    c = evalHost [
      enable
      {virtualisation.docker.enable = true;}
    ];
    probe = (unit c "homelab-probe").serviceConfig;
  in
    rendering c [
      (check "docker's labels are on disk: no socket for the probe" probe.RestrictAddressFamilies [
        "AF_INET"
        "AF_INET6"
      ])
      (check "no home for the probe" probe.ProtectHome true)
      (holds "no CAP_DAC_OVERRIDE" (!lib.elem "CAP_DAC_OVERRIDE" probe.CapabilityBoundingSet))
    ];

  discovery-off = let
    c = evalHost [
      enable
      nginxApp
      {
        services.homelab-observability.discovery.enable = false;
      }
    ];
  in
    rendering c [
      (check "nothing discovered" c.services.homelab-observability.generatedConfig.services [])
      (check "no container socket without docker or podman" c.services.homelab-observability.generatedConfig.alloy.container_socket null)
    ];

  users-own-prometheus-settings = let
    c = evalHost [
      enable
      {
        services.prometheus = {
          retentionTime = "1y";
          globalConfig.scrape_interval = "15s";
          scrapeConfigs = [
            {
              job_name = "my-router";
              static_configs = [{targets = ["192.168.1.1:9100"];}];
            }
          ];
          ruleFiles = ["/etc/prometheus/my-rules.yml"];
          extraFlags = ["--web.enable-admin-api"];
          globalConfig.external_labels.site = "home";
        };
      }
    ];
    p = c.services.prometheus;
  in
    rendering c [
      (check "user's scrape job kept" (map (s: s.job_name) p.scrapeConfigs) [
        "homelab-observability"
        "my-router"
      ])
      (check "user's rule file kept" (lib.length p.ruleFiles) 2)
      (check "user's retention wins over the default" p.retentionTime "1y")
      (check "user's scrape interval wins over the default" p.globalConfig.scrape_interval "15s")
      (check "user's flags kept" p.extraFlags [
        "--enable-feature=exemplar-storage"
        "--web.enable-remote-write-receiver"
        "--web.enable-admin-api"
      ])
      (check "external labels merged" p.globalConfig.external_labels {
        host = "nixos";
        site = "home";
      })
    ];

  settings-pass-through = let
    c = evalHost [
      enable
      {
        services.homelab-observability = {
          receivers = [
            {
              type = "webhook";
              name = "hook";
              url = "http://127.0.0.1:9999/alerts";
            }
          ];
          defaultReceivers = ["hook"];
          settings = {
            network.gateway = "192.168.1.1";
            alerting.routes.critical = ["hook"];
            prometheus.evaluation_interval = "15s";
            services = [
              {
                name = "printer";
                icmp = "192.168.1.30";
              }
            ];
          };
        };
      }
    ];
    m = c.services.homelab-observability.generatedConfig;
  in
    rendering c [
      (check "network from settings" m.network.gateway "192.168.1.1")
      (check "typed and free alerting keys merged" {
          inherit (m.alerting) routes default_receivers;
        } {
          routes.critical = ["hook"];
          default_receivers = ["hook"];
        })
      (check "settings services added" (map (s: s.name) m.services) ["printer"])
      (check "evaluation interval reaches prometheus" c.services.prometheus.globalConfig.evaluation_interval "15s")
      (check "typed prometheus keys kept beside settings" m.prometheus.port 9090)
    ];

  grafana-secrets-from-files = let
    c = evalHost [
      enable
      {
        services.homelab-observability.grafana = {
          adminPasswordFile = "/run/secrets/grafana-admin";
          secretKeyFile = "/run/secrets/grafana-key";
          smtp = {
            enable = true;
            host = "smtp.example.org:587";
            user = "homelab";
            passwordFile = "/run/secrets/smtp";
          };
        };
      }
    ];
    s = c.services.grafana.settings;
  in
    rendering c [
      (check "admin password" s.security.admin_password "$__file{/run/secrets/grafana-admin}")
      (check "secret key" s.security.secret_key "$__file{/run/secrets/grafana-key}")
      (check "smtp password" s.smtp.password "$__file{/run/secrets/smtp}")
      (check "configgen gets the admin password file" c.services.homelab-observability.generatedConfig.grafana.admin_password_file "/run/secrets/grafana-admin")
      (check "configgen gets the secret key and smtp too" {
          inherit (c.services.homelab-observability.generatedConfig.grafana) secret_key_file smtp;
        } {
          secret_key_file = "/run/secrets/grafana-key";
          smtp = {
            host = "smtp.example.org:587";
            user = "homelab";
            password_file = "/run/secrets/smtp";
            from_address = "grafana@localhost";
          };
        })
      (check "nothing to generate" (c.systemd.services ? homelab-observability-grafana-secrets) false)
    ];

  # The parity test compares its config with examples/homelab.toml; here,
  # nixpkgs' Grafana gets the Grafana keys configgen got, as its grafana.ini
  # would have them.
  homelab = let
    c = evalHost [./homelab.nix];
    s = c.services.grafana.settings;
  in
    rendering c [
      (check "root URL with a sub-path, secure cookies" {
          inherit (s.server) root_url serve_from_sub_path;
          inherit (s.security) cookie_secure;
        } {
          root_url = "https://grafana.example.org/grafana/";
          serve_from_sub_path = true;
          cookie_secure = true;
        })
      (check "secret key" s.security.secret_key "$__file{/run/secrets/grafana-secret-key}")
      (check "smtp" s.smtp {
        enabled = true;
        host = "smtp.example.org:587";
        user = "homelab@example.org";
        password = "$__file{/run/secrets/smtp-password}";
        from_address = "grafana@example.org";
      })
      (check "OIDC login" s."auth.generic_oauth" {
        enabled = true;
        name = "Authentik";
        client_id = "grafana";
        client_secret = "$__file{/run/secrets/grafana-oidc-secret}";
        scopes = "openid profile email groups";
        auth_url = "https://auth.example.org/application/o/authorize/";
        token_url = "https://auth.example.org/application/o/token/";
        api_url = "https://auth.example.org/application/o/userinfo/";
        use_pkce = true;
        allow_sign_up = true;
        role_attribute_path = "contains(groups, 'Grafana Admins') && 'Admin' || 'Viewer'";
      })
    ];

  alertmanager-unchecked = let
    c = evalHost [
      enable
      {services.prometheus.alertmanager.checkConfig = false;}
    ];
  in
    rendering c [
      (check "with checkConfig off the rendered file is used as it is" (unit c "alertmanager").preStart ''
        install -m 0400 ${toString c.services.homelab-observability.tree}/alertmanager/alertmanager.yml /tmp/alert-manager-substituted.yaml
      '')
    ];

  users-own-config-texts-are-flagged = let
    c = evalHost [
      enable
      {
        services.prometheus.configText = "scrape_configs: []";
        services.prometheus.alertmanager.configuration.route.receiver = "mine";
      }
    ];
  in {
    checks = [
      (holds "warns that configText drops the homelab jobs" (
        lib.any (lib.hasPrefix "services.prometheus.configText replaces") c.warnings
      ))
      (holds "warns that alertmanager's own configuration is ignored" (
        lib.any (lib.hasPrefix "services.prometheus.alertmanager.configuration/configText are ignored") c.warnings
      ))
    ];
    config = null;
    render = false;
  };

  without-tempo = let
    c = evalHost [
      enable
      {services.homelab-observability.tempo.enable = false;}
    ];
  in
    rendering c [
      (check "no tempo" c.services.tempo.enable false)
      (check "no remote-write receiver without Tempo or agents" c.services.prometheus.extraFlags [
        "--enable-feature=exemplar-storage"
      ])
      (check "tempo disabled in the config" c.services.homelab-observability.generatedConfig.tempo.enable false)
    ];

  # Spans asked for where there is nowhere to send them: configgen names the key.
  traces-without-tempo = refusedByConfiggen "exporters.probe.traces: spans need a trace destination" (evalHost [
    enable
    {
      services.homelab-observability.tempo.enable = false;
      services.homelab-observability.probe.traces = true;
    }
  ]);

  # The probe's switches reach configgen's config; unset, they stay unset (configgen decides).
  probe-traces-and-access-log = let
    on = evalHost [enable];
    off = evalHost [
      enable
      {
        services.homelab-observability.probe.traces = false;
        services.homelab-observability.probe.accessLog = false;
        services.homelab-observability.services.app.red = {
          ports = [8080];
          traces = true;
        };
      }
    ];
  in
    rendering off [
      (check "traces unset by default" on.services.homelab-observability.generatedConfig.exporters.probe.traces null)
      (check "access log unset by default" on.services.homelab-observability.generatedConfig.exporters.probe.access_log null)
      (check "traces off" off.services.homelab-observability.generatedConfig.exporters.probe.traces false)
      (check "access log off" off.services.homelab-observability.generatedConfig.exporters.probe.access_log false)
    ];

  node-without-systemd-collector = let
    c = evalHost [
      enable
      {services.homelab-observability.settings.exporters.node.collectors = ["processes"];}
    ];
  in
    rendering c [
      (check "collectors from settings" c.services.prometheus.exporters.node.enabledCollectors ["processes"])
      (check "no systemd restart flag without the systemd collector" c.services.prometheus.exporters.node.extraFlags ["--collector.textfile.directory=/var/lib/prometheus/node-exporter"])
    ];

  settings-turn-daemons-off = let
    c = evalHost [
      enable
      {
        services.homelab-observability.settings = {
          exporters.cadvisor.enable = false;
          loki.enable = false;
          alloy.enable = false;
        };
      }
    ];
  in
    rendering c [
      (check "no cadvisor" c.services.cadvisor.enable false)
      (check "no loki" c.services.loki.enable false)
      (check "no alloy" c.services.alloy.enable false)
      (check "no stray alloy unit" (c.systemd.services ? alloy) false)
      (check "no firewall port for loki" c.networking.firewall.allowedTCPPorts [])
    ];

  nginx-logs = let
    c = evalHost [
      enable
      nginxApp
      {
        services.homelab-observability.settings.alloy.log_files = [
          {
            job = "nginx";
            path = "/var/log/nginx/*access.log";
          }
        ];
      }
    ];
  in
    rendering c [
      (check "alloy may read nginx's logs" c.systemd.services.alloy.serviceConfig.SupplementaryGroups [
        "nginx"
      ])
    ];

  alertmanager-cluster = let
    c = evalHost [
      enable
      {services.prometheus.alertmanager.clusterPeers = ["am2.lan"];}
    ];
  in
    rendering c [
      (check "with peers, gossip is left to the user's cluster" c.services.prometheus.alertmanager.extraFlags [])
    ];

  alertmanager-cluster-flag-twice = refused "services.prometheus.alertmanager.extraFlags: services.homelab-observability turns Alertmanager's cluster gossip off with --cluster.listen-address=" (evalHost [
    enable
    {services.prometheus.alertmanager.extraFlags = ["--cluster.listen-address=127.0.0.1:9094"];}
  ]);

  users-own-grafana-provisioning = let
    c = evalHost [
      enable
      {
        services.grafana.provision.dashboards.settings.providers = [
          {
            name = "mine";
            options.path = "/var/lib/grafana/my-dashboards";
          }
        ];
        services.homelab-observability.grafana.extraDatasources = [
          {
            name = "Router";
            type = "prometheus";
            uid = "router";
            url = "http://192.168.1.1:9090";
          }
        ];
      }
    ];
    g = c.services.grafana.provision;
    extra = lib.head (builtins.match ".*ln -s ([^ ]+) \\$out/extra-datasources.yaml.*" g.datasources.path.script);
  in
    rendering c [
      (check "the user's dashboard provider is kept beside the module's" (map (p: p.name) g.dashboards.settings.providers) [
        "homelab"
        "mine"
      ])
      # The fake store path is a hash of the file's text.
      (check "extra datasources provisioned next to the module's" extra (toString (pkgs.writeText "extra-datasources.yaml" (builtins.toJSON {
        apiVersion = 1;
        datasources = [
          {
            name = "Router";
            type = "prometheus";
            uid = "router";
            url = "http://192.168.1.1:9090";
          }
        ];
      }))))
    ];

  users-own-loki-configuration = refused "services.loki.configuration is set, but services.homelab-observability runs Loki with the file configgen renders (services.loki.configFile)" (evalHost [
    enable
    {services.loki.configuration.server.http_listen_port = 3101;}
  ]);

  users-own-loki-without-the-modules-loki = let
    c = evalHost [
      enable
      {
        services.loki.configuration.server.http_listen_port = 3101;
        services.homelab-observability.settings.loki.enable = false;
      }
    ];
  in
    rendering c [
      (check "the user's Loki configuration is left alone" c.services.loki.configFile null)
    ];

  users-own-tempo-settings = refused "services.tempo.settings is set, but services.homelab-observability runs Tempo with the file configgen renders (services.tempo.configFile)" (evalHost [
    enable
    {services.tempo.settings.server.http_listen_port = 3201;}
  ]);

  users-own-grafana-datasource-settings = refused "Move the entries of services.grafana.provision.datasources.settings.datasources to services.homelab-observability.grafana.extraDatasources" (evalHost [
    enable
    {
      services.grafana.provision.datasources.settings.datasources = [
        {
          name = "Router";
          type = "prometheus";
          url = "http://192.168.1.1:9090";
        }
      ];
    }
  ]);

  users-own-grafana-dashboards-path = refused "List your providers in services.grafana.provision.dashboards.settings.providers instead" (evalHost [
    enable
    {services.grafana.provision.dashboards.path = "/etc/my-grafana/dashboards.yaml";}
  ]);

  tempo-grpc-clash = refused "port 9095: services.homelab-observability.ports.lokiGrpc, tempo gRPC (9095, fixed)" (evalHost [
    enable
    {services.homelab-observability.ports.lokiGrpc = 9095;}
  ]);

  agent-without-server = refused "serverAddress is not set" (evalHost [
    enable
    {services.homelab-observability.role = "agent";}
  ]);

  port-clash = refused "port 9100: services.homelab-observability.ports.node, services.homelab-observability.ports.cadvisor" (evalHost [
    enable
    {services.homelab-observability.ports.cadvisor = 9100;}
  ]);

  agent-accepting-agents = refused "acceptAgents = true needs role = \"server\"" (evalHost [
    enable
    {
      services.homelab-observability = {
        role = "agent";
        serverAddress = "monitor.lan";
        acceptAgents = true;
      };
    }
  ]);

  firewall-without-agents = refused "openFirewall = true opens the ports agents push to" (evalHost [
    enable
    {services.homelab-observability.openFirewall = true;}
  ]);

  receiver-secret-relative = refused "receivers.mail.password_file = \"secrets/smtp\": give an absolute path outside the Nix store" (evalHost [
    enable
    {
      services.homelab-observability.receivers = [
        {
          type = "email";
          name = "mail";
          to = "me@example.org";
          from = "lab@example.org";
          smarthost = "smtp.example.org:587";
          password_file = "secrets/smtp";
        }
      ];
    }
  ]);

  secret-in-store = refused "give an absolute path outside the Nix store" (evalHost [
    enable
    {services.homelab-observability.grafana.adminPasswordFile = "/nix/store/0000-grafana-password";}
  ]);

  # `settings` are configgen's keys, passed through: configgen's message names
  # the field.
  configgen-refuses-bad-settings = refusedByConfiggen "prometheus.evaluation_interval" (evalHost [
    enable
    {services.homelab-observability.settings.prometheus.evaluation_interval = "soon";}
  ]);

  # Values of typed options configgen would refuse at build time: refused at
  # evaluation with the option's path.
  # Values at the edges of the module's checks that configgen accepts.
  valid-edge-values = rendering (evalHost [
    enable
    {
      services.homelab-observability = {
        scrapeInterval = "1m30s";
        retention.metrics = "1y";
        labels._site = "home";
        services = {
          smb.tcp = "[fd00::1]:445";
          router.icmp = "fd00::1";
          nas_2 = {
            http.url = "https://nas.lan:8443/health?full=1";
            interval = "500ms";
          };
        };
      };
    }
  ]) [];

  empty-host-name = refusedLikeConfiggen "services.homelab-observability.hostName is empty: it is the `host` label of everything this machine sends, and it defaults to networking.hostName" "host.name: must not be empty" (evalHost [
    enable
    {networking.hostName = "";}
  ]);

  bad-http-url = refusedLikeConfiggen "services.homelab-observability.services.nas.http.url = \"nas.lan/health\": not an http:// or https:// URL" "services[0].http.url" (evalHost [
    enable
    {services.homelab-observability.services.nas.http.url = "nas.lan/health";}
  ]);

  bad-service-name = refusedLikeConfiggen "services.homelab-observability.services.\"my nas\": a service name may only contain" "services[0].name" (evalHost [
    enable
    {services.homelab-observability.services."my nas".icmp = "192.168.1.2";}
  ]);

  bad-tcp-target = refusedLikeConfiggen "services.homelab-observability.services.smb.tcp = \"fd00::1:445\": not host:port" "services[0].tcp" (evalHost [
    enable
    {services.homelab-observability.services.smb.tcp = "fd00::1:445";}
  ]);

  bad-route = refusedLikeConfiggen "services.homelab-observability.services.app.red.routes = \"items/{id}\": a route template starts with '/'" "services[0].red.routes[0]" (evalHost [
    enable
    {
      services.homelab-observability.services.app.red = {
        ports = [8080];
        routes = ["items/{id}"];
      };
    }
  ]);

  reserved-label = refusedLikeConfiggen "services.homelab-observability.labels.host = \"nas\": the `host` label is set by configgen" "host.labels.host" (evalHost [
    enable
    {services.homelab-observability.labels.host = "nas";}
  ]);

  bad-label-name = refusedLikeConfiggen "services.homelab-observability.services.app.labels.my-team = \"media\": `my-team` is not a label name" "services[0].labels.my-team" (evalHost [
    enable
    {
      services.homelab-observability.services.app = {
        icmp = "192.168.1.2";
        labels.my-team = "media";
      };
    }
  ]);

  bad-retention = refusedLikeConfiggen "services.homelab-observability.retention.logs = \"30 days\": not a Prometheus duration" "loki.retention" (evalHost [
    enable
    {services.homelab-observability.retention.logs = "30 days";}
  ]);

  zero-scrape-interval = refusedLikeConfiggen "services.homelab-observability.scrapeInterval = \"0s\"" "prometheus.scrape_interval" (evalHost [
    enable
    {services.homelab-observability.scrapeInterval = "0s";}
  ]);

  unknown-default-receiver = refusedLikeConfiggen "services.homelab-observability.defaultReceivers = \"phone\": no receiver is named `phone`" "alerting.default_receivers[0]" (evalHost [
    enable
    {services.homelab-observability.defaultReceivers = ["phone"];}
  ]);

  duplicate-receiver = refusedLikeConfiggen "services.homelab-observability.receivers = \"hook\": two receivers are named `hook`" "duplicate receiver name `hook`" (evalHost [
    enable
    {
      services.homelab-observability.receivers = [
        {
          type = "webhook";
          name = "hook";
          url = "http://127.0.0.1:9999/";
        }
        {
          type = "webhook";
          name = "hook";
          url = "http://127.0.0.1:9998/";
        }
      ];
    }
  ]);

  bad-receiver-url = refusedLikeConfiggen "services.homelab-observability.receivers.hook.url = \"127.0.0.1:9999\": not an http:// or https:// URL" "alerting.receivers[0].url" (evalHost [
    enable
    {
      services.homelab-observability.receivers = [
        {
          type = "webhook";
          name = "hook";
          url = "127.0.0.1:9999";
        }
      ];
    }
  ]);

  red-without-ports = refusedLikeConfiggen "services.homelab-observability.services.app.red = {\"client_ports\":[],\"container\":null,\"ports\":[],\"routes\":[],\"traces\":null,\"unit\":null}: say what to watch: ports, unit, container or client_ports" "services[0].red" (evalHost [
    enable
    {services.homelab-observability.services.app.red.ports = [];}
  ]);

  port-zero = refusedLikeConfiggen "services.homelab-observability.ports.node = 0: port 0 is not a usable port" "exporters.node.port" (evalHost [
    enable
    {services.homelab-observability.ports.node = 0;}
  ]);

  # Links in notifications and alerts point at the URL other devices use.
  external-url = let
    c = evalHost [
      enable
      {services.homelab-observability.settings.alerting.external_url = "http://monitor.lan";}
    ];
  in
    rendering c [
      (check "prometheus" c.services.prometheus.webExternalUrl "http://monitor.lan:9090/")
      (check "alertmanager" c.services.prometheus.alertmanager.webExternalUrl "http://monitor.lan:9093/")
    ];

  probe-with-tls = let
    c = evalHost [
      enable
      {services.homelab-observability.probe.tls = true;}
    ];
    probe = (unit c "homelab-probe").serviceConfig;
  in
    rendering c [
      (holds "libssl uprobes are attempted" (!lib.hasSuffix "--no-tls" probe.ExecStart))
      (check "configgen is told" c.services.homelab-observability.generatedConfig.exporters.probe.tls true)
      (check "CAP_SYS_ADMIN only with TLS" probe.CapabilityBoundingSet [
        "CAP_BPF"
        "CAP_PERFMON"
        "CAP_DAC_READ_SEARCH"
        "CAP_SYS_PTRACE"
        "CAP_SYS_ADMIN"
      ])
    ];

  probe-disabled = let
    c = evalHost [
      enable
      nginxApp
      {services.homelab-observability.probe.enable = false;}
    ];
  in
    rendering c [
      (check "no probe unit" (c.systemd.services ? homelab-probe) false)
      (check "configgen is told (no red_probe scrape job)" c.services.homelab-observability.generatedConfig.exporters.probe.enable false)
      (check "no warning" c.warnings [])
    ];

  # The probe's BPF programs are x86_64-only.
  aarch64-probe-off-by-default = let
    c = evalHost [
      enable
      nginxApp
      onAarch64
    ];
  in
    rendering c [
      (check "no probe unit" (c.systemd.services ? homelab-probe) false)
      (check "configgen is told" c.services.homelab-observability.generatedConfig.exporters.probe.enable false)
      (check "the unmeasured RED watches are named" c.warnings [
        "services.homelab-observability.probe.enable defaults to false on aarch64-linux (homelab-probe runs on x86_64-linux only): request rate, errors and duration of app-local are not measured. Set services.homelab-observability.probe.enable = false to acknowledge."
      ])
      (check "the exporters still run" c.services.prometheus.exporters.node.enable true)
    ];

  aarch64-probe-off-acknowledged = let
    c = evalHost [
      enable
      nginxApp
      onAarch64
      {services.homelab-observability.probe.enable = false;}
    ];
  in
    rendering c [
      (check "no warning" c.warnings [])
    ];

  aarch64-probe-on = refused "homelab-probe runs on x86_64-linux only (its BPF programs read syscall arguments from x86_64 registers), and this system is aarch64-linux" (evalHost [
    enable
    onAarch64
    {services.homelab-observability.probe.enable = true;}
  ]);
}
