//! `configgen apply`: the dry run of the real binary over real rendered trees,
//! and the reload path against a real running Prometheus.
//!
//! There is no systemd as PID 1 and no container engine here, so the live
//! test plays systemd's part for the reload apply decides on: it runs the
//! rendered drop-in's `ExecReload=` with `$MAINPID` set to the test's
//! Prometheus, as `systemctl reload-or-restart` would (daemon-reload has
//! nothing to do for a process systemd does not run).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use configgen::apply::{self, Change, Step, Target};
use configgen::model::AlertOverride;
use configgen::plan::Plan;
use configgen::render::systemd::DROP_IN;
use support::cli::{configgen, snapshot, stderr};
use support::stack::{self, Stack};

/// The example, installed at `out`.
fn example_config(dir: &Path, out: &Path, for_: &str) -> String {
    let text = fs::read_to_string(support::example())
        .unwrap()
        .replace("for = \"15m\"", &format!("for = \"{for_}\""));
    assert!(text.contains(&format!("for = \"{for_}\"")));
    let path = dir.join("homelab.toml");
    fs::write(
        &path,
        format!("{text}\n[deploy]\nconfig_dir = \"{}\"\n", out.display()),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn dry_run_lists_the_changed_rule_file_and_one_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let units = tmp.path().join("units");
    let config = example_config(tmp.path(), &out, "15m");
    let r = configgen(
        &[
            "render",
            "--config",
            &config,
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let before = snapshot(&out);

    let config = example_config(tmp.path(), &out, "17m");
    let args = [
        "apply",
        "--config",
        &config,
        "--out",
        out.to_str().unwrap(),
        "--unit-dir",
        units.to_str().unwrap(),
        "--dry-run",
    ];
    let r = configgen(&args, None);
    assert!(r.status.success(), "{}", stderr(&r));
    let stdout = String::from_utf8_lossy(&r.stdout);
    let steps: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .collect();
    assert_eq!(
        steps,
        [
            "systemctl daemon-reload",
            "systemctl reload-or-restart prometheus.service"
        ],
        "{stdout}"
    );
    let changed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(['+', '-', '~']))
        .collect();
    assert_eq!(changed, ["~ prometheus/rules/host.yml"], "{stdout}");
    assert_eq!(snapshot(&out), before, "a dry run wrote to --out");
    assert!(!units.exists());

    // A first apply links every unit; a flag change restarts.
    let fresh = tmp.path().join("fresh");
    let config = example_config(tmp.path(), &fresh, "15m");
    let args = [
        "apply",
        "--config",
        &config,
        "--out",
        fresh.to_str().unwrap(),
        "--unit-dir",
        units.to_str().unwrap(),
        "--dry-run",
    ];
    let r = configgen(&args, None);
    assert!(r.status.success(), "{}", stderr(&r));
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(stdout.contains(&format!(
        "  ln -sfn {}/systemd/prometheus.service.d/{DROP_IN} {}/prometheus.service.d/{DROP_IN}\n",
        fresh.display(),
        units.display()
    )));
    assert!(stdout.contains("  systemctl daemon-reload\n"));
    assert!(stdout.contains("  systemctl restart prometheus.service\n"));
    assert!(!fresh.exists());
}

#[test]
fn apply_refuses_an_out_that_is_not_the_config_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let config = example_config(tmp.path(), &tmp.path().join("installed"), "15m");
    let other = tmp.path().join("elsewhere");
    let r = configgen(
        &[
            "apply",
            "--config",
            &config,
            "--out",
            other.to_str().unwrap(),
            "--dry-run",
        ],
        None,
    );
    assert!(!r.status.success());
    assert!(
        stderr(&r).contains("is not deploy.config_dir"),
        "{}",
        stderr(&r)
    );
    assert!(!other.exists());
}

/// `for` of a rule in /api/v1/rules, in seconds.
fn rule_duration(stack: &Stack, alert: &str) -> Result<f64, String> {
    let data = stack.api("/api/v1/rules?type=alert")?;
    for group in data["groups"].as_array().ok_or("no groups")? {
        for rule in group["rules"].as_array().ok_or("no rules")? {
            if rule["name"] == alert {
                return rule["duration"].as_f64().ok_or("no duration".into());
            }
        }
    }
    Err(format!("{alert} is not loaded"))
}

#[test]
fn an_edited_alert_rule_is_loaded_by_reload_without_a_restart() {
    let test = "an_edited_alert_rule_is_loaded_by_reload_without_a_restart";
    if !stack::binaries_present(test) || support::require_tool("kill", test).is_none() {
        return;
    }
    const ALERT: &str = "HostDiskAlmostFull";
    let mut cfg = stack::loopback_config("apply");
    cfg.alerting.overrides.insert(
        ALERT.into(),
        AlertOverride {
            for_: Some("15m".into()),
            ..Default::default()
        },
    );
    let mut stack = Stack::start(&cfg);
    stack::wait_until(Duration::from_secs(20), || {
        rule_duration(&stack, ALERT).and_then(|d| {
            if d == 900.0 {
                Ok(())
            } else {
                Err(format!("{d}"))
            }
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    let pid = stack.pid("prometheus.service").expect("prometheus runs");
    let before = stack.api("/api/v1/status/runtimeinfo").unwrap();
    // lastConfigTime counts whole seconds: let the next one start.
    std::thread::sleep(Duration::from_millis(1100));

    let mut edited = stack.config().clone();
    edited.alerting.overrides.get_mut(ALERT).unwrap().for_ = Some("17m".into());
    let out = stack.config_dir();
    let old = apply::read_tree(&out).unwrap();
    let new = configgen::render::render(&edited).unwrap();
    let change = Change::between(&old, &new);
    let plan = Plan::new(&edited);
    let steps = apply::steps(
        Target::Systemd,
        &change,
        &plan,
        &new,
        &out,
        Path::new("/nonexistent"),
    )
    .unwrap();
    let steps: Vec<String> = steps.iter().map(Step::to_string).collect();
    assert_eq!(
        steps,
        [
            "systemctl daemon-reload",
            "systemctl reload-or-restart prometheus.service"
        ]
    );
    configgen::write::write_tree(&new, &out, &[]).unwrap();

    // What systemd does for reload-or-restart: the unit's ExecReload=.
    let dropin =
        fs::read_to_string(out.join(format!("systemd/prometheus.service.d/{DROP_IN}"))).unwrap();
    let reload = dropin
        .lines()
        .filter_map(|l| l.strip_prefix("ExecReload="))
        .rfind(|v| !v.is_empty())
        .expect("an ExecReload= command");
    let words: Vec<String> = reload
        .split_whitespace()
        .map(|w| {
            if w == "$MAINPID" {
                pid.to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let status = Command::new(&words[0]).args(&words[1..]).status().unwrap();
    assert!(status.success(), "{reload}");

    stack::wait_until(Duration::from_secs(20), || {
        rule_duration(&stack, ALERT).and_then(|d| {
            if d == 1020.0 {
                Ok(())
            } else {
                Err(format!("for is {d}s"))
            }
        })
    })
    .unwrap_or_else(|e| panic!("the edited rule was not loaded: {e}\n{}", stack.logs()));
    assert_eq!(
        stack.pid("prometheus.service"),
        Some(pid),
        "Prometheus restarted"
    );
    let after = stack.api("/api/v1/status/runtimeinfo").unwrap();
    assert_eq!(after["reloadConfigSuccess"], true, "{after}");
    assert_ne!(
        after["lastConfigTime"], before["lastConfigTime"],
        "no reload happened"
    );
}
