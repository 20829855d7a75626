# Evaluation tests of the NixOS module, run by `cargo test -p nix-checks`:
#   nix-instantiate --eval --strict --json tests/eval --argstr nixpkgsLib /path/to/nixpkgs/lib
# Result: case name -> { checks = [ { name, ok, actual, expected } ]; config; render; commandLines?; configgenRefuses?; }
# `config` is the JSON model handed to configgen; the Rust test loads it with
# configgen's validating loader and renders it when `render` is true, or
# requires configgen's located refusal when `configgenRefuses` is set.
{nixpkgsLib}: let
  lib = import nixpkgsLib;
  pkgs = import ./fake-pkgs.nix {inherit lib;};

  evalHost = modules:
    (lib.evalModules {
      modules =
        [
          ./stubs.nix
          ../../nixos-modules
          {_module.args.pkgs = pkgs;}
        ]
        ++ modules;
    })
    .config;

  check = name: actual: expected: {
    inherit name actual expected;
    ok = actual == expected;
  };
  holds = name: actual: check name actual true;

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  commandLines = import ./command-lines.nix {inherit lib pkgs;};

  # A case whose config must evaluate cleanly and render; its daemons' command
  # lines as nixpkgs builds them (tests/flag_parity.rs compares them with
  # configgen's runtime model).
  rendering = config: checks: {
    checks = [(check "no failed assertion" (failedAssertions config) [])] ++ checks;
    config = config.services.homelab-observability.generatedConfig;
    render = true;
    commandLines = commandLines config;
  };

  # A case that must be refused with a message containing `needle`.
  refused = needle: config: {
    checks = [
      (holds "an assertion says: ${needle}" (lib.any (lib.hasInfix needle) (failedAssertions config)))
    ];
    config = null;
    render = false;
  };

  # A case the module accepts but configgen must refuse (the Rust test loads
  # `config` with configgen's validating loader) with a located message
  # containing `needle`.
  refusedByConfiggen = needle: config: {
    checks = [(check "no failed assertion" (failedAssertions config) [])];
    config = config.services.homelab-observability.generatedConfig;
    render = false;
    configgenRefuses = needle;
  };

  # A case the module refuses with `needle`, as configgen would with
  # `configgenNeedle` (the Rust test hands configgen the same JSON): the
  # module's check and configgen's agree on that value.
  refusedLikeConfiggen = needle: configgenNeedle: config: {
    checks = [
      (holds "an assertion says: ${needle}" (lib.any (lib.hasInfix needle) (failedAssertions config)))
    ];
    config = config.services.homelab-observability.generatedConfig;
    render = false;
    configgenRefuses = configgenNeedle;
  };

  cases = import ./cases.nix {
    inherit
      lib
      pkgs
      evalHost
      check
      holds
      rendering
      refused
      refusedByConfiggen
      refusedLikeConfiggen
      ;
  };
in
  cases
  // import ./flake-outputs.nix {
    inherit
      lib
      pkgs
      evalHost
      check
      holds
      failedAssertions
      rendering
      ;
  }
