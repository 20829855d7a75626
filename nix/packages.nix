# The flake's packages. `hostPlatform` decides which exist. The overlay passes
# the previous layer's: the names an overlay returns must not depend on the
# fixpoint it is applied to (nor on `pkgs.lib`, hence `if`, not optionalAttrs).
{
  pkgs,
  hostPlatform ? pkgs.stdenv.hostPlatform,
}: let
  src = import ./source.nix {inherit (pkgs) lib;};
  version = (pkgs.lib.importTOML ../Cargo.toml).workspace.package.version;
  homelab-configgen = pkgs.callPackage ./configgen.nix {inherit src version;};
in
  {
    inherit homelab-configgen;
    configgen = homelab-configgen;
    default = homelab-configgen;
  }
  // (
    if hostPlatform.isx86_64
    then {homelab-probe = pkgs.callPackage ./probe.nix {inherit src version;};}
    else {}
  )
