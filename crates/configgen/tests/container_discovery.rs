//! Container discovery (`discovery.containers`) against the real Prometheus
//! from Debian: its docker_sd reads two container sockets, and the test reads
//! back the targets the rendered relabel rules made of them.
//!
//! No Docker or Podman engine can run on the test machines, so each socket is
//! served by `FakeEngine` below: a unix-socket HTTP server answering the
//! Engine API endpoints docker_sd calls (`/_ping`, `/networks`,
//! `/containers/json`, with or without a `/v1.xx` version prefix) with
//! recorded-shape responses of Docker Engine 24 (API 1.43) and Podman 4.x's
//! compat API (1.41), written from the documented API shapes:
//! tests/fixtures/engine-api/. Nothing is scraped for real: the probe and
//! metrics targets point at containers that do not exist.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{http, stack};

const TEST: &str = "container_discovery";

struct FakeEngine {
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeEngine {
    /// Serves `<fixture>-containers.json` and `<fixture>-networks.json` on `socket`.
    fn start(socket: &Path, fixture: &str, api_version: &'static str) -> FakeEngine {
        let dir = support::crate_dir().join("tests/fixtures/engine-api");
        let read = |kind: &str| {
            let p = dir.join(format!("{fixture}-{kind}.json"));
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let containers = read("containers");
        let networks = read("networks");
        let listener = UnixListener::bind(socket).expect("binding the engine socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (containers, networks, log) =
                    (containers.clone(), networks.clone(), log.clone());
                std::thread::spawn(move || serve(conn, &containers, &networks, api_version, &log));
            }
        });
        FakeEngine { requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// HTTP/1.1 with keep-alive, GET only, as the Docker client speaks it.
fn serve(
    conn: UnixStream,
    containers: &str,
    networks: &str,
    api_version: &str,
    log: &Mutex<Vec<String>>,
) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
        log.lock().unwrap().push(target.clone());
        let path = target.split('?').next().unwrap_or("");
        let path = match path.strip_prefix("/v") {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
                &rest[rest.find('/').unwrap_or(rest.len())..]
            }
            _ => path,
        };
        let (status, body) = match path {
            "/_ping" => ("200 OK", "OK".to_string()),
            "/containers/json" => ("200 OK", containers.to_string()),
            "/networks" => ("200 OK", networks.to_string()),
            _ => (
                "404 Not Found",
                format!(r#"{{"message":"page not found: {path}"}}"#),
            ),
        };
        let kind = if path == "/_ping" {
            "text/plain"
        } else {
            "application/json"
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nApi-Version: {api_version}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &Path, sockets: &[PathBuf]) -> Prometheus {
    let sockets: Vec<String> = sockets
        .iter()
        .map(|s| format!("\"{}\"", s.display()))
        .collect();
    let cfg = support::parse(&format!(
        "host.name = \"dockerhost\"\nalloy.container_sockets = [{}]",
        sockets.join(", ")
    ));
    support::write_tree(&support::render(&cfg), dir);
    let port = stack::free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(stack::PROMETHEUS)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus/prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting prometheus");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn targets(prom: &Prometheus) -> Result<Value, String> {
    let resp = http::get(&format!("{}/api/v1/targets", prom.url))?;
    let v: Value = serde_json::from_str(&resp.body).map_err(|e| e.to_string())?;
    Ok(v["data"].clone())
}

/// (scrape pool, labels, scrape URL) of the active targets of `pools`.
type Active = BTreeSet<(String, BTreeMap<String, String>, String)>;

fn active(data: &Value, pools: &[&str]) -> Active {
    data["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| pools.contains(&t["scrapePool"].as_str().unwrap_or("")))
        .map(|t| {
            let labels = t["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (
                t["scrapePool"].as_str().unwrap().to_string(),
                labels,
                t["scrapeUrl"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn target(
    pool: &str,
    labels: &[(&str, &str)],
    url: &str,
) -> (String, BTreeMap<String, String>, String) {
    (
        pool.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        url.to_string(),
    )
}

fn probe(service: &str, probed: &str) -> (String, BTreeMap<String, String>, String) {
    let encoded = http::encode(probed);
    target(
        "blackbox_http_containers",
        &[
            ("instance", probed),
            ("job", "blackbox_http"),
            ("service", service),
        ],
        &format!("http://127.0.0.1:9115/probe?module=http_2xx&target={encoded}"),
    )
}

fn scraped(service: &str, address: &str, path: &str) -> (String, BTreeMap<String, String>, String) {
    target(
        "container_metrics",
        &[
            ("instance", address),
            ("job", service),
            ("service", service),
        ],
        &format!("http://{address}{path}"),
    )
}

#[test]
fn docker_and_podman_containers_become_probe_and_metrics_targets() {
    if support::require_tool(stack::PROMETHEUS, TEST).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let docker_sock = dir.path().join("docker.sock");
    let podman_sock = dir.path().join("podman.sock");
    let docker = FakeEngine::start(&docker_sock, "docker-24", "1.43");
    let podman = FakeEngine::start(&podman_sock, "podman-4", "1.41");
    let prom = start_prometheus(dir.path(), &[docker_sock, podman_sock]);

    let pools = ["blackbox_http_containers", "container_metrics"];
    let expected: Active = [
        probe("jellyfin", "http://127.0.0.1:8096/health"),
        probe("authentik", "http://127.0.0.1:9000/-/health/live/"),
        probe(
            "immich_server",
            "http://127.0.0.1:2283/api/server-info/ping",
        ),
        probe("uptime-kuma", "http://127.0.0.1:3001/"),
        scraped("authentik", "172.19.0.3:9300", "/metrics"),
        scraped("zrepl", "127.0.0.1:9811", "/metrics"),
        scraped("immich_server", "127.0.0.1:8081", "/metrics"),
    ]
    .into_iter()
    .collect();
    let data = stack::wait_until(Duration::from_secs(30), || {
        let data = targets(&prom)?;
        if active(&data, &pools) == expected {
            Ok(data)
        } else {
            Err(format!("{:#?}", active(&data, &pools)))
        }
    })
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        panic!(
            "discovered targets differ from {expected:#?}\n{e}\nengine requests: {:?} {:?}\nprometheus log:\n{log}",
            docker.requests(),
            podman.requests()
        )
    });

    // The opted-out containers were discovered, then dropped by the rules.
    let dropped: Vec<&str> = data["droppedTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["discoveredLabels"]["__meta_docker_container_name"].as_str())
        .collect();
    for opted_out in ["/postgres", "/syncthing"] {
        assert!(
            dropped.contains(&opted_out),
            "{opted_out} not in {dropped:?}"
        );
    }
    let everything = data.to_string();
    let active_text = serde_json::to_string(&data["activeTargets"]).unwrap();
    assert!(everything.contains("/redis"), "redis was discovered");
    for absent in ["postgres", "syncthing", "5432", "8384", "redis"] {
        assert!(
            !active_text.contains(absent),
            "{absent} must not be a target"
        );
    }
    // docker_sd really went through both sockets' Engine API.
    for requests in [docker.requests(), podman.requests()] {
        assert!(
            requests.iter().any(|r| r.contains("/containers/json")),
            "{requests:?}"
        );
    }
}

#[test]
fn promtool_accepts_the_discovery_jobs_and_switching_off_removes_them() {
    let Some(promtool) = support::require_tool("promtool", TEST) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::parse("alloy.container_sockets = [\"/run/podman/podman.sock\", \"/run/user/1001/podman/podman.sock\"]");
    support::write_tree(&support::render(&cfg), dir.path());
    let yml = dir.path().join("prometheus/prometheus.yml");
    let out = Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(&yml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&yml).unwrap();
    assert!(text.contains("host: unix:///run/user/1001/podman/podman.sock"));

    let off = support::parse("discovery.containers = false");
    let text = support::render(&off)
        .get("prometheus/prometheus.yml")
        .unwrap()
        .to_string();
    assert!(!text.contains("docker_sd_configs"), "{text}");
}
