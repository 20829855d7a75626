# The flake's NixOS module: nixos-modules/ with this flake's packages as defaults.
{self}: {
  lib,
  pkgs,
  ...
}: let
  packages = self.packages.${pkgs.stdenv.hostPlatform.system};
in {
  imports = [../nixos-modules];

  services.homelab-observability = {
    package = lib.mkDefault packages.homelab-configgen;
    probe.package = lib.mkDefault (
      packages.homelab-probe
      or (throw "homelab-probe is built for x86_64-linux only: set services.homelab-observability.probe.enable = false")
    );
  };
}
