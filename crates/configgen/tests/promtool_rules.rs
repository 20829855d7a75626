//! The alert rules: rendered from a config, checked and behaviour-tested with
//! the real `promtool` against the unit tests in `crates/configgen/rules/tests/`.
//!
//! promtool missing: FAIL when CI=true, loudly SKIPPED otherwise.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use configgen::alerts::{self, CATALOGUE};
use configgen::model::{Config, Role};

const RULES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");

/// Rendered rule files of `cfg`: group name -> contents.
fn rendered_rules(cfg: &Config) -> BTreeMap<String, String> {
    let tree = configgen::render::render(cfg).expect("render");
    tree.files()
        .filter_map(|(path, text)| {
            let group = path
                .strip_prefix("prometheus/rules/")?
                .strip_suffix(".yml")?;
            Some((group.to_string(), text.to_string()))
        })
        .collect()
}

fn alert_names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect()
}

fn load_config(path: &Path) -> Config {
    let text = std::fs::read_to_string(path).unwrap();
    let cfg: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(alerts::check_overrides(&cfg), [], "{}", path.display());
    cfg
}

fn overrides_config() -> Config {
    load_config(&Path::new(RULES_DIR).join("tests/overrides/config.toml"))
}

fn example_config() -> Config {
    load_config(&support::example())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Writes the rendered rules to DIR/rules/ and the unit tests of `tests_subdir`
/// (relative to rules/tests) next to them, runs `promtool check rules` and
/// `promtool test rules`. Returns (test files, test cases, alert assertions).
fn promtool_round(promtool: &Path, cfg: &Config, tests_subdir: &str) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    let tests = rules.join("tests").join(tests_subdir);
    std::fs::create_dir_all(&tests).unwrap();
    let mut rule_files = Vec::new();
    for (group, text) in rendered_rules(cfg) {
        let path = rules.join(format!("{group}.yml"));
        std::fs::write(&path, text).unwrap();
        rule_files.push(path);
    }
    run(Command::new(promtool)
        .arg("check")
        .arg("rules")
        .args(&rule_files));

    let (mut files, mut cases, mut assertions) = (Vec::new(), 0, 0);
    for entry in std::fs::read_dir(Path::new(RULES_DIR).join("tests").join(tests_subdir)).unwrap() {
        let src = entry.unwrap().path();
        if src.extension().is_some_and(|e| e == "yml") {
            let text = std::fs::read_to_string(&src).unwrap();
            cases += text
                .lines()
                .filter(|l| l.trim_start().starts_with("- interval:"))
                .count();
            assertions += text
                .lines()
                .filter(|l| l.trim_start().starts_with("alertname:"))
                .count();
            let dst = tests.join(src.file_name().unwrap());
            std::fs::write(&dst, text).unwrap();
            files.push(dst);
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no unit tests in rules/tests/{tests_subdir}"
    );
    let out = run(Command::new(promtool).arg("test").arg("rules").args(&files));
    eprintln!("{out}");
    (files.len(), cases, assertions)
}

#[test]
fn promtool_checks_and_unit_tests_pass() {
    let Some(promtool) = support::require_tool("promtool", "promtool_checks_and_unit_tests_pass")
    else {
        return;
    };
    let (f1, c1, a1) = promtool_round(&promtool, &Config::default(), "");
    let (f2, c2, a2) = promtool_round(&promtool, &overrides_config(), "overrides");
    eprintln!(
        "alerts: {}; promtool: {} test files, {} test cases, {} alert assertions \
         (default config: {f1}/{c1}/{a1}; overrides: {f2}/{c2}/{a2})",
        CATALOGUE.len(),
        f1 + f2,
        c1 + c2,
        a1 + a2
    );
}

#[test]
fn promtool_accepts_the_example_rules() {
    let Some(promtool) = support::require_tool("promtool", "promtool_accepts_the_example_rules")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (group, text) in rendered_rules(&example_config()) {
        let path = dir.path().join(format!("{group}.yml"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    run(Command::new(promtool)
        .arg("check")
        .arg("rules")
        .args(&files));
}

#[test]
fn every_catalogue_alert_is_rendered_once_in_its_group() {
    let rules = rendered_rules(&Config::default());
    let mut seen = Vec::new();
    for (group, text) in &rules {
        assert!(
            text.starts_with(&format!("groups:\n  - name: {group}\n")),
            "{group}:\n{text}"
        );
        for name in alert_names(text) {
            let a = alerts::find(name).unwrap_or_else(|| panic!("{name} is not in the catalogue"));
            assert_eq!(a.group.name(), group, "{name}");
            seen.push(name.to_string());
        }
    }
    let mut expected: Vec<_> = CATALOGUE.iter().map(|a| a.name.to_string()).collect();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
}

/// Each rule: alert, expr, for (unless none), severity label, summary, description.
#[test]
fn every_rule_has_severity_summary_and_description() {
    for (group, text) in rendered_rules(&Config::default()) {
        for rule in text.split("      - alert: ").skip(1) {
            let name = rule.lines().next().unwrap();
            let a = alerts::find(name).unwrap();
            assert!(rule.contains("\n        expr: "), "{group}/{name}");
            assert!(
                rule.contains(&format!("\n          severity: {}\n", a.severity)),
                "{name}: severity {}",
                a.severity
            );
            match a.for_ {
                Some(d) => assert!(rule.contains(&format!("\n        for: {d}\n")), "{name}"),
                None => assert!(!rule.contains("\n        for: "), "{name}"),
            }
            assert!(rule.contains("\n          summary: \""), "{name}");
            assert!(rule.contains("\n          description: \""), "{name}");
            assert!(rule.contains("{{ $labels.") || name == "Watchdog" || name == "InternetDown");
        }
    }
}

#[test]
fn overrides_change_the_rendered_rules() {
    let rules = rendered_rules(&overrides_config());
    let probes = &rules["probes"];
    let failed = probes.split("- alert: ServiceProbeFailed").nth(1).unwrap();
    assert!(failed.contains("\n        for: 10s\n"), "{failed}");
    assert!(!rules["host"].contains("HostHighCpuLoad"));
    let full = rules["host"]
        .split("- alert: HostDiskAlmostFull")
        .nth(1)
        .unwrap();
    assert!(full.contains("* 100 < 20\n"), "{full}");
    assert!(full.contains("severity: warning"), "{full}");
    // A group whose alerts are all disabled is not rendered.
    assert!(!rules.contains_key("watchdog"));
}

#[test]
fn tls_expiry_false_excludes_the_service() {
    let rules = rendered_rules(&example_config());
    let soon = rules["probes"]
        .split("- alert: TlsCertificateExpiringSoon")
        .nth(1)
        .unwrap();
    assert!(soon.contains(r#"service!~"router""#), "{soon}");
    let rules = rendered_rules(&Config::default());
    assert!(!rules["probes"].contains("service!~"));
}

#[test]
fn agents_render_no_rules() {
    let mut cfg = Config::default();
    cfg.host.role = Role::Agent;
    cfg.host.ship_to = Some(configgen::model::ShipTo {
        prometheus_remote_write: "http://monitor:9090/api/v1/write".into(),
        loki_push: "http://monitor:3100/loki/api/v1/push".into(),
        otlp_grpc: None,
    });
    assert!(rendered_rules(&cfg).is_empty());
}

/// The .yml files under `dir`, recursively.
fn unit_test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(unit_test_files(&path));
        } else if path.extension().is_some_and(|e| e == "yml") {
            files.push(path);
        }
    }
    files
}

/// For every alert, the unit tests hold an assertion where it fires and one
/// where it stays silent (`exp_alerts: []`).
#[test]
fn every_alert_has_firing_and_silent_unit_tests() {
    let mut firing: BTreeMap<String, usize> = BTreeMap::new();
    let mut silent: BTreeMap<String, usize> = BTreeMap::new();
    for path in unit_test_files(&Path::new(RULES_DIR).join("tests")) {
        let text = std::fs::read_to_string(&path).unwrap();
        // Each assertion starts at `- eval_time:`; its alertname and
        // expectations follow until the next one.
        for assertion in text.split("- eval_time:").skip(1) {
            let assertion = assertion.split("\n  - interval:").next().unwrap();
            let name = assertion
                .lines()
                .find_map(|l| l.trim().strip_prefix("alertname: "))
                .unwrap_or_else(|| panic!("{}: assertion without alertname", path.display()))
                .to_string();
            assert!(
                alerts::find(&name).is_some(),
                "{}: unknown {name}",
                path.display()
            );
            if assertion.contains("exp_alerts: []") {
                *silent.entry(name).or_default() += 1;
            } else {
                assert!(
                    assertion.contains("exp_labels:"),
                    "{}: {name}",
                    path.display()
                );
                *firing.entry(name).or_default() += 1;
            }
        }
    }
    let missing: Vec<_> = CATALOGUE
        .iter()
        .filter(|a| !firing.contains_key(a.name) || !silent.contains_key(a.name))
        .map(|a| (a.name, firing.get(a.name), silent.get(a.name)))
        .collect();
    assert!(
        missing.is_empty(),
        "alerts lacking a firing or a silent test: {missing:?}"
    );
}

/// The RED alerts' minimum request rate lives in rules/red.yml.j2; the
/// catalogue's docs must state the same number.
#[test]
fn red_minimum_rate_is_documented_as_rendered() {
    let red = &rendered_rules(&Config::default())["red"];
    for name in ["ServiceHighErrorRate", "ServiceHighLatency"] {
        let rule = red.split(&format!("- alert: {name}\n")).nth(1).unwrap();
        assert!(rule.contains("[5m])) > 0.1\n"), "{rule}");
        assert!(alerts::find(name)
            .unwrap()
            .meaning
            .contains("0.1 request/s"));
    }
}
