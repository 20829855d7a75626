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
        red.ports = [2283];
        logs.container = "immich_server";
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
        url = "https://ntfy.sh/my-homelab-alerts";
      }
    ];
    defaultReceivers = ["phone"];

    grafana = {
      domain = "grafana.example.org";
      adminPasswordFile = "/run/secrets/grafana-admin-password";
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
        watchdog_url = "https://hc-ping.com/00000000-0000-0000-0000-000000000000";
        overrides = {
          HostHighCpuLoad.enabled = false;
          HostDiskAlmostFull = {
            threshold = 5;
            for = "15m";
          };
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
