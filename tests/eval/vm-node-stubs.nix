# Options the VM tests' nodes set besides those of ./stubs.nix: the test
# machine's size (nixos/modules/virtualisation/qemu-vm.nix) and ordinary NixOS
# options (environment.systemPackages, networking.hosts).
{lib, ...}: let
  inherit (lib) mkOption types;
in {
  options = {
    virtualisation.memorySize = mkOption {
      type = types.ints.positive;
      default = 1024;
    };
    virtualisation.cores = mkOption {
      type = types.ints.positive;
      default = 1;
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [];
    };
    networking.hosts = mkOption {
      type = types.attrsOf (types.listOf types.str);
      default = {};
    };
  };
}
