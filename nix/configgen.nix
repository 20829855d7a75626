{
  lib,
  rustPlatform,
  src,
  version,
}:
rustPlatform.buildRustPackage {
  pname = "configgen";
  inherit src version;
  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "-p"
    "configgen"
  ];
  # The workspace's tests need the real daemons, root and eBPF: CI runs them
  # with `cargo test --workspace`.
  doCheck = false;

  meta = {
    description = "Compiles one declarative homelab config into every config file of the monitoring stack";
    license = lib.licenses.mit;
    mainProgram = "configgen";
    platforms = lib.platforms.linux;
  };
}
