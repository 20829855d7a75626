//! Golden files: the metrics side of the rendered tree of examples/homelab.toml
//! (prometheus.yml and its scrape fragments, alertmanager.yml, blackbox.yml,
//! probe.toml) and the systemd units. `UPDATE_GOLDEN=1 cargo test -p configgen --test golden`
//! rewrites them; review the diff before committing.

mod support;

/// The paths these renderers own; other renderers have their own goldens.
fn is_metrics_file(path: &str) -> bool {
    path == "prometheus/prometheus.yml"
        || path.starts_with("prometheus/scrape/")
        || path.starts_with("alertmanager/")
        || path.starts_with("blackbox/")
        || path.starts_with("probe/")
        || path.starts_with("systemd/")
}

#[test]
fn homelab_example_matches_golden_files() {
    let tree = support::render_file(&support::example());
    assert!(tree.get("prometheus/prometheus.yml").is_some());
    support::golden::check(&tree, is_metrics_file, "homelab");
}

#[test]
fn rendering_is_deterministic() {
    let path = support::example();
    assert_eq!(support::render_file(&path), support::render_file(&path));
}
