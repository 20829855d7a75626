//! Runs the NixOS module evaluation tests of tests/eval with nixpkgs' lib.
#![allow(dead_code)] // each test binary uses a part of these helpers

use std::path::{Path, PathBuf};
use std::process::Command;

use configgen::load::{Format, Source};
use serde_json::Value;

/// Says SKIPPED on the real stderr: libtest captures `eprintln!`, not this.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Loudly skips when a tool is missing, but fails in CI where it is installed.
pub fn tool(test: &str, name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing (CI=true)"
        );
        skipped(&format!("{test}: {name} not installed"));
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Every .nix file of the repository, sorted, skipping build outputs and VCS metadata.
pub fn nix_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), ".git" | "target" | "result" | "node_modules") {
                    walk(&path, out);
                }
            } else if name.ends_with(".nix") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
}

/// The result of tests/eval/default.nix (case name -> checks and config), or
/// None, said loudly, when NIXPKGS_LIB is not set.
pub fn evaluate_cases(test: &str) -> Option<serde_json::Map<String, Value>> {
    let Some(lib) = std::env::var_os("NIXPKGS_LIB").filter(|v| !v.is_empty()) else {
        skipped(&format!(
            "NIXPKGS_LIB not set ({test}: point it at nixpkgs' lib directory to evaluate the NixOS module)"
        ));
        return None;
    };
    let root = repo_root();
    let output = Command::new("nix-instantiate")
        .current_dir(&root)
        .args([
            "--eval",
            "--strict",
            "--json",
            "tests/eval",
            "--argstr",
            "nixpkgsLib",
        ])
        .arg(&lib)
        .output()
        .unwrap_or_else(|e| {
            panic!("running nix-instantiate (NIXPKGS_LIB is set, so Nix must be on PATH): {e}")
        });
    assert!(
        output.status.success(),
        "nix-instantiate --eval tests/eval failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_slice(&output.stdout).expect("nix-instantiate printed JSON") {
        Value::Object(cases) => Some(cases),
        other => panic!("tests/eval should give an attribute set, got {other}"),
    }
}

/// configgen's config from the JSON the module hands to `configgen render`,
/// through configgen's own loader and semantic validation (what `configgen
/// render` does), or configgen's located messages. The JSON is pretty-printed
/// so that `LINE:COL` points at one key; the message ends with it, numbered.
pub fn load_config(case: &str, json: &Value) -> Result<configgen::model::Config, String> {
    let text = serde_json::to_string_pretty(json).unwrap();
    let src = Source::new(
        format!("{case}/homelab-observability.json"),
        text.clone(),
        Format::Json,
    );
    configgen::load::load(&src).map_err(|diagnostics| {
        let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        let numbered: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, line)| format!("{:>4} {line}", i + 1))
            .collect();
        format!(
            "{}\n  (the JSON configgen was given:)\n{}",
            messages.join("\n"),
            numbered.join("\n")
        )
    })
}

/// [`load_config`] for a case that must load.
pub fn config_of(case: &str, json: &Value) -> configgen::model::Config {
    load_config(case, json)
        .unwrap_or_else(|e| panic!("{case}: configgen refuses the module's config:\n{e}"))
}

/// A config file of the repository through configgen's loader and validation.
pub fn load_file(path: &Path) -> configgen::model::Config {
    let src = Source::read(path.to_str().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    configgen::load::load(&src).unwrap_or_else(|diagnostics| {
        let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("{}", messages.join("\n"))
    })
}
