# examples/homelab.toml, declared through the NixOS module. The nix-checks
# parity test proves both give configgen the same config and the same tree.
{
  networking.hostName = "nas";
  # Alloy then reads container logs from /var/run/docker.sock, as in the TOML.
  virtualisation.docker.enable = true;

  services.homelab-observability = {
    enable = true;
    labels.site = "home";

    services = {
      jellyfin = {
        interval = "15s";
        labels.category = "media";
        http.url = "http://127.0.0.1:8096/health";
        red = {
          ports = [8096];
          routes = [
            "/Items/{id}"
            "/Videos/{id}/stream"
          ];
        };
        logs.unit = "jellyfin.service";
      };
      immich = {
        labels.category = "photos";
        http = {
          url = "https://photos.example.org/";
          accept_unauthorized = true;
        };
        red = {
          container = "immich_server";
          client_ports = [3003];
        };
        logs.container = "immich_server";
        metrics = {
          url = "http://127.0.0.1:8081/metrics";
          interval = "60s";
        };
      };
      authentik = {
        labels.category = "auth";
        http.url = "http://127.0.0.1:9000/-/health/live/";
        metrics = "http://127.0.0.1:9300/metrics";
      };
      caddy = {
        labels.category = "network";
        metrics = "http://127.0.0.1:2019/metrics";
        red.unit = "caddy.service";
        logs.unit = "caddy.service";
      };
      nas-smb = {
        labels.category = "storage";
        tcp = "192.168.1.20:445";
        icmp = "192.168.1.20";
      };
      router = {
        labels.category = "network";
        http = {
          url = "https://192.168.1.1/";
          insecure_skip_verify = true;
          tls_expiry = false;
        };
        icmp = "192.168.1.1";
      };
      dns-cloudflare = {
        labels.category = "network";
        dns = {
          server = "1.1.1.1";
          query = "example.org";
          record_type = "A";
        };
      };
    };

    retention = {
      metrics = "90d";
      logs = "30d";
      traces = "14d";
    };

    receivers = [
      {
        type = "email";
        name = "mail";
        to = "me@example.org";
        from = "homelab@example.org";
        smarthost = "smtp.example.org:587";
        username = "homelab@example.org";
        password_file = "/run/secrets/smtp-password";
      }
      {
        type = "ntfy";
        name = "phone";
        url = "https://ntfy.example.org/homelab-alerts";
        token_file = "/run/secrets/ntfy-token";
      }
    ];
    defaultReceivers = ["phone"];

    grafana = {
      domain = "grafana.example.org";
      adminPasswordFile = "/run/secrets/grafana-admin-password";
      secretKeyFile = "/run/secrets/grafana-secret-key";
      smtp = {
        enable = true;
        host = "smtp.example.org:587";
        user = "homelab@example.org";
        passwordFile = "/run/secrets/smtp-password";
        fromAddress = "grafana@example.org";
      };
    };

    settings = {
      network = {
        gateway = "192.168.1.1";
        resolvers = [
          "1.1.1.1"
          "9.9.9.9"
        ];
        lan_sweep = {
          cidr = "192.168.1.0/24";
          interval = "5m";
        };
      };
      alerting = {
        routes = {
          critical = [
            "mail"
            "phone"
          ];
          warning = ["phone"];
          info = [];
        };
        group_wait = "30s";
        group_interval = "5m";
        repeat_interval = "3h";
        watchdog_url_file = "/run/secrets/healthchecks-ping-url";
        overrides = {
          HostHighCpuLoad.enabled = false;
          HostDiskAlmostFull = {
            threshold = 5;
            for = "15m";
          };
        };
      };
      prometheus.scrape_configs = [
        {
          job_name = "envoy";
          targets = ["127.0.0.1:9901"];
          metrics_path = "/stats/prometheus";
        }
        {
          job_name = "zrepl";
          targets = ["127.0.0.1:9811"];
          labels.category = "storage";
        }
        {
          job_name = "crowdsec";
          targets = ["127.0.0.1:6060"];
          scrape_interval = "1m";
          scrape_timeout = "20s";
        }
      ];
      # Options the module has no typed form of: configgen's keys, which it
      # also hands to nixpkgs' Grafana (./server.nix).
      grafana = {
        root_url = "https://grafana.example.org/grafana/";
        oidc = {
          name = "Authentik";
          client_id = "grafana";
          client_secret_file = "/run/secrets/grafana-oidc-secret";
          auth_url = "https://auth.example.org/application/o/authorize/";
          token_url = "https://auth.example.org/application/o/token/";
          api_url = "https://auth.example.org/application/o/userinfo/";
          scopes = [
            "openid"
            "profile"
            "email"
            "groups"
          ];
          role_attribute_path = "contains(groups, 'Grafana Admins') && 'Admin' || 'Viewer'";
          allow_sign_up = true;
          use_pkce = true;
        };
      };
      alloy.log_files = [
        {
          job = "nginx";
          path = "/var/log/nginx/*access.log";
        }
      ];
    };
  };
}
