{
  lib,
  rustPlatform,
  llvmPackages,
  libbpf,
  src,
  version,
}:
rustPlatform.buildRustPackage {
  pname = "homelab-probe";
  inherit src version;
  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "-p"
    "homelab-probe"
  ];

  # crates/ebpf's build.rs compiles the BPF C programs with these. The
  # cc-wrapper's hardening flags are invalid for `-target bpf`, hence
  # hardeningDisable (it applies to the wrapped clang through the environment).
  env = {
    BPF_CLANG = "${llvmPackages.clang}/bin/clang";
    BPF_CFLAGS = "-I${lib.getDev libbpf}/include";
  };
  hardeningDisable = [
    "zerocallusedregs"
    "stackprotector"
  ];
  # Tests load BPF programs and need root.
  doCheck = false;

  meta = {
    description = "eBPF RED probe: HTTP rate, errors and duration of local services";
    license = lib.licenses.mit;
    mainProgram = "homelab-probe";
    # build.rs targets __TARGET_ARCH_x86
    platforms = ["x86_64-linux"];
  };
}
