{
  description = "homelab-observability: one declarative config for a complete homelab monitoring stack";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = {
    self,
    nixpkgs,
  }: let
    systems = [
      "x86_64-linux"
      "aarch64-linux"
    ];
    forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
  in {
    packages = forAllSystems (pkgs: import ./nix/packages.nix {inherit pkgs;});

    overlays.default = final: prev:
      removeAttrs (import ./nix/packages.nix {
        pkgs = final;
        inherit (prev.stdenv) hostPlatform;
      }) [
        "configgen"
        "default"
      ];

    nixosModules.homelab-observability = import ./nix/module.nix {inherit self;};
    nixosModules.default = self.nixosModules.homelab-observability;

    checks = forAllSystems (pkgs: import ./nix/checks.nix {inherit pkgs self;});

    devShells = forAllSystems (pkgs: {
      default = import ./nix/devshell.nix {inherit pkgs;};
    });

    formatter = forAllSystems (pkgs: pkgs.alejandra);
  };
}
