# flake.nix's outputs, evaluated with a stand-in nixpkgs (lib plus fake
# packages): their names, the overlay in a fixpoint, the flake's module wiring
# its own packages, and the VM tests (one case per node, whose config configgen
# loads and renders).
{
  lib,
  pkgs,
  evalHost,
  check,
  holds,
  failedAssertions,
  rendering,
}: let
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  pkgsFor = system:
    pkgs
    // {
      inherit lib;
      stdenv.hostPlatform = {
        inherit system;
        isx86_64 = system == "x86_64-linux";
      };
      callPackage = file: _args: pkgs.runCommand (baseNameOf (toString file)) {} "";
    };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs systems pkgsFor;
  };
  self = (import ../../flake.nix).outputs {inherit self nixpkgs;};

  # The overlay applied as nixpkgs applies overlays: the package set is the
  # fixpoint of its base extended by each overlay, and the base's own
  # functions (callPackage) read the final set.
  overlaid = system:
    lib.fix (lib.extends self.overlays.default (final:
      removeAttrs (pkgsFor system) [
        "homelab-configgen"
        "homelab-probe"
      ]
      // {
        callPackage = file: _args: final.runCommand (baseNameOf (toString file)) {} "";
      }));

  # Without the flake's module: nixos-modules/ takes the packages from the overlay.
  fromOverlay = evalHost [
    {
      services.homelab-observability.enable = true;
      _module.args.pkgs = lib.mkForce (overlaid "x86_64-linux");
    }
  ];

  fromFlakeModule = evalHost [
    self.nixosModules.default
    {
      services.homelab-observability.enable = true;
      _module.args.pkgs = lib.mkForce (pkgsFor "x86_64-linux");
    }
  ];

  vmTests = lib.filterAttrs (name: _: lib.hasPrefix "vm-" name) self.checks.x86_64-linux;
in
  lib.concatMapAttrs (test: {nodes, ...}: lib.mapAttrs' (node: config: lib.nameValuePair "${test}.${node}" (rendering config [])) nodes) vmTests
  // {
    flake-outputs.checks = [
      (check "outputs" (lib.attrNames self) [
        "checks"
        "devShells"
        "formatter"
        "nixosModules"
        "overlays"
        "packages"
      ])
      (check "x86_64 packages" (lib.attrNames self.packages.x86_64-linux) [
        "configgen"
        "default"
        "homelab-configgen"
        "homelab-probe"
      ])
      (check "the probe is x86_64 only" (lib.attrNames self.packages.aarch64-linux) [
        "configgen"
        "default"
        "homelab-configgen"
      ])
      (check "modules" (lib.attrNames self.nixosModules) [
        "default"
        "homelab-observability"
      ])
      (check "the overlay adds the packages in a fixpoint" (map (name: (overlaid "x86_64-linux").${name}.name) [
          "homelab-configgen"
          "homelab-probe"
        ]) [
          "configgen.nix"
          "probe.nix"
        ])
      (check "the overlay adds no probe on aarch64" ((overlaid "aarch64-linux") ? homelab-probe) false)
      (check "the module takes configgen from the overlay" fromOverlay.services.homelab-observability.package.name "configgen.nix")
      (check "the module takes the probe from the overlay" fromOverlay.services.homelab-observability.probe.package.name "probe.nix")
      (check "x86_64 checks" (lib.attrNames self.checks.x86_64-linux) [
        "formatting"
        "homelab-configgen"
        "homelab-probe"
        "vm-alerting"
        "vm-multi-host"
        "vm-one-switch"
        "vm-red"
      ])
      (check "every VM test evaluates with runNixOSTest's arguments, its nodes without failed assertion or warning" (lib.mapAttrs (_: test: lib.mapAttrs (_: node: failedAssertions node ++ node.warnings) test.nodes) vmTests) {
        vm-alerting.machine = [];
        vm-multi-host = {
          agent = [];
          server = [];
        };
        vm-one-switch.machine = [];
        vm-red.machine = [];
      })
      (check "VM test nodes run the stack" (lib.mapAttrs (_: test: lib.mapAttrs (_: node: node.services.homelab-observability.role) test.nodes) vmTests) {
        vm-alerting.machine = "server";
        vm-multi-host = {
          agent = "agent";
          server = "server";
        };
        vm-one-switch.machine = "server";
        vm-red.machine = "server";
      })
      (check "the multi-host agent ships to the server node" vmTests.vm-multi-host.nodes.agent.services.homelab-observability.generatedConfig.host.ship_to.loki_push "http://server:3100/loki/api/v1/push")
      (holds "the one-switch and multi-host tests check every socket of the stack" (
        lib.all (test: lib.hasInfix "assert_loopback_only(" test.testScript && lib.hasInfix "def assert_loopback_only" test.testScript) [
          vmTests.vm-one-switch
          vmTests.vm-multi-host
        ]
      ))
      (check "the flake's module uses the flake's configgen" fromFlakeModule.services.homelab-observability.package.name "configgen.nix")
      (check "the flake's module uses the flake's probe" fromFlakeModule.services.homelab-observability.probe.package.name "probe.nix")
      (holds "the flake's module renders with it" (
        lib.hasInfix "configgen render" fromFlakeModule.services.homelab-observability.tree.script
      ))
    ];
    flake-outputs.config = null;
    flake-outputs.render = false;
  }
