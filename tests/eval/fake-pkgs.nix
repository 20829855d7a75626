# The few pkgs functions the module calls, returning derivation-shaped
# attribute sets with the inputs kept, so that evaluation tests can inspect
# what would be built. Nothing is built.
{lib}: let
  storePath = name: seed: "/nix/store/${lib.substring 0 32 (builtins.hashString "sha256" seed)}-${name}";
  fakeDrv = name: attrs:
    attrs
    // {
      type = "derivation";
      inherit name;
      outPath = storePath name (builtins.toJSON (builtins.removeAttrs attrs ["passAsFile"]));
    };
  package = name: fakeDrv name {};
  pkgs = {
    stdenv.hostPlatform = {
      system = "x86_64-linux";
      isx86_64 = true;
    };
    writeText = name: text: fakeDrv name {inherit text;};
    runCommand = name: env: script: fakeDrv name {inherit env script;};
    jq = package "jq";
    yq = package "yq";
    prometheus-alertmanager = package "alertmanager";
    homelab-configgen = package "configgen";
    homelab-probe = package "homelab-probe";
    # used by the VM tests
    writeTextDir = path: text: fakeDrv (baseNameOf path) {inherit path text;};
    python3 = package "python3";
    curl = package "curl";
    testers.runNixOSTest = import ./run-nixos-test.nix {inherit lib pkgs;};
  };
in
  pkgs
