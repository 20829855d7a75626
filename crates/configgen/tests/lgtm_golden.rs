//! Golden files of the Loki, Alloy, Tempo and Grafana outputs for the example
//! server and an agent. `UPDATE_GOLDEN=1 cargo test -p configgen --test lgtm_golden`
//! rewrites them; review the diff like code.

use std::path::{Path, PathBuf};

use configgen::model::Config;

const OWNED: &[&str] = &["loki/", "alloy/", "tempo/", "grafana/"];

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(path: &Path) -> Config {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(config: &Path, golden: &str) {
    let tree = configgen::render::render(&load(config)).unwrap();
    let dir = manifest().join("tests/golden").join(golden);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let rendered: Vec<(&str, &str)> = tree
        .files()
        .filter(|(p, _)| OWNED.iter().any(|o| p.starts_with(o)))
        .collect();
    assert!(!rendered.is_empty());
    if update {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut stale = Vec::new();
    for (path, contents) in &rendered {
        let file = dir.join(path);
        if update {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, contents).unwrap();
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(expected) if &expected == contents => {}
            Ok(_) => stale.push(format!("{path}: differs from {}", file.display())),
            Err(_) => stale.push(format!("{path}: no golden file {}", file.display())),
        }
    }
    // Golden files nobody renders any more.
    if !update {
        for file in walk(&dir) {
            let rel = file
                .strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !rendered.iter().any(|(p, _)| *p == rel) {
                stale.push(format!("{rel}: golden file but not rendered"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to refresh):\n{}",
        stale.join("\n")
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn example_server_matches_golden_files() {
    check(
        &manifest().join("../../examples/homelab.toml"),
        "lgtm-server",
    );
}

#[test]
fn agent_matches_golden_files() {
    check(&manifest().join("tests/fixtures/agent.toml"), "lgtm-agent");
}

#[test]
fn rendering_is_deterministic() {
    let cfg = load(&manifest().join("../../examples/homelab.toml"));
    assert_eq!(
        configgen::render::render(&cfg).unwrap(),
        configgen::render::render(&cfg).unwrap()
    );
}
