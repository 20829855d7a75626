//! Golden files of the Loki, Alloy, Tempo and Grafana outputs for the example
//! server and an agent. `UPDATE_GOLDEN=1 cargo test -p configgen --test lgtm_golden`
//! rewrites them; review the diff like code.

mod support;

use std::path::{Path, PathBuf};

const OWNED: &[&str] = &["loki/", "alloy/", "tempo/", "grafana/"];

fn check(config: &Path, golden: &str) {
    let tree = support::render_file(config);
    let dir = support::crate_dir().join("tests/golden").join(golden);
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
    check(&support::example(), "lgtm-server");
}

#[test]
fn agent_matches_golden_files() {
    check(
        &support::crate_dir().join("tests/fixtures/agent.toml"),
        "lgtm-agent",
    );
}

#[test]
fn rendering_is_deterministic() {
    let path = support::example();
    assert_eq!(support::render_file(&path), support::render_file(&path));
}
