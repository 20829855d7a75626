# An agent's metrics and logs arrive at the server.
{...}: {
  nodes.server = {
    services.homelab-observability = {
      enable = true;
      acceptAgents = true;
      openFirewall = true;
    };
  };
  nodes.agent = {
    services.homelab-observability = {
      enable = true;
      role = "agent";
      serverAddress = "server";
    };
  };
  testScript = builtins.readFile ./listeners.py + builtins.readFile ./multi-host.py;
}
