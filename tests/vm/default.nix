# NixOS VM tests, run by `nix flake check` (x86_64-linux, needs KVM).
{
  pkgs,
  self,
}: let
  vmTest = name: file:
    pkgs.testers.nixosTest (
      {
        name = "homelab-observability-${name}";
        # Shared by every node: the module, and the tools the test scripts use.
        defaults = {
          imports = [self.nixosModules.default];
          environment.systemPackages = [
            pkgs.curl
            pkgs.jq
          ];
          virtualisation.memorySize = 3072;
          virtualisation.cores = 2;
        };
      }
      // import file {inherit pkgs;}
    );
in {
  vm-one-switch = vmTest "one-switch" ./one-switch.nix;
  vm-red = vmTest "red" ./red.nix;
  vm-alerting = vmTest "alerting" ./alerting.nix;
  vm-multi-host = vmTest "multi-host" ./multi-host.nix;
}
