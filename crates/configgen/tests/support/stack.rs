//! The live stack: the rendered configs run by the real daemons from the
//! Debian packages (prometheus, prometheus-alertmanager,
//! prometheus-node-exporter, prometheus-blackbox-exporter) on loopback, with
//! free ports and temporary data directories. Each runs the command line of
//! its rendered systemd drop-in, so every rendered flag meets the real
//! program; the paths point into the temp dir because the config's
//! `deploy.config_dir` and data directories do. Every process is killed when the
//! `Stack` is dropped, also when a test panics.
//!
//! ```ignore
//! let cfg = stack::loopback_config("live");
//! if !stack::binaries_present("my_test") { return; }
//! let stack = Stack::start(&cfg);
//! stack.wait_targets_up(Duration::from_secs(30)).unwrap();
//! let up = stack.query("up{job=\"node\"}").unwrap();
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use configgen::model::Config;
use configgen::plan::{scrape_address, Plan};
use configgen::render::systemd::DROP_IN;
use configgen::runtime;
use serde_json::Value;

use super::{http, unit_file};

/// Added to the rendered Prometheus command line by this harness only.
/// Alerts that fire before Prometheus has discovered the Alertmanager (e.g.
/// Watchdog, at the first evaluation) are dropped and re-sent only after this
/// delay (default 1m): harmless on a host, where it costs a minute once after
/// a start, but it would add a minute to every alert test.
pub const TEST_ONLY_PROMETHEUS_ARGS: &[&str] = &["--rules.alert.resend-delay=2s"];

/// The daemons a stack runs, by program name.
pub const PROMETHEUS: &str = "prometheus";
pub const ALERTMANAGER: &str = "prometheus-alertmanager";
pub const NODE_EXPORTER: &str = "prometheus-node-exporter";
pub const BLACKBOX_EXPORTER: &str = "prometheus-blackbox-exporter";

/// True when every daemon is installed; otherwise prints SKIPPED (or, under
/// CI=true, panics).
pub fn binaries_present(test: &str) -> bool {
    [PROMETHEUS, ALERTMANAGER, NODE_EXPORTER, BLACKBOX_EXPORTER]
        .iter()
        .all(|b| super::require_tool(b, test).is_some())
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding an ephemeral port")
        .port()
}

/// A server config whose daemons all listen on 127.0.0.1 at free ports, with
/// 2s scrape/evaluation intervals and fast alert grouping. Components that
/// Debian does not package (Loki, Tempo, Alloy, Grafana, cAdvisor) and the
/// eBPF probe are disabled.
pub fn loopback_config(host: &str) -> Config {
    let mut cfg = Config::default();
    cfg.host.name = host.into();
    cfg.prometheus.port = free_port();
    cfg.prometheus.scrape_interval = "2s".into();
    cfg.prometheus.evaluation_interval = "2s".into();
    cfg.alertmanager.port = free_port();
    cfg.exporters.node.port = free_port();
    cfg.exporters.node.collectors = vec!["processes".into()];
    cfg.exporters.blackbox.port = free_port();
    cfg.exporters.cadvisor.enable = false;
    cfg.exporters.probe.enable = false;
    cfg.loki.enable = false;
    cfg.tempo.enable = false;
    cfg.alloy.enable = false;
    cfg.grafana.enable = false;
    cfg.alerting.group_wait = "1s".into();
    cfg.alerting.group_interval = "2s".into();
    cfg.alerting.repeat_interval = "1h".into();
    cfg
}

struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// One target as Prometheus reports it on /api/v1/targets.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    pub scrape_pool: String,
    pub labels: BTreeMap<String, String>,
    pub health: String,
    pub last_error: String,
}

/// One element of an instant-query vector.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub struct Stack {
    dir: tempfile::TempDir,
    /// The config as rendered: the caller's, with paths in `dir`.
    cfg: Config,
    daemons: Vec<Daemon>,
    prometheus: String,
    alertmanager: String,
}

impl Stack {
    /// Renders `cfg` (a server config with loopback listeners, e.g. from
    /// [`loopback_config`]) with its config and data directories moved into a
    /// temp dir, starts each daemon it runs with exactly the command line of
    /// its rendered systemd drop-in, and waits until each answers on its port.
    /// Panics, with the daemons' logs, on failure.
    pub fn start(cfg: &Config) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = cfg.clone();
        let conf = dir.path().join("config");
        let data = |name: &str| {
            let d = dir.path().join("data").join(name);
            fs::create_dir_all(&d).unwrap();
            d.display().to_string()
        };
        cfg.deploy.config_dir = conf.display().to_string();
        cfg.prometheus.data_dir = data("prometheus");
        cfg.alertmanager.data_dir = data("alertmanager");
        let tree = super::render(&cfg);
        configgen::write::write_tree(&tree, &conf, &[])
            .unwrap_or_else(|e| panic!("writing {}: {e:#}", conf.display()));
        let mut stack = Stack {
            prometheus: format!(
                "http://{}",
                scrape_address(&cfg.prometheus.listen_address, cfg.prometheus.port)
            ),
            alertmanager: format!(
                "http://{}",
                scrape_address(&cfg.alertmanager.listen_address, cfg.alertmanager.port)
            ),
            dir,
            daemons: Vec::new(),
            cfg: cfg.clone(),
        };
        // Exporters first, Prometheus last.
        for d in runtime::daemons(&Plan::new(&cfg)).iter().rev() {
            let unit = d.package.unit;
            let dropin = format!("systemd/{unit}.d/{DROP_IN}");
            let text = tree
                .get(&dropin)
                .unwrap_or_else(|| panic!("{dropin} was not rendered"));
            let mut command =
                unit_file::exec_start(text).unwrap_or_else(|e| panic!("{dropin}: {e}"));
            if d.name == "prometheus" {
                command.extend(TEST_ONLY_PROMETHEUS_ARGS.iter().map(|a| a.to_string()));
            }
            let http = &d.listeners[0];
            stack.spawn(unit, &command, &http.address, http.port);
        }
        let ready = format!("{}/-/ready", stack.prometheus);
        if let Err(e) = wait_until(Duration::from_secs(30), || {
            http::get(&ready)
                .ok()
                .filter(|r| r.status == 200)
                .ok_or("not ready")
        }) {
            panic!("prometheus never became ready: {e}\n{}", stack.logs());
        }
        stack
    }

    fn spawn(&mut self, unit: &'static str, command: &[String], listen: &str, port: u16) {
        let log = self.dir.path().join(format!("{unit}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {unit} ({}): {e}", command[0]));
        self.daemons.push(Daemon {
            name: unit,
            child,
            log,
        });
        let addr = scrape_address(listen, port);
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Err(e) = TcpStream::connect(&addr) {
            let child = &mut self.daemons.last_mut().unwrap().child;
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{unit} exited ({status}) before listening on {addr}\n{}",
                    self.logs()
                );
            }
            if Instant::now() >= deadline {
                panic!("{unit} never listened on {addr}: {e}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The config the stack runs: the one given to [`Stack::start`] with
    /// `deploy.config_dir` and the data directories in the stack's temp dir.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The process id of a unit's daemon, while it runs.
    pub fn pid(&mut self, unit: &str) -> Option<u32> {
        let d = self.daemons.iter_mut().find(|d| d.name == unit)?;
        matches!(d.child.try_wait(), Ok(None)).then(|| d.child.id())
    }

    pub fn prometheus_url(&self) -> &str {
        &self.prometheus
    }

    pub fn alertmanager_url(&self) -> &str {
        &self.alertmanager
    }

    /// The rendered tree, as the daemons read it.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// The last lines of every daemon's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for d in &self.daemons {
            let text = fs::read_to_string(&d.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!(
                "--- {} ({}) ---\n{}\n",
                d.name,
                d.log.display(),
                tail.join("\n")
            ));
        }
        out
    }

    /// The `data` object of a Prometheus HTTP API answer (`path` e.g.
    /// `/api/v1/rules`), or the API's error.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        api_data(&format!("{}{path}", self.prometheus))
    }

    /// An instant query: the API's `data` object, or the API's error (so that
    /// a PromQL mistake is reported as such).
    pub fn query_raw(&self, expr: &str) -> Result<Value, String> {
        self.api(&format!("/api/v1/query?query={}", http::encode(expr)))
    }

    /// An instant query returning a vector.
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let data = self.query_raw(expr)?;
        let result = data["result"]
            .as_array()
            .ok_or_else(|| format!("{expr}: not a vector: {data}"))?;
        result
            .iter()
            .map(|s| {
                let labels = string_map(&s["metric"]);
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{expr}: bad sample {s}"))?;
                Ok(Sample { labels, value })
            })
            .collect()
    }

    /// Every active target with its health.
    pub fn targets(&self) -> Result<Vec<TargetHealth>, String> {
        let data = self.api("/api/v1/targets?state=active")?;
        let active = data["activeTargets"].as_array().ok_or("no activeTargets")?;
        Ok(active
            .iter()
            .map(|t| TargetHealth {
                scrape_pool: t["scrapePool"].as_str().unwrap_or("").into(),
                labels: string_map(&t["labels"]),
                health: t["health"].as_str().unwrap_or("").into(),
                last_error: t["lastError"].as_str().unwrap_or("").into(),
            })
            .collect())
    }

    /// Waits until Prometheus has scraped every target successfully; the
    /// error lists the targets that are not up, with their last error.
    pub fn wait_targets_up(&self, timeout: Duration) -> Result<Vec<TargetHealth>, String> {
        wait_until(timeout, || {
            let targets = self.targets()?;
            let down: Vec<String> = targets
                .iter()
                .filter(|t| t.health != "up")
                .map(|t| {
                    format!(
                        "{} {} {}: {}",
                        t.scrape_pool,
                        t.labels.get("instance").map_or("", String::as_str),
                        t.health,
                        t.last_error
                    )
                })
                .collect();
            if targets.is_empty() {
                Err("no targets".to_string())
            } else if down.is_empty() {
                Ok(targets)
            } else {
                Err(down.join("\n"))
            }
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().rev() {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
    }
}

fn api_data(url: &str) -> Result<Value, String> {
    let resp = http::get(url)?;
    let v: Value =
        serde_json::from_str(&resp.body).map_err(|e| format!("{url}: {e}: {}", resp.body))?;
    if v["status"] != "success" {
        return Err(format!(
            "{url}: {} {}",
            v["errorType"].as_str().unwrap_or(""),
            v["error"].as_str().unwrap_or(&resp.body)
        ));
    }
    Ok(v["data"].clone())
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `f` every 200ms until it succeeds or `timeout` passes; the error is
/// the last one `f` gave.
pub fn wait_until<T, E: ToString>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("after {timeout:?}: {}", e.to_string()))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A real HTTP service to probe: python3's http.server on 127.0.0.1,
/// serving an empty directory; stop and start it to make a probe fail and
/// recover.
pub struct HttpService {
    port: u16,
    root: tempfile::TempDir,
    child: Option<Child>,
}

impl HttpService {
    pub const PROGRAM: &'static str = "python3";

    pub fn start() -> HttpService {
        let mut s = HttpService {
            port: free_port(),
            root: tempfile::tempdir().unwrap(),
            child: None,
        };
        s.resume();
        s
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(Self::PROGRAM)
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(self.port.to_string())
            .arg("--directory")
            .arg(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting python3 -m http.server");
        self.child = Some(child);
        let url = self.url();
        wait_until(Duration::from_secs(15), || {
            http::get(&url)
                .ok()
                .filter(|r| r.status == 200)
                .ok_or("no answer")
        })
        .expect("http.server answers");
    }

    /// Stops the server; connections to its port are refused afterwards.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for HttpService {
    fn drop(&mut self) {
        self.stop();
    }
}
