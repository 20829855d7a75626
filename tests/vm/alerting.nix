# Stopping the virtual host's backend fires ServiceProbeFailed to a webhook
# receiver; starting it again resolves the alert.
{pkgs, ...}: let
  # Prints every notification it receives, one JSON document per line.
  sink = pkgs.writeText "alert-sink.py" ''
    import http.server, sys

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            print("NOTIFICATION " + body.decode(), flush=True)
            self.send_response(200)
            self.end_headers()

    http.server.HTTPServer(("127.0.0.1", 9999), Sink).serve_forever()
  '';
in {
  nodes.machine = {
    imports = [./app.nix];
    services.homelab-observability = {
      enable = true;
      scrapeInterval = "5s";
      receivers = [
        {
          type = "webhook";
          name = "sink";
          url = "http://127.0.0.1:9999/";
        }
      ];
      defaultReceivers = ["sink"];
      settings = {
        prometheus.evaluation_interval = "5s";
        alerting = {
          group_wait = "1s";
          group_interval = "5s";
          overrides.ServiceProbeFailed.for = "15s";
        };
      };
    };
    systemd.services.alert-sink = {
      wantedBy = ["multi-user.target"];
      serviceConfig = {
        ExecStart = "${pkgs.python3}/bin/python3 ${sink}";
        DynamicUser = true;
      };
    };
  };
  testScript = builtins.readFile ./alerting.py;
}
