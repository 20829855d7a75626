# NixOS VM tests, run by `nix flake check` (x86_64-linux, needs KVM). Each file
# is a test module of nixpkgs' testing framework (nixos/lib/testing), the
# argument of pkgs.testers.runNixOSTest.
{
  pkgs,
  self,
}: let
  vmTest = name: file:
    pkgs.testers.runNixOSTest {
      imports = [file];
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
    };
in {
  vm-one-switch = vmTest "one-switch" ./one-switch.nix;
  vm-red = vmTest "red" ./red.nix;
  vm-alerting = vmTest "alerting" ./alerting.nix;
  vm-multi-host = vmTest "multi-host" ./multi-host.nix;
}
