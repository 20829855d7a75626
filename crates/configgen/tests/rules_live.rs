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
use configgen::model::Config;
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

#[test]
fn prometheus_evaluates_every_rule_on_real_series() {
    let (Some(prometheus), Some(node_exporter)) =
        (binary("prometheus"), binary("prometheus-node-exporter"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let tree = configgen::render::render(&Config::default()).unwrap();
    for (path, text) in tree.files() {
        if let Some(name) = path.strip_prefix("prometheus/rules/") {
            std::fs::write(rules.join(name), text).unwrap();
        }
    }
    let (node_port, prom_port) = (free_port(), free_port());
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [\"rules/*.yml\"]\n\
             scrape_configs:\n\
             \x20 - job_name: {}\n    static_configs: [{{targets: [\"127.0.0.1:{node_port}\"]}}]\n\
             \x20 - job_name: {}\n    static_configs: [{{targets: [\"127.0.0.1:{prom_port}\"]}}]\n",
            job::NODE,
            job::PROMETHEUS
        ),
    )
    .unwrap();

    let _node = spawn(
        &node_exporter,
        &[format!("--web.listen-address=127.0.0.1:{node_port}")],
        &dir.path().join("node_exporter.log"),
    );
    let prom_log = dir.path().join("prometheus.log");
    let _prom = spawn(
        &prometheus,
        &[
            format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &prom_log,
    );

    // Wait until node metrics arrived and every rule was evaluated a few times after that.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut node_seen: Option<Instant> = None;
    let rules_data = loop {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not evaluate the rules in 60s; log:\n{}",
            std::fs::read_to_string(&prom_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
        if node_seen.is_none() {
            let up = api(
                prom_port,
                "/api/v1/query?query=up%7Bjob%3D%22node%22%7D%3D%3D1",
            );
            if up.is_some_and(|d| d["result"].as_array().is_some_and(|r| !r.is_empty())) {
                node_seen = Some(Instant::now());
            }
            continue;
        }
        if node_seen.unwrap().elapsed() < Duration::from_secs(4) {
            continue;
        }
        break api(prom_port, "/api/v1/rules").expect("rules API");
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

    let alerts = api(prom_port, "/api/v1/alerts").expect("alerts API");
    let active: Vec<String> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} ({})", a["labels"]["alertname"], a["state"]))
        .collect();
    eprintln!(
        "{} rules evaluated without error; active alerts on this machine: {active:?}",
        rules.len()
    );
    assert!(
        active.iter().any(|a| a == "\"Watchdog\" (\"firing\")"),
        "Watchdog not firing: {active:?}"
    );
}
