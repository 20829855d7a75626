//! Compiles the BPF programs with clang (no /sys, no network: the kernel types come from
//! bpf/kernel_types.h, relocated at load time by CO-RE) and turns the numeric #defines of
//! bpf/probe_abi.h into Rust constants.
//!
//! Environment: `BPF_CLANG` (default: `clang`, then `clang-14`), `BPF_CFLAGS` (extra flags,
//! e.g. `-I/nix/store/...-libbpf/include` when libbpf's headers are not in /usr/include).

use std::{env, fs, path::PathBuf, process::Command};

const SOURCES: &[&str] = &[
    "bpf/probe.bpf.c",
    "bpf/sockhooks.bpf.c",
    "bpf/rawtp.bpf.c",
    "bpf/probe_abi.h",
    "bpf/kernel_types.h",
];

fn main() {
    for src in SOURCES {
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_CFLAGS");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    compile("bpf/probe.bpf.c", &out.join("probe.bpf.o"), &[]);
    // Without kernel framing: for kernels before 5.17 (no bpf_loop) and --no-kernel-framing.
    compile(
        "bpf/probe.bpf.c",
        &out.join("probe-bytes.bpf.o"),
        &["-DHL_NO_FRAMING"],
    );
    compile("bpf/sockhooks.bpf.c", &out.join("sockhooks.bpf.o"), &[]);
    compile("bpf/rawtp.bpf.c", &out.join("rawtp.bpf.o"), &[]);
    write_constants(&out.join("abi_consts.rs"));
}

fn compile(src: &str, obj: &std::path::Path, defines: &[&str]) {
    let candidates: Vec<String> = match env::var("BPF_CLANG") {
        Ok(c) => vec![c],
        Err(_) => vec!["clang".into(), "clang-14".into()],
    };
    let extra: Vec<String> = env::var("BPF_CFLAGS")
        .map(|f| f.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut last_err = String::new();
    for clang in &candidates {
        let result = Command::new(clang)
            .args([
                "-O2",
                "-g",
                "-target",
                "bpf",
                "-D__TARGET_ARCH_x86",
                "-Wall",
            ])
            .args(["-Wno-unused-function", "-Ibpf"])
            .args(defines)
            .args(&extra)
            .args(["-c", src, "-o"])
            .arg(obj)
            .output();
        match result {
            Ok(o) if o.status.success() => return,
            Ok(o) => panic!(
                "{clang} failed to compile {src}:\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => last_err = format!("{clang}: {e}"),
        }
    }
    panic!(
        "no clang to compile the BPF programs ({last_err}); install clang and libbpf-dev \
         (bpf/bpf_helpers.h), or set BPF_CLANG / BPF_CFLAGS"
    );
}

fn write_constants(path: &std::path::Path) {
    let header = fs::read_to_string("bpf/probe_abi.h").expect("read bpf/probe_abi.h");
    let mut rust = String::new();
    for line in header.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        if value.parse::<u64>().is_ok() {
            rust.push_str(&format!("pub const {name}: usize = {value};\n"));
        }
    }
    fs::write(path, rust).expect("write abi_consts.rs");
}
