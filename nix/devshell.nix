{pkgs}:
pkgs.mkShell {
  packages = with pkgs; [
    cargo
    rustc
    rustfmt
    clippy
    llvmPackages.clang
    libbpf
    bpftools
    prometheus
    prometheus-alertmanager
    prometheus-node-exporter
    prometheus-blackbox-exporter
    alejandra
    jq
    curl
  ];
  BPF_CFLAGS = "-I${pkgs.lib.getDev pkgs.libbpf}/include";
  # The nix-checks evaluation tests read nixpkgs' lib from here.
  NIXPKGS_LIB = "${pkgs.path}/lib";
  hardeningDisable = [
    "zerocallusedregs"
    "stackprotector"
  ];
}
