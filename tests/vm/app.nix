# A web app behind an nginx virtual host, as a homelab has many: nginx on :80
# for "app.local", proxying to a small static HTTP server on 127.0.0.1:8080
# that answers 200 for /red/ok and 404 for any other /red/ path.
{pkgs, ...}: let
  site = pkgs.writeTextDir "red/ok" "ok\n";
in {
  networking.hosts."127.0.0.1" = ["app.local"];

  services.nginx = {
    enable = true;
    virtualHosts."app.local".locations."/".proxyPass = "http://127.0.0.1:8080";
  };

  systemd.services.app-backend = {
    description = "Backend of app.local";
    wantedBy = ["multi-user.target"];
    serviceConfig = {
      ExecStart = "${pkgs.python3}/bin/python3 -m http.server 8080 --bind 127.0.0.1 --directory ${site}";
      DynamicUser = true;
    };
  };
}
