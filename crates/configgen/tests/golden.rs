//! Golden files: the metrics side of the rendered tree of examples/homelab.toml
//! (prometheus.yml and its scrape fragments, alertmanager.yml, blackbox.yml,
//! probe.toml). `UPDATE_GOLDEN=1 cargo test -p configgen --test golden`
//! rewrites them; review the diff before committing.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The paths these renderers own; other renderers have their own goldens.
fn is_metrics_file(path: &str) -> bool {
    path == "prometheus/prometheus.yml"
        || path.starts_with("prometheus/scrape/")
        || path.starts_with("alertmanager/")
        || path.starts_with("blackbox/")
        || path.starts_with("probe/")
}

fn golden_dir() -> PathBuf {
    support::crate_dir().join("tests/golden/homelab")
}

fn files_under(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn homelab_example_matches_golden_files() {
    let tree = support::render_file(&support::example());
    let rendered: BTreeMap<String, String> = tree
        .files()
        .filter(|(p, _)| is_metrics_file(p))
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    assert!(rendered.contains_key("prometheus/prometheus.yml"));
    let dir = golden_dir();

    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        let _ = fs::remove_dir_all(&dir);
        for (path, contents) in &rendered {
            let p = dir.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, contents).unwrap();
        }
        eprintln!("golden files rewritten in {}", dir.display());
        return;
    }

    let golden = files_under(&dir);
    let missing: Vec<&String> = rendered
        .keys()
        .filter(|k| !golden.contains_key(*k))
        .collect();
    let stale: Vec<&String> = golden
        .keys()
        .filter(|k| !rendered.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "golden set differs: not in golden {missing:?}, no longer rendered {stale:?} \
         (UPDATE_GOLDEN=1 to refresh)"
    );
    for (path, contents) in &rendered {
        assert_eq!(
            contents, &golden[path],
            "{path} differs from its golden file (UPDATE_GOLDEN=1 to refresh)"
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    let path = support::example();
    assert_eq!(support::render_file(&path), support::render_file(&path));
}
