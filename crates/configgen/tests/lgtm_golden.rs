//! Golden files of the Loki, Alloy, Tempo and Grafana outputs for the example
//! server and an agent. `UPDATE_GOLDEN=1 cargo test -p configgen --test lgtm_golden`
//! rewrites them; review the diff like code.

mod support;

use std::path::Path;

const OWNED: &[&str] = &["loki/", "alloy/", "tempo/", "grafana/"];

fn check(config: &Path, golden: &str) {
    let tree = support::render_file(config);
    support::golden::check(&tree, |p| OWNED.iter().any(|o| p.starts_with(o)), golden);
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
