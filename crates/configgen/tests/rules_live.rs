//! The rendered rules loaded by a real Prometheus that scrapes a real
//! node_exporter, blackbox_exporter, Alertmanager and itself (the loopback
//! stack of tests/support/stack.rs): every rule evaluates without error on
//! real series (label sets, vector matching), and the Watchdog fires.
//!
//! Binaries missing: FAIL when CI=true, loudly SKIPPED otherwise.

mod support;

use std::time::Duration;

use configgen::alerts::CATALOGUE;
use configgen::model::{AlertOverride, HttpCheck, Service};
use configgen::plan::Plan;
use serde_json::Value;
use support::stack::{self, Stack};

fn rules_of(data: &Value) -> Vec<Value> {
    data["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Metric families the rules use that this machine cannot be relied on to
/// expose: they need sensors, md arrays, systemd as PID 1, the conntrack
/// module, TLS targets, ZFS pools, a textfile script (node_reboot_required),
/// or the homelab-probe (tested in its own crate).
const MAY_BE_ABSENT: &[&str] = &[
    "node_hwmon_",
    "node_zfs_",
    "node_reboot_required",
    "node_md_",
    "node_systemd_",
    "node_nf_conntrack_",
    "probe_ssl_",
    "http_server_",
    "homelab_probe_",
];

/// Metric names read by the `expr`s of rendered rule files: identifiers with
/// a known exporter prefix, outside label matchers.
fn metric_names(rule_files: &str) -> Vec<String> {
    const PREFIXES: [&str; 6] = [
        "node_",
        "prometheus_",
        "alertmanager_",
        "probe_",
        "http_",
        "homelab_",
    ];
    let mut exprs = String::new();
    let mut in_expr = false;
    for line in rule_files.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("expr:") {
            in_expr = true;
            exprs.push_str(rest);
        } else if in_expr && line.starts_with("          ") {
            exprs.push_str(line);
        } else {
            in_expr = false;
        }
        exprs.push('\n');
    }
    let mut outside_braces = String::new();
    let mut depth = 0;
    for c in exprs.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 => outside_braces.push(c),
            _ => {}
        }
    }
    let mut names: Vec<String> = outside_braces
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| PREFIXES.iter().any(|p| w.starts_with(p)))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn prometheus_evaluates_every_rule_on_real_series() {
    if !stack::binaries_present("prometheus_evaluates_every_rule_on_real_series") {
        return;
    }
    let mut cfg = stack::loopback_config("live");
    // The override the end-to-end alert delivery relies on: a short `for`.
    cfg.alerting.overrides.insert(
        "ServiceProbeFailed".into(),
        AlertOverride {
            for_: Some("2s".into()),
            ..Default::default()
        },
    );
    let http_check = |name: &str, url: String| Service {
        name: name.into(),
        http: Some(HttpCheck {
            url,
            ..HttpCheck::default()
        }),
        ..Service::default()
    };
    cfg.services = vec![
        http_check(
            "prometheus-ui",
            format!("http://127.0.0.1:{}/-/healthy", cfg.prometheus.port),
        ),
        http_check(
            "broken",
            format!("http://127.0.0.1:{}/", stack::free_port()),
        ),
    ];
    let rendered_promql: String = support::render(&cfg)
        .files()
        .filter(|(path, _)| path.starts_with("prometheus/rules/"))
        .map(|(_, text)| text)
        .collect();
    let stack = Stack::start(&cfg);

    // Wait until every target is up, the rules ran a few times on its series,
    // and the failing probe's alert fired.
    let targets = stack
        .wait_targets_up(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("targets not up: {e}\n{}", stack.logs()));
    let planned: usize = Plan::new(&cfg)
        .scrape_jobs()
        .iter()
        .map(|j| j.targets.len())
        .sum();
    assert_eq!(targets.len(), planned, "targets up: {targets:?}");
    std::thread::sleep(Duration::from_secs(5));
    let alerts = stack::wait_until(Duration::from_secs(60), || {
        let alerts = stack.api("/api/v1/alerts")?;
        let fired =
            alerts["alerts"].as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "ServiceProbeFailed" && a["state"] == "firing"
            });
        if fired {
            Ok(alerts)
        } else {
            Err(format!("ServiceProbeFailed not firing: {alerts}"))
        }
    })
    .unwrap_or_else(|e| panic!("no steady state: {e}\n{}", stack.logs()));
    let rules_data = stack.api("/api/v1/rules").expect("rules API");

    let rules = rules_of(&rules_data);
    assert_eq!(rules.len(), CATALOGUE.len(), "rules loaded by Prometheus");
    let broken: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(
        broken.is_empty(),
        "rules failing to evaluate:\n{}",
        broken.join("\n")
    );

    // Every metric a rule reads exists under that name in the real exporters.
    let present = stack
        .api("/api/v1/label/__name__/values")
        .expect("names API");
    let present: Vec<&str> = present
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let used = metric_names(&rendered_promql);
    for sure in [
        "node_filesystem_avail_bytes",
        "probe_success",
        "prometheus_config_last_reload_successful",
        "alertmanager_notifications_failed_total",
    ] {
        assert!(
            used.iter().any(|m| m == sure),
            "{sure} not found in {used:?}"
        );
    }
    let missing: Vec<String> = used
        .into_iter()
        .filter(|m| {
            !present.contains(&m.as_str()) && !MAY_BE_ABSENT.iter().any(|p| m.starts_with(p))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metrics used by rules but exposed by no exporter: {missing:?}"
    );

    let active: Vec<(String, String, String)> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let l = &a["labels"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&l["alertname"]), s(&a["state"]), s(&l["service"]))
        })
        .collect();
    eprintln!(
        "{} rules evaluated without error; active alerts: {active:?}",
        rules.len()
    );
    let firing = |name: &str, service: &str| {
        active
            .iter()
            .any(|(n, st, sv)| n == name && st == "firing" && sv == service)
    };
    assert!(firing("Watchdog", ""), "{active:?}");
    assert!(firing("ServiceProbeFailed", "broken"), "{active:?}");
    assert!(
        !active
            .iter()
            .any(|(n, _, sv)| n == "ServiceProbeFailed" && sv == "prometheus-ui"),
        "{active:?}"
    );
    assert!(
        !active
            .iter()
            .any(|(n, ..)| n == "PrometheusNotConnectedToAlertmanagers" || n == "TargetDown"),
        "{active:?}"
    );
}
