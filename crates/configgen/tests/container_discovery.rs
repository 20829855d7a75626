//! Container discovery (`discovery.containers`) against the real Prometheus
//! from Debian: its docker_sd reads two container sockets, and the test reads
//! back the targets the rendered relabel rules made of them.
//!
//! No Docker or Podman engine can run on the test machines, so each socket is
//! served by support::engine_api::FakeEngine, which answers the Engine API
//! calls docker_sd makes with responses of Docker Engine 24 and Podman 4.x
//! written from the documented API shapes (tests/fixtures/engine-api/).
//! Nothing is scraped for real: the probe and metrics targets point at
//! containers that do not exist.
//!
//! On an agent the same jobs are Alloy components (alloy/metrics.alloy). Alloy
//! cannot be installed here; its discovery.docker gives the same
//! `__meta_docker_*` labels as docker_sd, and its rules are Prometheus'
//! relabel package, so the agent test turns each `discovery.relabel` +
//! `prometheus.scrape` pair back into a docker_sd job and runs it in the real
//! Prometheus against the same two sockets.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use config_checkers::alloy_syntax::{parse, Expr, Stmt};
use serde_json::{json, Value};
use support::engine_api::FakeEngine;
use support::{http, stack};

const TEST: &str = "container_discovery";

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

fn sockets_toml(sockets: &[PathBuf]) -> String {
    let sockets: Vec<String> = sockets
        .iter()
        .map(|s| format!("\"{}\"", s.display()))
        .collect();
    format!("alloy.container_sockets = [{}]", sockets.join(", "))
}

/// The rendered configs name each socket where the deployed daemon sees it
/// (mounted there by systemd or the container engine; systemd_live tests
/// that mount). This Prometheus runs unsandboxed, so it is pointed at the
/// sockets themselves.
fn without_the_mounts(config: &str, sockets: &[PathBuf]) -> String {
    sockets.iter().fold(config.to_string(), |text, s| {
        let s = s.to_str().unwrap();
        text.replace(&configgen::plan::containers::in_daemon(s), s)
    })
}

fn start_prometheus(dir: &Path, sockets: &[PathBuf]) -> Prometheus {
    let cfg = support::parse(&format!(
        "host.name = \"dockerhost\"\n{}",
        sockets_toml(sockets)
    ));
    support::write_tree(&support::render(&cfg), dir);
    let yml = dir.join("prometheus/prometheus.yml");
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(&yml, without_the_mounts(&text, sockets)).unwrap();
    run_prometheus(dir)
}

fn run_prometheus(dir: &Path) -> Prometheus {
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

/// The probe and metrics targets of the fixtures' containers, on a server or an agent.
fn expected_targets() -> Active {
    [
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
    .collect()
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
    let expected = expected_targets();
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
            "{absent} must not be a target: {active_text}"
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
    assert!(
        text.contains(
            "host: unix:///run/homelab-observability/container-sockets/run_user_1001_podman_podman.sock"
        ),
        "where Prometheus' unit mounts the socket"
    );

    let off = support::parse("discovery.containers = false");
    let text = support::render(&off)
        .get("prometheus/prometheus.yml")
        .unwrap()
        .to_string();
    assert!(!text.contains("docker_sd_configs"), "{text}");
}

/// An attribute of an Alloy block body.
fn attr<'a>(body: &'a [Stmt], key: &str) -> Option<&'a Expr> {
    body.iter().find_map(|s| match s {
        Stmt::Attr { name, value, .. } if name == key => Some(value),
        _ => None,
    })
}

fn str_of(e: Option<&Expr>) -> String {
    match e {
        Some(Expr::Str(s)) => s.clone(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn ref_of(e: Option<&Expr>) -> String {
    match e {
        Some(Expr::Ref(parts, _)) => parts.join("."),
        other => panic!("expected a reference, got {other:?}"),
    }
}

/// The container jobs of an agent's metrics.alloy as Prometheus scrape
/// configs: each `prometheus.scrape` fed by a `discovery.relabel` of a
/// `discovery.docker` becomes a docker_sd job named after the component, its
/// `rule` blocks its relabel_configs. Returns the configs and, per component,
/// the `job_name` Alloy scrapes it under.
fn alloy_container_jobs(metrics_alloy: &str) -> (Vec<Value>, BTreeMap<String, String>) {
    let stmts = parse("metrics.alloy", metrics_alloy).unwrap();
    let blocks: BTreeMap<String, &Vec<Stmt>> = stmts
        .iter()
        .filter_map(|s| match s {
            Stmt::Block {
                name,
                label: Some(label),
                body,
                ..
            } => Some((format!("{name}.{label}"), body)),
            _ => None,
        })
        .collect();
    let mut configs = vec![];
    let mut job_names = BTreeMap::new();
    for (key, body) in &blocks {
        let Some(label) = key.strip_prefix("prometheus.scrape.") else {
            continue;
        };
        let Some(Expr::Ref(source, _)) = attr(body, "targets") else {
            continue; // a static job: a list of targets
        };
        let source = source.join(".");
        let relabel = source
            .strip_prefix("discovery.relabel.")
            .and_then(|r| r.strip_suffix(".output"))
            .expect("targets from a discovery.relabel");
        let relabel = blocks[&format!("discovery.relabel.{relabel}")];
        let docker = ref_of(attr(relabel, "targets"));
        let docker = blocks[docker.strip_suffix(".targets").unwrap()];
        let rules: Vec<Value> = relabel
            .iter()
            .filter_map(|s| match s {
                Stmt::Block { name, body, .. } if name == "rule" => Some(body),
                _ => None,
            })
            .map(|rule| {
                let mut out = serde_json::Map::new();
                for s in rule {
                    if let Stmt::Attr { name, value, .. } = s {
                        let v = match value {
                            Expr::Str(s) => json!(s),
                            Expr::List(items) => {
                                json!(items.iter().map(|i| str_of(Some(i))).collect::<Vec<_>>())
                            }
                            other => panic!("unexpected {other:?}"),
                        };
                        out.insert(name.clone(), v);
                    }
                }
                Value::Object(out)
            })
            .collect();
        let metrics_path =
            attr(body, "metrics_path").map_or("/metrics".into(), |e| str_of(Some(e)));
        configs.push(json!({
            "job_name": label,
            "metrics_path": metrics_path,
            "docker_sd_configs": [{"host": str_of(attr(docker, "host"))}],
            "relabel_configs": rules,
        }));
        job_names.insert(label.to_string(), str_of(attr(body, "job_name")));
    }
    (configs, job_names)
}

#[test]
fn an_agents_alloy_probes_and_scrapes_the_same_containers() {
    if support::require_tool(stack::PROMETHEUS, TEST).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let docker_sock = dir.path().join("docker.sock");
    let podman_sock = dir.path().join("podman.sock");
    let docker = FakeEngine::start(&docker_sock, "docker-24", "1.43");
    let podman = FakeEngine::start(&podman_sock, "podman-4", "1.41");
    let sockets = [docker_sock, podman_sock];
    let cfg = support::parse(&format!(
        "host = {{ name = \"pi\", role = \"agent\", ship_to = {{ prometheus_remote_write = \"http://nas:9090/api/v1/write\", loki_push = \"http://nas:3100/loki/api/v1/push\" }} }}\n{}",
        sockets_toml(&sockets)
    ));
    let tree = support::render(&cfg);
    assert!(tree.get("prometheus/prometheus.yml").is_none(), "an agent");
    let (configs, job_names) = alloy_container_jobs(&without_the_mounts(
        tree.get("alloy/metrics.alloy").unwrap(),
        &sockets,
    ));
    let pools: Vec<&str> = job_names.keys().map(String::as_str).collect();
    assert_eq!(
        pools,
        [
            "blackbox_http_containers",
            "blackbox_http_containers_2",
            "container_metrics",
            "container_metrics_2"
        ],
        "one per (job, socket)"
    );
    let yml = json!({
        "global": {"scrape_interval": "1m"},
        "scrape_configs": configs,
    });
    std::fs::create_dir_all(dir.path().join("prometheus")).unwrap();
    std::fs::write(
        dir.path().join("prometheus/prometheus.yml"),
        serde_json::to_string_pretty(&yml).unwrap(),
    )
    .unwrap();
    let prom = run_prometheus(dir.path());
    let expected = expected_targets();
    // Alloy scrapes each component under its job_name: compare by that.
    let as_alloy = |data: &Value| -> Active {
        active(data, &pools)
            .into_iter()
            .map(|(pool, labels, url)| (job_names[&pool].clone(), labels, url))
            .collect()
    };
    stack::wait_until(Duration::from_secs(30), || {
        let data = targets(&prom)?;
        if as_alloy(&data) == expected {
            Ok(())
        } else {
            Err(format!("{:#?}", as_alloy(&data)))
        }
    })
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        panic!(
            "the agent's container targets differ from {expected:#?}\n{e}\nengine requests: {:?} {:?}\nprometheus log:\n{log}",
            docker.requests(),
            podman.requests()
        )
    });
}
