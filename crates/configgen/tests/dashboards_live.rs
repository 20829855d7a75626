//! Every PromQL expression of every rendered dashboard, run against a real
//! Prometheus that scrapes a real node_exporter and blackbox_exporter under
//! the job names of `plan::job`.
//!
//! Needs `prometheus`, `prometheus-node-exporter` (or `node_exporter`) and
//! `prometheus-blackbox-exporter` (or `blackbox_exporter`) on PATH. Without
//! them the test prints SKIPPED, except under CI=true where it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use configgen::dashboard_queries::{all_values, queries, substitute};
use configgen::model::Config;
use configgen::plan::job;
use serde_json::Value;

/// Panels that must show data on any Linux host running the stack.
const MUST_HAVE_DATA: &[(&str, &str)] = &[
    ("Homelab / Overview", "Service availability"),
    ("Homelab / Overview", "Uptime"),
    ("Homelab / Overview", "Gateway and public resolvers"),
    ("Homelab / Host", "CPU utilization"),
    ("Homelab / Host", "Memory utilization"),
    ("Homelab / Host", "Disk utilization (busy time)"),
    ("Homelab / Host", "Filesystem space used"),
    ("Homelab / Host", "Network utilization"),
    ("Homelab / Probes", "Status per check"),
    ("Homelab / Probes", "Probe duration"),
    (
        "Homelab / Probes",
        "LAN presence (addresses seen in the last day)",
    ),
];

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Children are killed when the test ends, even on panic.
struct Daemons(Vec<(String, Child)>);

impl Daemons {
    fn start(&mut self, name: &str, bin: &Path, args: &[String], log: &Path) {
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        self.0.push((name.to_string(), child));
    }

    fn assert_running(&mut self, logs: &Path) {
        for (name, child) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                let log =
                    std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap_or_default();
                panic!("{name} exited with {status}:\n{log}");
            }
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET a path of a local HTTP server; (status code, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

fn query(port: u16, expr: &str) -> Value {
    let (_, body) = get(port, &format!("/api/v1/query?query={}", encode(expr))).unwrap();
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn prometheus_config(ports: &Ports) -> String {
    let bb = format!("127.0.0.1:{}", ports.blackbox);
    let probe = |job: &str, module: &str, target: &str, labels: &str| {
        format!(
            "  - job_name: {job}\n    metrics_path: /probe\n    static_configs:\n      - targets: [\"{bb}\"]\n        labels: {{__param_module: {module}, __param_target: \"{target}\", instance: \"{target}\"{labels}}}\n"
        )
    };
    let mut out = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: {}\n    static_configs: [{{targets: [\"127.0.0.1:{}\"]}}]\n  - job_name: {}\n    static_configs: [{{targets: [\"127.0.0.1:{}\"]}}]\n",
        job::PROMETHEUS,
        ports.prometheus,
        job::NODE,
        ports.node
    );
    let healthy = format!("http://127.0.0.1:{}/-/healthy", ports.prometheus);
    out += &probe(
        job::BLACKBOX_HTTP,
        "http_2xx",
        &healthy,
        ", service: prometheus",
    );
    out += &probe(
        job::BLACKBOX_TCP,
        "tcp_connect",
        &format!("127.0.0.1:{}", ports.node),
        ", service: node-exporter",
    );
    out += &probe(job::NETWORK, "icmp", "127.0.0.1", ", role: gateway");
    out += &probe(job::LAN_SWEEP, "icmp", "127.0.0.1", "");
    out
}

const BLACKBOX: &str = "modules:
  http_2xx:
    prober: http
    timeout: 5s
  tcp_connect:
    prober: tcp
    timeout: 5s
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
";

struct Ports {
    prometheus: u16,
    node: u16,
    blackbox: u16,
}

fn wait_for(
    what: &str,
    timeout: Duration,
    daemons: &mut Daemons,
    logs: &Path,
    mut ok: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !ok() {
        daemons.assert_running(logs);
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn every_dashboard_promql_expression_runs_on_a_real_prometheus() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let bins = (
        find(&["prometheus"]),
        find(&["prometheus-node-exporter", "node_exporter"]),
        find(&["prometheus-blackbox-exporter", "blackbox_exporter"]),
    );
    let (Some(prometheus), Some(node), Some(blackbox)) = bins.clone() else {
        let msg = format!("prometheus / node_exporter / blackbox_exporter not on PATH: {bins:?}");
        if ci {
            panic!("{msg} (required when CI=true)");
        }
        // Straight to stderr: the test harness would swallow eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED every_dashboard_promql_expression_runs_on_a_real_prometheus: {msg}"
        );
        return;
    };

    let cfg: Config = toml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/homelab.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let tree = configgen::render::render(&cfg).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = Ports {
        prometheus: free_port(),
        node: free_port(),
        blackbox: free_port(),
    };
    std::fs::write(d.join("prometheus.yml"), prometheus_config(&ports)).unwrap();
    std::fs::write(d.join("blackbox.yml"), BLACKBOX).unwrap();
    let s = |x: &str| x.to_string();
    let mut daemons = Daemons(Vec::new());
    daemons.start(
        "node",
        &node,
        &[format!("--web.listen-address=127.0.0.1:{}", ports.node)],
        &d.join("node.log"),
    );
    daemons.start(
        "blackbox",
        &blackbox,
        &[
            format!("--config.file={}", d.join("blackbox.yml").display()),
            format!("--web.listen-address=127.0.0.1:{}", ports.blackbox),
        ],
        &d.join("blackbox.log"),
    );
    daemons.start(
        "prometheus",
        &prometheus,
        &[
            format!("--config.file={}", d.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", d.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{}", ports.prometheus),
            s("--log.level=warn"),
        ],
        &d.join("prometheus.log"),
    );

    wait_for(
        "Prometheus ready",
        Duration::from_secs(30),
        &mut daemons,
        d,
        || get(ports.prometheus, "/-/ready").is_ok_and(|(code, _)| code == 200),
    );
    // Enough samples of every target for rate() over the 1m window the
    // dashboards' $__rate_interval is replaced with.
    wait_for(
        "6 scrapes of every target",
        Duration::from_secs(60),
        &mut daemons,
        d,
        || {
            let r = query(
                ports.prometheus,
                "min(count_over_time(up[1m])) >= 6 and count(up == 1) >= 6",
            );
            r["data"]["result"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    );

    let mut checked = 0;
    let mut with_data = 0;
    let mut failures = Vec::new();
    // (dashboard, panel) -> whether any of its queries returned data.
    let mut panel_data: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (path, text) in tree
        .files()
        .filter(|(p, _)| p.starts_with("grafana/dashboards/"))
    {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        let mut values: BTreeMap<String, String> = [
            ("__rate_interval", "1m"),
            ("__interval", "15s"),
            ("__range", "1h"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        values.extend(all_values(&dashboard));
        for q in queries(&dashboard)
            .into_iter()
            .filter(|q| q.datasource == "prometheus")
        {
            let expr = substitute(&q.expr, &values).unwrap_or_else(|e| panic!("{path}: {e}"));
            let r = query(ports.prometheus, &expr);
            checked += 1;
            if r["status"] != "success" {
                failures.push(format!(
                    "{} / {}: {}\n    {expr}",
                    q.dashboard, q.panel, r["error"]
                ));
                continue;
            }
            let has_data = r["data"]["result"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            with_data += usize::from(has_data);
            *panel_data
                .entry((q.dashboard.clone(), q.panel.clone()))
                .or_default() |= has_data;
        }
    }
    println!(
        "checked {checked} dashboard PromQL expressions against a live Prometheus: all succeeded: {}, {with_data} returned data",
        failures.is_empty()
    );
    assert!(
        failures.is_empty(),
        "PromQL errors:\n{}",
        failures.join("\n")
    );
    for (dashboard, panel) in MUST_HAVE_DATA {
        match panel_data.get(&(dashboard.to_string(), panel.to_string())) {
            None => panic!("no panel {dashboard} / {panel}"),
            Some(false) => panic!("core panel {dashboard} / {panel} returned no data"),
            Some(true) => {}
        }
    }
    assert!(checked >= 60, "only {checked} expressions checked");
}
