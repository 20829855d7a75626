//! The bad-config corpus: every file in tests/bad-configs/ must make
//! `configgen render` fail with exactly the messages in its `.expected` file
//! (FILE:LINE:COL: field.path: message, one per line), and must leave an
//! existing --out directory byte-for-byte untouched.
//!
//! `BLESS=1 cargo test -p configgen --test bad_configs` rewrites the
//! `.expected` files from the current output (review the diff!).

mod support;

use std::fs;

use support::cli::{configgen, snapshot, stderr};
use support::crate_dir;

const CORPUS: &str = "tests/bad-configs";

#[test]
fn every_bad_config_fails_with_its_expected_messages() {
    let mut configs: Vec<String> = fs::read_dir(crate_dir().join(CORPUS))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".expected"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 20, "corpus shrank to {}", configs.len());
    let bless = std::env::var_os("BLESS").is_some();

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    fs::create_dir_all(out.join("prometheus")).unwrap();
    fs::write(out.join("prometheus/prometheus.yml"), "previous render\n").unwrap();
    let before = snapshot(tmp.path());

    let mut failures = Vec::new();
    for name in &configs {
        let config = format!("{CORPUS}/{name}");
        let expected_path = crate_dir().join(format!("{config}.expected"));
        let result = configgen(
            &[
                "render",
                "--config",
                &config,
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        );
        let stderr = stderr(&result);
        let messages: String = stderr
            .lines()
            .filter(|l| !l.starts_with("configgen: "))
            .map(|l| format!("{l}\n"))
            .collect();
        if result.status.code() != Some(1) {
            failures.push(format!(
                "{config}: exit {:?}, stderr:\n{stderr}",
                result.status
            ));
            continue;
        }
        if stderr.contains("panicked") {
            failures.push(format!("{config}: panic:\n{stderr}"));
            continue;
        }
        if snapshot(tmp.path()) != before {
            failures.push(format!("{config}: --out or its parent changed"));
        }
        if bless {
            fs::write(&expected_path, &messages).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if messages != expected {
            failures.push(format!(
                "{config}:\n--- expected\n{expected}--- got\n{messages}"
            ));
        }
        let check = configgen(&["check", "--config", &config], None);
        if check.status.code() != Some(1) || support::cli::stderr(&check) != stderr {
            failures.push(format!("{config}: `check` disagrees with `render`"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
