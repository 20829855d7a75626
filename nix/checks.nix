# `nix flake check`: the packages build, the VM tests pass, the Nix files are formatted.
{ pkgs, self }:
let
  inherit (pkgs) lib;
  packages = self.packages.${pkgs.stdenv.hostPlatform.system};
  nixFiles = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.fileFilter (file: file.hasExt "nix") ../.;
  };
in
removeAttrs packages [
  "default"
  "configgen"
]
// lib.optionalAttrs pkgs.stdenv.hostPlatform.isx86_64 (import ../tests/vm { inherit pkgs self; })
// {
  formatting = pkgs.runCommand "homelab-observability-nixfmt" { nativeBuildInputs = [ pkgs.nixfmt ]; } ''
    find ${nixFiles} -name '*.nix' -print0 | xargs -0 nixfmt --check
    touch $out
  '';
}
