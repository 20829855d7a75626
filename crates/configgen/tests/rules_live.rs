//! The rendered rules loaded by a real Prometheus that scrapes a real
//! node_exporter and itself: every rule evaluates without error on real
//! series (label sets, vector matching), and the Watchdog fires.
//!
//! Binaries missing: FAIL when CI=true, loudly SKIPPED otherwise.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use configgen::alerts::CATALOGUE;
use configgen::model::{AlertOverride, Config};
use configgen::plan::job;
use serde_json::Value;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} not found in PATH but CI=true");
        }
        eprintln!(
            "SKIPPED: {name} not found in PATH; rules were NOT evaluated by a live Prometheus"
        );
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    Daemon(
        Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display())),
    )
}

/// GET a Prometheus API path; None until it answers with status success.
fn api(port: u16, path: &str) -> Option<Value> {
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    (v["status"] == "success").then(|| v["data"].clone())
}

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
/// module, TLS targets, or the homelab-probe (tested in its own crate).
const MAY_BE_ABSENT: &[&str] = &[
    "node_hwmon_",
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
    let bins = [
        "prometheus",
        "prometheus-node-exporter",
        "prometheus-alertmanager",
        "prometheus-blackbox-exporter",
    ];
    let Some(bins) = bins.iter().map(|b| binary(b)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let [prometheus, node_exporter, alertmanager, blackbox] = &bins[..] else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = d.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // The override the end-to-end alert delivery relies on: a short `for`.
    let mut cfg = Config::default();
    cfg.alerting.overrides.insert(
        "ServiceProbeFailed".into(),
        AlertOverride {
            for_: Some("2s".into()),
            ..Default::default()
        },
    );
    let mut rendered_promql = String::new();
    for (path, text) in configgen::render::render(&cfg).unwrap().files() {
        if let Some(name) = path.strip_prefix("prometheus/rules/") {
            std::fs::write(rules.join(name), text).unwrap();
            rendered_promql.push_str(text);
        }
    }
    let [node_port, prom_port, am_port, bb_port, closed_port] = [(); 5].map(|_| free_port());
    let healthy = format!("http://127.0.0.1:{prom_port}/-/healthy");
    let closed = format!("http://127.0.0.1:{closed_port}/");
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            r#"global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["rules/*.yml"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: {node}
    static_configs: [{{targets: ["127.0.0.1:{node_port}"]}}]
  - job_name: {prom}
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
  - job_name: {am}
    static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
  - job_name: {bb_http}
    metrics_path: /probe
    static_configs:
      - targets: ["127.0.0.1:{bb_port}"]
        labels: {{__param_target: "{healthy}", __param_module: http_2xx, instance: "{healthy}", service: prometheus-ui}}
      - targets: ["127.0.0.1:{bb_port}"]
        labels: {{__param_target: "{closed}", __param_module: http_2xx, instance: "{closed}", service: broken}}
"#,
            node = job::NODE,
            prom = job::PROMETHEUS,
            am = job::ALERTMANAGER,
            bb_http = job::BLACKBOX_HTTP,
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("alertmanager.yml"),
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("blackbox.yml"),
        "modules:\n  http_2xx: {prober: http, timeout: 2s}\n",
    )
    .unwrap();

    let _node = spawn(
        node_exporter,
        &[format!("--web.listen-address=127.0.0.1:{node_port}")],
        &d.join("node_exporter.log"),
    );
    let _am = spawn(
        alertmanager,
        &[
            format!("--config.file={}", d.join("alertmanager.yml").display()),
            format!("--storage.path={}", d.join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &d.join("alertmanager.log"),
    );
    let _bb = spawn(
        blackbox,
        &[
            format!("--config.file={}", d.join("blackbox.yml").display()),
            format!("--web.listen-address=127.0.0.1:{bb_port}"),
        ],
        &d.join("blackbox.log"),
    );
    let prom_log = d.join("prometheus.log");
    let _prom = spawn(
        prometheus,
        &[
            format!("--config.file={}", d.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", d.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &prom_log,
    );

    // Wait until every target is up, the rules ran a few times on its series,
    // and the failing probe's alert fired.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut all_up: Option<Instant> = None;
    let (rules_data, alerts) = loop {
        assert!(
            Instant::now() < deadline,
            "no steady state in 60s (targets up since {all_up:?}); Prometheus log:\n{}",
            std::fs::read_to_string(&prom_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
        let Some(up) = api(prom_port, "/api/v1/query?query=up") else {
            continue;
        };
        let up = up["result"].as_array().cloned().unwrap_or_default();
        if up.len() < 5 || up.iter().any(|s| s["value"][1] != "1") {
            continue;
        }
        let since = *all_up.get_or_insert_with(Instant::now);
        if since.elapsed() < Duration::from_secs(5) {
            continue;
        }
        let alerts = api(prom_port, "/api/v1/alerts").expect("alerts API");
        let fired =
            alerts["alerts"].as_array().unwrap().iter().any(|a| {
                a["labels"]["alertname"] == "ServiceProbeFailed" && a["state"] == "firing"
            });
        if fired {
            break (api(prom_port, "/api/v1/rules").expect("rules API"), alerts);
        }
    };

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
    let present = api(prom_port, "/api/v1/label/__name__/values").expect("names API");
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
