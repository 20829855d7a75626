# Stand-in for pkgs.testers.runNixOSTest (pkgs/build-support/testers): the test
# module is evaluated against the options nixpkgs' testing framework declares
# for it (nixos/lib/testing: `name`, `nodes`, `defaults`, `testScript`), so an
# argument it does not take is an error; each node is evaluated like a NixOS
# configuration of the stubs, with `defaults` and the host name the framework
# gives it. Nothing is built: the result carries the test script and the
# nodes' configurations.
{
  lib,
  pkgs,
}: testModule: let
  inherit (lib) mkOption types;
  test =
    (lib.evalModules {
      modules = [
        {
          options = {
            name = mkOption {type = types.str;};
            nodes = mkOption {
              type = types.lazyAttrsOf types.deferredModule;
              default = {};
            };
            defaults = mkOption {
              type = types.deferredModule;
              default = {};
            };
            testScript = mkOption {type = types.either types.str (types.functionTo types.str);};
          };
          # nixos/lib/testing/pkgs.nix: `pkgs` of a test module is the host's
          config._module.args = {
            inherit pkgs;
            hostPkgs = pkgs;
          };
        }
        testModule
      ];
    })
    .config;
  node = name: module:
    (lib.evalModules {
      modules = [
        ./stubs.nix
        ./vm-node-stubs.nix
        test.defaults
        module
        {
          _module.args.pkgs = pkgs;
          # nixos/lib/testing/network.nix
          networking.hostName = lib.mkDefault name;
        }
      ];
    })
    .config;
in {
  type = "derivation";
  name = "vm-test-run-${test.name}";
  outPath = "/nix/store/${lib.substring 0 32 (builtins.hashString "sha256" test.name)}-vm-test-run-${test.name}";
  inherit (test) testScript;
  nodes = lib.mapAttrs node test.nodes;
}
