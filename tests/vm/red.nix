# The eBPF probe measures the requests curl sends through the virtual host.
{...}: {
  nodes.machine = {
    imports = [./app.nix];
    services.homelab-observability = {
      enable = true;
      scrapeInterval = "5s";
      # Replaces the discovered entry: same vhost, plus a route template.
      services.app-local = {
        http.url = "http://app.local/";
        red = {
          ports = [8080];
          routes = ["/red/{name}"];
        };
      };
    };
  };
  testScript = builtins.readFile ./red.py;
}
