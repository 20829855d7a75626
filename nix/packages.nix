{pkgs}: let
  src = import ./source.nix {inherit (pkgs) lib;};
  version = (pkgs.lib.importTOML ../Cargo.toml).workspace.package.version;
  homelab-configgen = pkgs.callPackage ./configgen.nix {inherit src version;};
in
  {
    inherit homelab-configgen;
    configgen = homelab-configgen;
    default = homelab-configgen;
  }
  // pkgs.lib.optionalAttrs pkgs.stdenv.hostPlatform.isx86_64 {
    homelab-probe = pkgs.callPackage ./probe.nix {inherit src version;};
  }
