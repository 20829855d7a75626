# The server role: Prometheus, Alertmanager, Loki, Tempo, Grafana.
{
  config,
  lib,
  pkgs,
  cfg,
  model,
  on,
  tree,
  wiring,
  stateDir,
  dashboardsDir,
  adminPasswordFile,
  secretKeyFile,
  flags,
  ...
}: let
  inherit (cfg) ports;
  inherit (on) server grafana tempo;
  fileRef = path: "$__file{${path}}";
  # Grafana's settings are configgen's (typed options and `settings` alike,
  # crates/configgen/src/render/grafana/ini.rs), handed to nixpkgs' module,
  # which writes its own grafana.ini.
  g = model.grafana;
  # (scheme, path) of the root URL, which configgen has validated.
  rootUrl = builtins.match "(https?)://[^/]*(.*)" g.root_url;
  alertmanager = config.services.prometheus.alertmanager;
  alertmanagerPlaceholder = "# replaced at start by the rendered alertmanager.yml of services.homelab-observability\n";
  alertmanagerYml =
    if alertmanager.checkConfig
    then
      pkgs.runCommand "alertmanager-checked.yml" {nativeBuildInputs = [alertmanager.package];} ''
        amtool check-config ${tree}/alertmanager/alertmanager.yml
        ln -s ${tree}/alertmanager/alertmanager.yml $out
      ''
    else "${tree}/alertmanager/alertmanager.yml";
  # The dashboard provider of configgen's grafana/provisioning/dashboards/homelab.yaml,
  # as a providers entry, so that the user's own providers merge with it (the
  # nix-checks eval test requires both to be equal).
  dashboardProvider = {
    name = "homelab";
    orgId = 1;
    type = "file";
    folder = "Homelab";
    folderUid = "homelab";
    disableDeletion = true;
    allowUiUpdates = false;
    updateIntervalSeconds = 60;
    options = {
      path = dashboardsDir;
      foldersFromFilesStructure = false;
    };
  };
  # Datasources come as a file with correlations between them, so they are
  # provisioned as a directory: configgen's file, and the user's extra
  # datasources next to it.
  datasourcesDir = pkgs.runCommand "homelab-observability-grafana-datasources" {} (
    ''
      mkdir $out
      ln -s ${tree}/grafana/provisioning/datasources/* $out/
    ''
    + lib.optionalString (cfg.grafana.extraDatasources != []) ''
      ln -s ${pkgs.writeText "extra-datasources.yaml" (builtins.toJSON {
        apiVersion = 1;
        datasources = cfg.grafana.extraDatasources;
      })} $out/extra-datasources.yaml
    ''
  );
  # alerting.external_url with each daemon's port, as configgen's
  # Plan::external_url makes it (the URL is scheme and host only).
  externalUrl = port:
    if model.alerting.external_url or null == null
    then null
    else "${lib.removeSuffix "/" model.alerting.external_url}:${toString port}/";
  remoteWrite = model.prometheus.remote_write or [];
  # promtool's full check opens credential files, which the build sandbox cannot see.
  remoteWriteSecrets = lib.any (rw: rw ? bearer_token_file || rw ? basic_auth) remoteWrite;
in
  lib.mkIf server (
    lib.mkMerge [
      {
        services.prometheus = {
          enable = true;
          listenAddress = lib.mkDefault model.prometheus.listen_address;
          port = ports.prometheus;
          retentionTime = lib.mkDefault model.prometheus.retention;
          webExternalUrl = lib.mkDefault (externalUrl model.prometheus.port);
          globalConfig = {
            scrape_interval = lib.mkDefault model.prometheus.scrape_interval;
            evaluation_interval = lib.mkDefault (model.prometheus.evaluation_interval or "30s");
            external_labels =
              {
                host = model.host.name;
              }
              // model.host.labels;
          };
          # One scrape config carries every rendered job: each file_sd target
          # group sets its own job label (see ./scrape-to-file-sd.jq).
          scrapeConfigs = [
            {
              job_name = "homelab-observability";
              file_sd_configs = [{files = ["${wiring}/prometheus/file_sd/*.json"];}];
            }
          ];
          ruleFiles = ["${wiring}/prometheus/rules.yml"];
          alertmanagers = [
            {static_configs = [{targets = ["127.0.0.1:${toString ports.alertmanager}"];}];}
          ];
          remoteWrite =
            map (
              rw:
                lib.filterAttrs (_: v: v != null) {
                  inherit (rw) url;
                  name = rw.name or null;
                  bearer_token_file = rw.bearer_token_file or null;
                  basic_auth = rw.basic_auth or null;
                }
            )
            remoteWrite;
          extraFlags = flags.prometheus;
          checkConfig = lib.mkIf remoteWriteSecrets (lib.mkDefault "syntax-only");
        };

        services.prometheus.alertmanager = {
          enable = true;
          listenAddress = lib.mkDefault model.alertmanager.listen_address;
          port = ports.alertmanager;
          # Satisfies the upstream module's "a configuration is required"
          # assertion; the unit runs the rendered file instead (preStart below).
          configText = lib.mkDefault alertmanagerPlaceholder;
          webExternalUrl = lib.mkDefault (externalUrl model.alertmanager.port);
          extraFlags = flags.alertmanager;
        };
        # Upstream copies its config through envsubst into this path; the rendered
        # file holds no environment references (secrets are *_file) and may hold
        # a literal `$` in templates, so it is copied as it is (amtool-checked at
        # build time, like upstream's own, unless checkConfig is off).
        systemd.services.alertmanager.preStart = lib.mkForce ''
          install -m 0400 ${alertmanagerYml} /tmp/alert-manager-substituted.yaml
        '';

        services.loki = lib.mkIf on.loki {
          enable = true;
          configFile = "${tree}/loki/loki.yaml";
        };

        warnings =
          lib.optional (config.services.prometheus.configText != null) "services.prometheus.configText replaces the whole generated prometheus.yml: the scrape jobs and alert rules of services.homelab-observability are not loaded."
          ++ lib.optional (
            alertmanager.configuration != null || alertmanager.configText != alertmanagerPlaceholder
          ) "services.prometheus.alertmanager.configuration/configText are ignored: Alertmanager runs the alertmanager.yml rendered by services.homelab-observability (set receivers and routes there).";

        networking.firewall.allowedTCPPorts = lib.optionals (cfg.acceptAgents && cfg.openFirewall) (
          [
            ports.prometheus
          ]
          ++ lib.optional on.loki ports.loki
          ++ lib.optional tempo ports.tempoOtlpGrpc
        );
      }

      (lib.mkIf tempo {
        services.tempo = {
          enable = true;
          configFile = "${tree}/tempo/tempo.yaml";
        };
      })

      (lib.mkIf grafana {
        services.grafana = {
          enable = true;
          settings = {
            server =
              {
                http_addr = lib.mkDefault g.listen_address;
                http_port = ports.grafana;
                domain = lib.mkDefault g.domain;
              }
              // lib.optionalAttrs (g.root_url or null != null) {
                root_url = lib.mkDefault g.root_url;
                serve_from_sub_path = lib.mkDefault (!lib.elem (lib.elemAt rootUrl 1) ["" "/"]);
              };
            security =
              {
                admin_password = fileRef g.admin_password_file;
                secret_key = fileRef g.secret_key_file;
              }
              // lib.optionalAttrs (g.root_url or null != null) {
                cookie_secure = lib.mkDefault (lib.head rootUrl == "https");
              };
            analytics.reporting_enabled = lib.mkDefault false;
            smtp = lib.mkIf (g.smtp or null != null) (
              {
                enabled = true;
                inherit (g.smtp) host from_address;
              }
              // lib.optionalAttrs (g.smtp.user or null != null) {inherit (g.smtp) user;}
              // lib.optionalAttrs (g.smtp.password_file or null != null) {
                password = fileRef g.smtp.password_file;
              }
            );
            "auth.generic_oauth" = lib.mkIf (g.oidc or null != null) (
              {
                enabled = true;
                name = g.oidc.name or "SSO";
                inherit (g.oidc) client_id auth_url token_url api_url;
                client_secret = fileRef g.oidc.client_secret_file;
                scopes = lib.concatStringsSep " " (g.oidc.scopes or ["openid" "profile" "email" "groups"]);
                use_pkce = g.oidc.use_pkce or true;
                allow_sign_up = g.oidc.allow_sign_up or true;
              }
              // lib.optionalAttrs (g.oidc.role_attribute_path or null != null) {
                inherit (g.oidc) role_attribute_path;
              }
            );
          };
          provision = {
            enable = true;
            datasources.path = datasourcesDir;
            dashboards.settings.providers = [dashboardProvider];
          };
        };
        # The dashboard provider of the rendered tree reads this directory.
        environment.etc.${lib.removePrefix "/etc/" dashboardsDir}.source = "${tree}/grafana/dashboards";

        # Secrets Grafana needs and the user did not provide: generated once, on
        # the machine, never in the store.
        systemd.services.homelab-observability-grafana-secrets =
          lib.mkIf (cfg.grafana.adminPasswordFile == null || cfg.grafana.secretKeyFile == null)
          {
            description = "Generate Grafana secrets of homelab-observability";
            wantedBy = ["grafana.service"];
            before = ["grafana.service"];
            serviceConfig = {
              Type = "oneshot";
              RemainAfterExit = true;
              UMask = "0077";
              StateDirectory = "homelab-observability";
            };
            script =
              lib.concatMapStrings (file: ''
                if [ ! -s ${file} ]; then
                  head -c 32 /dev/urandom | base64 -w0 > ${file}.new
                  mv ${file}.new ${file}
                fi
                chown grafana: ${file}
                chmod 0400 ${file}
              '') (
                lib.optional (cfg.grafana.adminPasswordFile == null) adminPasswordFile
                ++ lib.optional (cfg.grafana.secretKeyFile == null) secretKeyFile
              );
          };
      })
    ]
  )
