# enable = true and one nginx virtual host: the whole stack comes up, wired.
{...}: {
  nodes.machine = {
    imports = [./app.nix];
    services.homelab-observability.enable = true;
  };
  testScript = builtins.readFile ./listeners.py + builtins.readFile ./one-switch.py;
}
