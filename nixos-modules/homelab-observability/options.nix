{
  config,
  lib,
  pkgs,
  ...
}: let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.services.homelab-observability;

  # JSON values, as configgen reads them (the same shape as pkgs.formats.json's
  # type, built from lib alone so the module evaluates without nixpkgs).
  jsonValue = types.nullOr (
    types.oneOf [
      types.bool
      types.int
      types.float
      types.str
      (types.attrsOf jsonValue)
      (types.listOf jsonValue)
    ]
  );
  jsonAttrs = types.attrsOf jsonValue;

  port = default: what:
    mkOption {
      type = types.port;
      inherit default;
      description = "Port of ${what}.";
    };

  secretFile = what:
    mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/${what}";
      description = ''
        Absolute path of a file holding the ${what}, read at run time by the
        service. It is never copied into the Nix store.
      '';
    };

  serviceModule = {
    freeformType = jsonAttrs;
    options = {
      http = mkOption {
        type = types.nullOr (
          types.submodule {
            freeformType = jsonAttrs;
            options.url = mkOption {
              type = types.str;
              description = "http:// or https:// URL to GET.";
            };
          }
        );
        default = null;
        example = {
          url = "https://photos.example.org/";
          accept_unauthorized = true;
        };
        description = ''
          HTTP probe: `url` plus configgen's other keys (`valid_status_codes`,
          `accept_unauthorized`, `tls_expiry`, `insecure_skip_verify`).
        '';
      };
      tcp = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.1.20:445";
        description = "TCP connect probe, `host:port`.";
      };
      icmp = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "ICMP echo probe, a host name or address.";
      };
      red = mkOption {
        type = types.nullOr (
          types.submodule {
            options.ports = mkOption {
              type = types.listOf types.port;
              default = [];
              description = "Local TCP ports the service listens on.";
            };
            options.unit = mkOption {
              type = types.nullOr types.str;
              default = null;
              example = "jellyfin.service";
              description = "systemd unit whose TCP connections are watched.";
            };
            options.container = mkOption {
              type = types.nullOr types.str;
              default = null;
              description = "Docker/Podman container whose TCP connections are watched.";
            };
            options.client_ports = mkOption {
              type = types.listOf types.port;
              default = [];
              example = [3003];
              description = "Remote ports of the service's outgoing HTTP calls.";
            };
            options.routes = mkOption {
              type = types.listOf types.str;
              default = [];
              example = ["/Items/{id}"];
              description = "Route templates for the `http_route` label.";
            };
            options.traces = mkOption {
              type = types.nullOr types.bool;
              default = null;
              description = "Trace spans of these requests, sent by the probe to Alloy's OTLP HTTP receiver. `null` follows `probe.traces`; `true` needs Alloy and Tempo (or `ship_to.otlp_grpc` on an agent).";
            };
          }
        );
        default = null;
        description = "What the eBPF RED probe measures: listening ports, a unit, a container, outgoing calls (at least one).";
      };
      logs = mkOption {
        type = types.nullOr (
          types.attrTag {
            unit = mkOption {
              type = types.str;
              description = "A systemd unit, e.g. `jellyfin.service`.";
            };
            container = mkOption {
              type = types.str;
              description = "A docker/podman container name.";
            };
          }
        );
        default = null;
        example = {
          unit = "jellyfin.service";
        };
        description = "Where the service's logs come from.";
      };
      labels = mkOption {
        type = types.attrsOf types.str;
        default = {};
        description = "Extra labels on this service's probe series.";
      };
    };
  };
in {
  options.services.homelab-observability = {
    enable = mkEnableOption "the homelab observability stack (metrics, logs, traces, alerts, dashboards)";

    package = mkOption {
      type = types.package;
      default = pkgs.homelab-configgen or (throw "services.homelab-observability.package: apply the flake's overlays.default or set this option");
      defaultText = lib.literalExpression "pkgs.homelab-configgen";
      description = "The configgen package that renders every config file of the stack.";
    };

    role = mkOption {
      type = types.enum [
        "server"
        "agent"
      ];
      default = "server";
      description = ''
        `server` runs the whole stack (Prometheus, Alertmanager, Loki, Tempo,
        Grafana). `agent` runs only the exporters, the RED probe and Alloy,
        and ships everything to {option}`services.homelab-observability.serverAddress`.
      '';
    };

    hostName = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = lib.literalExpression "config.networking.hostName";
      description = "The `host` label on every series, log line and span of this machine.";
    };

    labels = mkOption {
      type = types.attrsOf types.str;
      default = {};
      example = {
        site = "home";
      };
      description = "Labels added to everything this host produces.";
    };

    serverAddress = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "monitor.lan";
      description = ''
        Agents only: host name or address of the server, which must set
        {option}`services.homelab-observability.acceptAgents`. Metrics go to
        its Prometheus remote-write receiver, logs to its Loki, traces to its
        Tempo, on the port numbers of {option}`services.homelab-observability.ports`.
      '';
    };

    acceptAgents = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Servers only: accept metrics, logs and traces pushed by agents.
        Prometheus (with its remote-write receiver), Loki and Tempo's OTLP
        receiver then listen on all addresses instead of loopback.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "With `acceptAgents`: open the Prometheus, Loki and Tempo OTLP ports in the firewall.";
    };

    ports = {
      prometheus = port 9090 "Prometheus";
      alertmanager = port 9093 "Alertmanager";
      node = port 9100 "node_exporter";
      blackbox = port 9115 "blackbox_exporter";
      cadvisor = port 8088 "cAdvisor (8080 is usually taken by something else)";
      probe = port 9464 "the eBPF RED probe's /metrics";
      loki = port 3100 "Loki's HTTP API";
      lokiGrpc = port 9096 "Loki's gRPC listener";
      alloy = port 12345 "Alloy's HTTP server";
      otlpGrpc = port 4317 "Alloy's OTLP gRPC receiver";
      otlpHttp = port 4318 "Alloy's OTLP HTTP receiver";
      tempo = port 3200 "Tempo's HTTP API";
      tempoOtlpGrpc = port 4327 "Tempo's own OTLP gRPC receiver (Alloy and agents forward to it)";
      grafana = port 3000 "Grafana";
    };

    scrapeInterval = mkOption {
      type = types.str;
      default = "30s";
      description = "Default scrape and probe interval.";
    };

    retention = {
      metrics = mkOption {
        type = types.str;
        default = "30d";
        description = "How long Prometheus keeps samples.";
      };
      logs = mkOption {
        type = types.str;
        default = "30d";
        description = "How long Loki keeps log lines.";
      };
      traces = mkOption {
        type = types.str;
        default = "14d";
        description = "How long Tempo keeps traces.";
      };
    };

    services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = {};
      example = lib.literalExpression ''
        {
          jellyfin = {
            http.url = "http://127.0.0.1:8096/health";
            red.ports = [ 8096 ];
            logs.unit = "jellyfin.service";
          };
        }
      '';
      description = ''
        Watched services, keyed by name (the `service` label). Keys are those
        of configgen's `[[services]]` entries. Declared services replace
        auto-discovered ones of the same name.
      '';
    };

    receivers = mkOption {
      type = types.listOf (
        types.submodule {
          freeformType = jsonAttrs;
          options.type = mkOption {
            type = types.enum [
              "email"
              "webhook"
              "ntfy"
              "telegram"
              "discord"
              "pushover"
            ];
            description = "Kind of receiver.";
          };
          options.name = mkOption {
            type = types.str;
            description = "Unique name, referenced by `alerting.routes` and `defaultReceivers`.";
          };
        }
      );
      default = [];
      example = [
        {
          type = "ntfy";
          name = "phone";
          url = "https://ntfy.sh/my-homelab-alerts";
        }
      ];
      description = ''
        Alert receivers, with configgen's keys (`to`, `from`, `smarthost`,
        `password_file`, `url`, `token_file`, `bot_token_file`, `chat_id`,
        `webhook_url_file`, `user_key_file`, ...). Secrets only as `*_file`.
      '';
    };

    defaultReceivers = mkOption {
      type = types.listOf types.str;
      default = [];
      description = "Receivers for alerts no severity route takes.";
    };

    grafana = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run Grafana with the provisioned datasources and dashboards (server role).";
      };
      domain = mkOption {
        type = types.str;
        default = "localhost";
        description = "Public domain Grafana is served under.";
      };
      adminPasswordFile =
        secretFile "Grafana admin password"
        // {
          description = ''
            File holding the Grafana admin password. When null, a random one is
            generated on first start in
            `/var/lib/homelab-observability/grafana-admin-password` (root only).
          '';
        };
      secretKeyFile =
        secretFile "Grafana secret key"
        // {
          description = ''
            File holding Grafana's `secret_key` (signs cookies, encrypts
            datasource secrets). When null, a random one is generated on first
            start in `/var/lib/homelab-observability/grafana-secret-key`.
          '';
        };
      extraDatasources = mkOption {
        type = types.listOf jsonAttrs;
        default = [];
        example = [
          {
            name = "Router";
            type = "prometheus";
            uid = "router";
            url = "http://192.168.1.1:9090";
          }
        ];
        description = ''
          Your own Grafana datasources, entries of a provisioning file
          (`name`, `type`, `uid`, `url`, `jsonData`, ...), provisioned next to
          the module's. They end up in the Nix store: give secrets in
          `secureJsonData` as `$__file{/path}`. The module provisions
          datasources through {option}`services.grafana.provision.datasources.path`,
          which nixpkgs does not combine with `.settings`.
        '';
      };
      smtp = {
        enable = mkEnableOption "e-mail from Grafana";
        host = mkOption {
          type = types.str;
          default = "localhost:25";
          description = "SMTP server, `host:port`.";
        };
        user = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "SMTP user name.";
        };
        fromAddress = mkOption {
          type = types.str;
          default = "grafana@localhost";
          description = "Sender address.";
        };
        passwordFile = secretFile "SMTP password";
      };
    };

    tempo.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Run Tempo for traces (server role).";
    };

    probe = {
      enable = mkOption {
        type = types.bool;
        default = pkgs.stdenv.hostPlatform.isx86_64;
        defaultText = lib.literalExpression "pkgs.stdenv.hostPlatform.isx86_64";
        description = ''
          Run the eBPF RED probe (`homelab-probe`). It runs on x86_64-linux
          only (its BPF programs read syscall arguments from x86_64
          registers), so it is off by default elsewhere.
        '';
      };
      tls = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Also measure HTTPS served or called through a dynamically linked
          libssl, with uprobes on `SSL_read`/`SSL_write`. The kernel's uprobe
          PMU requires CAP_SYS_ADMIN for them, so this grants the probe
          CAP_SYS_ADMIN; off, the probe runs with `--no-tls`.
        '';
      };
      traces = mkOption {
        type = types.nullOr types.bool;
        default = null;
        description = ''
          Trace spans of every RED-watched service (a service's `red.traces`
          overrides it). `null`: on when this host has a trace destination
          (Alloy, and Tempo or `ship_to.otlp_grpc` on an agent), else off;
          `true` without one is an error.
        '';
      };
      accessLog = mkOption {
        type = types.nullOr types.bool;
        default = null;
        description = ''
          One JSON line per answered request in the probe's journal (and in
          Loki through Alloy): service, method, route, path without query,
          status, duration, client. `null`: on when logs are shipped to Loki.
        '';
      };
      package = mkOption {
        type = types.package;
        default = pkgs.homelab-probe or (throw "services.homelab-observability.probe.package: apply the flake's overlays.default or set this option");
        defaultText = lib.literalExpression "pkgs.homelab-probe";
        description = "The homelab-probe package.";
      };
    };

    discovery = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Watch services found in this machine's own configuration.";
      };
      nginx = mkOption {
        type = types.bool;
        default = cfg.discovery.enable;
        defaultText = lib.literalExpression "config.services.homelab-observability.discovery.enable";
        description = "Probe every `services.nginx.virtualHosts` entry (RED on its local `proxyPass` port).";
      };
      caddy = mkOption {
        type = types.bool;
        default = cfg.discovery.enable;
        defaultText = lib.literalExpression "config.services.homelab-observability.discovery.enable";
        description = "Probe every `services.caddy.virtualHosts` entry (RED on its local `reverse_proxy` port).";
      };
      ociContainers = mkOption {
        type = types.bool;
        default = cfg.discovery.enable;
        defaultText = lib.literalExpression "config.services.homelab-observability.discovery.enable";
        description = "Watch every `virtualisation.oci-containers.containers` entry (logs, TCP probe of its first published port).";
      };
    };

    settings = mkOption {
      type = jsonAttrs;
      default = {};
      example = {
        network.gateway = "192.168.1.1";
        alerting.routes.critical = ["phone"];
      };
      description = ''
        Anything else of configgen's config (see `configgen schema`), handed
        over verbatim. It is merged over the typed options (a key set here
        wins); `settings.services` entries are added to the typed services.
      '';
    };

    generatedConfig = mkOption {
      type = jsonAttrs;
      readOnly = true;
      description = "The config handed to `configgen render` (configgen's model, as JSON).";
    };

    tree = mkOption {
      type = types.package;
      readOnly = true;
      description = "The rendered tree: every config file of the stack, built by `configgen render`.";
    };
  };
}
