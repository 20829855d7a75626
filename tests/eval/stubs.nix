# Declarations of the upstream NixOS options the module reads or sets, with the
# names and types nixpkgs gives them (checked against nixpkgs' module sources;
# see docs/nixos.md), so that lib.evalModules can evaluate the module without a
# nixpkgs checkout. Only options the module touches are declared: setting any
# other one is an evaluation error, as it would be against a real NixOS.
{
  lib,
  config,
  pkgs,
  ...
}: let
  inherit (lib) mkOption mkEnableOption types;
  opt = type: default:
    mkOption {
      inherit type default;
    };
  nullOpt = type: opt (types.nullOr type) null;
  str = opt types.str;
  port = opt types.port;
  listOfStr = opt (types.listOf types.str) [];
  submodule = options: types.submodule {inherit options;};
  # a submodule with declared keys and any other (pkgs.formats.yaml's type)
  freeform = options:
    types.submodule {
      freeformType = types.attrsOf types.anything;
      inherit options;
    };
  json = types.attrsOf types.anything;

  # services.prometheus.exporters.<name>: mkExporterOpts in exporters.nix
  exporter = defaultPort: extra:
    opt (submodule (
      {
        enable = mkEnableOption "exporter";
        port = port defaultPort;
        listenAddress = str "0.0.0.0";
        extraFlags = listOfStr;
        openFirewall = opt types.bool false;
      }
      // extra
    )) {};

  # systemd.services.<name>: only the attributes the module uses.
  unit = types.submodule {
    freeformType = types.attrsOf types.anything;
    options = {
      serviceConfig = opt (types.attrsOf types.anything) {};
      preStart = opt types.lines "";
      script = opt types.lines "";
      wantedBy = listOfStr;
      wants = listOfStr;
      before = listOfStr;
      after = listOfStr;
    };
  };
in {
  options = {
    assertions = opt (types.listOf types.unspecified) [];
    warnings = opt (types.listOf types.str) [];

    networking.hostName = str "nixos";
    networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [];

    environment.etc = opt (types.attrsOf (submodule {
      source = opt types.path null;
    })) {};

    systemd.services = opt (types.attrsOf unit) {};
    systemd.tmpfiles.rules = opt (types.listOf types.str) [];

    services.prometheus = {
      enable = mkEnableOption "prometheus";
      port = port 9090;
      listenAddress = str "0.0.0.0";
      extraFlags = listOfStr;
      retentionTime = nullOpt types.str;
      stateDir = str "prometheus2";
      enableReload = opt types.bool false;
      enableAgentMode = mkEnableOption "agent mode";
      alertmanagerNotificationQueueCapacity = opt types.int 10000;
      webExternalUrl = nullOpt types.str;
      webConfigFile = nullOpt types.path;
      checkConfig = opt (types.either types.bool (types.enum ["syntax-only"])) true;
      configText = nullOpt types.lines;
      globalConfig = opt (submodule {
        scrape_interval = nullOpt types.str;
        scrape_timeout = nullOpt types.str;
        evaluation_interval = nullOpt types.str;
        external_labels = nullOpt (types.attrsOf types.str);
        query_log_file = nullOpt types.str;
      }) {};
      scrapeConfigs = opt (types.listOf (submodule {
        job_name = mkOption {type = types.str;};
        scrape_interval = nullOpt types.str;
        metrics_path = nullOpt types.str;
        file_sd_configs = nullOpt (types.listOf (submodule {
          files = mkOption {type = types.listOf types.str;};
          refresh_interval = nullOpt types.str;
        }));
        static_configs = nullOpt (types.listOf (submodule {
          targets = mkOption {type = types.listOf types.str;};
          labels = opt (types.attrsOf types.str) {};
        }));
      })) [];
      rules = listOfStr;
      ruleFiles = opt (types.listOf types.path) [];
      alertmanagers = opt (types.listOf types.attrs) [];
      remoteWrite = opt (types.listOf (submodule {
        url = mkOption {type = types.str;};
        name = nullOpt types.str;
        bearer_token_file = nullOpt types.str;
        basic_auth = nullOpt (submodule {
          username = mkOption {type = types.str;};
          password = nullOpt types.str;
          password_file = nullOpt types.str;
        });
      })) [];

      alertmanager = {
        enable = mkEnableOption "alertmanager";
        package = opt types.package pkgs.prometheus-alertmanager;
        configuration = nullOpt types.attrs;
        configText = nullOpt types.lines;
        checkConfig = opt types.bool true;
        listenAddress = str "";
        port = port 9093;
        logLevel = opt (types.enum [
          "debug"
          "info"
          "warn"
          "error"
          "fatal"
        ]) "warn";
        logFormat = nullOpt types.str;
        webExternalUrl = nullOpt types.str;
        clusterPeers = listOfStr;
        extraFlags = listOfStr;
      };

      exporters = opt (submodule {
        node = exporter 9100 {
          enabledCollectors = listOfStr;
          disabledCollectors = listOfStr;
        };
        blackbox = exporter 9115 {
          configFile = mkOption {type = types.path;};
          enableConfigCheck = opt types.bool true;
        };
      }) {};
    };

    services.cadvisor = {
      enable = mkEnableOption "cadvisor";
      listenAddress = str "127.0.0.1";
      port = port 8080;
      extraOptions = listOfStr;
      storageDriver = nullOpt types.str;
    };

    services.loki = {
      enable = mkEnableOption "loki";
      dataDir = opt types.path "/var/lib/loki";
      configuration = opt json {};
      configFile = nullOpt types.path;
      extraFlags = listOfStr;
    };

    services.alloy = {
      enable = mkEnableOption "alloy";
      configPath = opt types.path "/etc/alloy";
      environmentFile = nullOpt types.path;
      extraFlags = listOfStr;
    };

    services.tempo = {
      enable = mkEnableOption "tempo";
      settings = opt json {};
      configFile = nullOpt types.path;
      extraFlags = listOfStr;
    };

    services.grafana = {
      enable = mkEnableOption "grafana";
      # freeform INI sections; the real type also declares many keys
      settings = opt (types.submodule {freeformType = types.attrsOf (types.attrsOf types.anything);}) {};
      provision = {
        enable = mkEnableOption "provision";
        datasources = opt (submodule {
          settings = nullOpt (submodule {
            apiVersion = opt types.int 1;
            datasources = opt (types.listOf (freeform {
              name = mkOption {type = types.str;};
              type = mkOption {type = types.str;};
              access = opt (types.enum [
                "proxy"
                "direct"
              ]) "proxy";
              uid = nullOpt types.str;
              url = str "";
              editable = opt types.bool false;
              jsonData = nullOpt types.attrs;
              secureJsonData = nullOpt types.attrs;
            })) [];
            deleteDatasources = opt (types.listOf (submodule {
              name = mkOption {type = types.str;};
              orgId = mkOption {type = types.int;};
            })) [];
          });
          path = nullOpt types.path;
        }) {};
        dashboards = opt (submodule {
          settings = nullOpt (submodule {
            apiVersion = opt types.int 1;
            providers = opt (types.listOf (freeform {
              name = str "default";
              type = str "file";
              options.path = mkOption {type = types.path;};
            })) [];
          });
          path = nullOpt types.path;
        }) {};
      };
    };

    services.nginx = {
      enable = mkEnableOption "nginx";
      defaultHTTPListenPort = port 80;
      defaultSSLListenPort = port 443;
      virtualHosts = opt (types.attrsOf (submodule {
        serverName = nullOpt types.str;
        listen = opt (types.listOf (submodule {
          addr = mkOption {type = types.str;};
          port = nullOpt types.port;
          ssl = opt types.bool false;
        })) [];
        addSSL = opt types.bool false;
        onlySSL = opt types.bool false;
        forceSSL = opt types.bool false;
        locations = opt (types.attrsOf (submodule {
          proxyPass = nullOpt types.str;
        })) {};
      })) {};
    };

    services.caddy = {
      enable = mkEnableOption "caddy";
      virtualHosts = opt (types.attrsOf (types.submodule ({name, ...}: {
        options.hostName = str name;
        options.serverAliases = listOfStr;
        options.extraConfig = opt types.lines "";
      }))) {};
    };

    virtualisation.docker.enable = mkEnableOption "docker";
    virtualisation.podman.enable = mkEnableOption "podman";
    virtualisation.oci-containers = {
      backend = opt (types.enum [
        "podman"
        "docker"
      ]) "podman";
      containers = opt (types.attrsOf (submodule {
        image = mkOption {type = types.str;};
        ports = listOfStr;
      })) {};
    };
  };

  config = let
    inherit (config.services) prometheus loki tempo grafana;
  in {
    # What the upstream alertmanager module defines, to prove the module's
    # mkForce replaces it.
    systemd.services.alertmanager = lib.mkIf prometheus.alertmanager.enable {
      preStart = "envsubst -o /tmp/alert-manager-substituted.yaml -i upstream-generated.yml";
    };

    # The conditions of upstream's assertions on the options the module sets
    # (alertmanager.nix, loki.nix, tempo.nix, grafana.nix), so that a
    # configuration they would refuse is refused here too.
    assertions = [
      {
        assertion = prometheus.alertmanager.enable -> prometheus.alertmanager.configuration != null || prometheus.alertmanager.configText != null;
        message = "upstream alertmanager.nix: configuration or configText is required";
      }
      {
        assertion = loki.enable -> (loki.configuration == {}) != (loki.configFile == null);
        message = "upstream loki.nix: exactly one of configuration and configFile";
      }
      {
        assertion = tempo.enable -> (tempo.settings == {}) != (tempo.configFile == null);
        message = "upstream tempo.nix: exactly one of settings and configFile";
      }
      {
        assertion = grafana.enable -> grafana.provision.datasources.settings == null || grafana.provision.datasources.path == null;
        message = "upstream grafana.nix: datasources settings and path both set";
      }
      {
        assertion = grafana.enable -> grafana.provision.dashboards.settings == null || grafana.provision.dashboards.path == null;
        message = "upstream grafana.nix: dashboards settings and path both set";
      }
    ];
  };
}
