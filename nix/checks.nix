# `nix flake check`: the packages build, the VM tests pass, the Nix files are formatted.
{
  pkgs,
  self,
}: let
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
  // lib.optionalAttrs pkgs.stdenv.hostPlatform.isx86_64 (import ../tests/vm {inherit pkgs self;})
  // {
    # The flake's formatter; `cargo test -p nix-checks` checks the same with alejandra's library.
    formatting = pkgs.runCommand "homelab-observability-alejandra" {nativeBuildInputs = [pkgs.alejandra];} ''
      alejandra --check ${nixFiles}
      touch $out
    '';
  }
