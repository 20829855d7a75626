# flake.nix's outputs, evaluated with a stand-in nixpkgs (lib plus fake
# packages): their names, and the flake's module wiring its own packages.
{
  lib,
  pkgs,
  evalHost,
  check,
  holds,
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
in {
  checks = [
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
    (check "the flake's module uses the flake's configgen" fromFlakeModule.services.homelab-observability.package.name "configgen.nix")
    (check "the flake's module uses the flake's probe" fromFlakeModule.services.homelab-observability.probe.package.name "probe.nix")
    (holds "the flake's module renders with it" (
      lib.hasInfix "configgen render" fromFlakeModule.services.homelab-observability.tree.script
    ))
  ];
  config = null;
  render = false;
}
