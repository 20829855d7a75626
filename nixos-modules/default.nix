# The NixOS module of homelab-observability, without packages: set
# services.homelab-observability.package and .probe.package, or apply the
# flake's overlays.default (the flake's nixosModules.default does it for you).
{
  imports = [./homelab-observability];
}
