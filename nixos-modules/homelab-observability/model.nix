# The typed options -> configgen's config model (crates/configgen/src/model.rs),
# as a plain attribute set that becomes the JSON handed to `configgen render`.
{lib}: {
  cfg,
  # name -> service, in the model's shape (from ./discovery.nix)
  discovered,
  # docker/podman API socket for Alloy's container logs, or null
  containerSocket,
  # where the module installs the rendered dashboards (see ./server.nix)
  dashboardsDir,
  # files Grafana reads its admin password and secret key from
  adminPasswordFile,
  secretKeyFile,
}: let
  inherit (cfg) ports;
  loopback = "127.0.0.1";
  # The listeners agents push to (Prometheus' remote-write receiver, Loki's
  # push API, Tempo's OTLP gRPC receiver) are on every address when the server
  # accepts agents; configgen keeps every other listener on loopback.
  inbound =
    if cfg.acceptAgents
    then "0.0.0.0"
    else loopback;

  dropNulls = lib.filterAttrs (_: v: v != null);

  declared =
    lib.mapAttrs (
      name: svc:
        dropNulls svc
        // {
          inherit name;
        }
        // lib.optionalAttrs (svc.http != null) {http = dropNulls svc.http;}
    )
    cfg.services;

  # Declared services win over discovered ones of the same name; the list is
  # ordered by name.
  services = lib.attrValues (discovered // declared) ++ cfg.settings.services or [];

  shipTo = lib.optionalAttrs (cfg.role == "agent" && cfg.serverAddress != null) {
    ship_to = {
      prometheus_remote_write = "http://${cfg.serverAddress}:${toString ports.prometheus}/api/v1/write";
      loki_push = "http://${cfg.serverAddress}:${toString ports.loki}/loki/api/v1/push";
      otlp_grpc =
        if cfg.tempo.enable
        then "${cfg.serverAddress}:${toString ports.tempoOtlpGrpc}"
        else null;
    };
  };

  typed = {
    host =
      {
        name = cfg.hostName;
        inherit (cfg) role labels;
      }
      // shipTo;
    inherit services;
    exporters = {
      node = {
        enable = true;
        listen_address = loopback;
        port = ports.node;
        collectors = [
          "systemd"
          "processes"
        ];
      };
      blackbox = {
        listen_address = loopback;
        port = ports.blackbox;
      };
      cadvisor = {
        listen_address = loopback;
        port = ports.cadvisor;
      };
      probe = {
        inherit (cfg.probe) enable tls traces;
        access_log = cfg.probe.accessLog;
        listen_address = loopback;
        port = ports.probe;
      };
    };
    prometheus = {
      listen_address = inbound;
      port = ports.prometheus;
      remote_write_receiver = cfg.acceptAgents;
      scrape_interval = cfg.scrapeInterval;
      retention = cfg.retention.metrics;
    };
    alertmanager = {
      listen_address = loopback;
      port = ports.alertmanager;
    };
    alerting = {
      inherit (cfg) receivers;
      default_receivers = cfg.defaultReceivers;
    };
    loki = {
      listen_address = inbound;
      port = ports.loki;
      grpc_port = ports.lokiGrpc;
      retention = cfg.retention.logs;
    };
    alloy = {
      listen_address = loopback;
      port = ports.alloy;
      container_socket = containerSocket;
      otlp_grpc_port = ports.otlpGrpc;
      otlp_http_port = ports.otlpHttp;
      # nixpkgs' alloy unit: StateDirectory = "alloy".
      data_dir = "/var/lib/alloy";
    };
    tempo = {
      enable = cfg.tempo.enable;
      listen_address = loopback;
      port = ports.tempo;
      otlp_grpc_listen_address = inbound;
      otlp_grpc_port = ports.tempoOtlpGrpc;
      retention = cfg.retention.traces;
    };
    grafana =
      {
        enable = cfg.grafana.enable;
        listen_address = loopback;
        port = ports.grafana;
        inherit (cfg.grafana) domain;
        admin_password_file = adminPasswordFile;
        secret_key_file = secretKeyFile;
        dashboards_dir = dashboardsDir;
      }
      // lib.optionalAttrs cfg.grafana.smtp.enable {
        smtp = dropNulls {
          inherit (cfg.grafana.smtp) host user;
          password_file = cfg.grafana.smtp.passwordFile;
          from_address = cfg.grafana.smtp.fromAddress;
        };
      };
  };
in
  lib.recursiveUpdate typed (removeAttrs cfg.settings ["services"])
