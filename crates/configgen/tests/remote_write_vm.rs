//! remote_write end to end: the rendered prometheus.yml, run by the real
//! Prometheus of the live stack, writes to a real VictoriaMetrics (Debian's
//! `victoria-metrics`, a time-series database that scales out) on a free
//! loopback port behind basic auth, and the samples are queried back from
//! VictoriaMetrics' Prometheus-compatible API with the host's external labels.
//! A second remote_write with a wrong password file is rejected, and
//! Prometheus counts its samples as failed.
//!
//! Needs the live stack's daemons and victoria-metrics (fails under CI=true
//! when one is missing, else skips loudly). Prints the figures: samples
//! Prometheus sent and failed per remote, rows VictoriaMetrics inserted,
//! samples and series read back.

mod support;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use configgen::model::{BasicAuth, RemoteWrite};
use serde_json::Value;
use support::http;
use support::stack::{self, Sample, Stack};

const VICTORIA_METRICS: &str = "victoria-metrics";
const USER: &str = "homelab";
const PASSWORD: &str = "remote-write-test-password";
const GOOD: &str = "vm";
const WRONG: &str = "vm-wrong-password";

/// A VictoriaMetrics single node on 127.0.0.1 with basic auth on every
/// endpoint; killed on drop.
struct VictoriaMetrics {
    child: Child,
    dir: tempfile::TempDir,
    base: String,
}

impl VictoriaMetrics {
    fn start() -> VictoriaMetrics {
        let dir = tempfile::tempdir().unwrap();
        let port = stack::free_port();
        let log = File::create(dir.path().join("victoria-metrics.log")).unwrap();
        let child = Command::new(VICTORIA_METRICS)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpAuth.username={USER}"))
            .arg(format!("-httpAuth.password={PASSWORD}"))
            .arg("-retentionPeriod=1d")
            // Instant queries see samples as soon as they are stored (the
            // default hides the last 30s).
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting victoria-metrics");
        let mut vm = VictoriaMetrics {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        let addr = format!("127.0.0.1:{port}");
        let up = stack::wait_until(Duration::from_secs(20), || {
            if let Ok(Some(status)) = vm.child.try_wait() {
                return Ok(Err(format!("exited ({status})")));
            }
            TcpStream::connect(&addr).map(|_| Ok(()))
        });
        match up {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("victoria-metrics {e}\n{}", vm.log()),
            Err(e) => panic!(
                "victoria-metrics never listened on {addr}: {e}\n{}",
                vm.log()
            ),
        }
        vm
    }

    fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("victoria-metrics.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Result<http::Response, String> {
        http::get_basic_auth(&format!("{}{path}", self.base), USER, PASSWORD)
    }

    /// The `data` of a Prometheus-API answer.
    fn api(&self, path: &str) -> Result<Value, String> {
        let resp = self.get(path)?;
        let v: Value =
            serde_json::from_str(&resp.body).map_err(|e| format!("{path}: {e}: {}", resp.body))?;
        if v["status"] != "success" {
            return Err(format!("{path}: {}", resp.body));
        }
        Ok(v["data"].clone())
    }

    /// Makes every sample received so far searchable.
    fn flush(&self) {
        let _ = self.get("/internal/force_flush");
    }

    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        self.flush();
        let data = self.api(&format!("/api/v1/query?query={}", http::encode(expr)))?;
        vector(&data, expr)
    }

    /// Label sets of every series matching `selector` in the last 10 minutes.
    fn series(&self, selector: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
        self.flush();
        let data = self.api(&format!(
            "/api/v1/series?match[]={}&start=-10m",
            http::encode(selector)
        ))?;
        let list = data.as_array().ok_or("series: not a list")?;
        Ok(list.iter().map(labels).collect())
    }

    fn metrics(&self) -> String {
        self.get("/metrics").map(|r| r.body).unwrap_or_default()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn vector(data: &Value, expr: &str) -> Result<Vec<Sample>, String> {
    let result = data["result"]
        .as_array()
        .ok_or_else(|| format!("{expr}: not a vector: {data}"))?;
    result
        .iter()
        .map(|s| {
            let value = s["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{expr}: bad sample {s}"))?;
            Ok(Sample {
                labels: labels(&s["metric"]),
                value,
            })
        })
        .collect()
}

/// The sum of every sample of `name` in a Prometheus text exposition whose
/// labels include all of `matchers` (0 when there is none).
fn exposition_sum(text: &str, name: &str, matchers: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let fits = metric == name
                && matchers.iter().all(|(k, v)| {
                    labels
                        .split(',')
                        .any(|pair| pair.trim() == format!("{k}=\"{v}\""))
                });
            fits.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Raw samples per series: label set (with `extra` labels added where
/// absent) -> (timestamp in ms, value).
type Raw = BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>>;

/// The query path returning the raw samples of `selector` in the hour up to
/// `until` (a range selector as an instant query).
fn window(selector: &str, until: f64) -> String {
    format!(
        "/api/v1/query?query={}&time={until:.3}",
        http::encode(&format!("{selector}[1h]"))
    )
}

fn raw_samples(data: &Value, extra: &[(&str, &str)]) -> Result<Raw, String> {
    let series = data["result"].as_array().ok_or("not a matrix")?;
    let mut raw = Raw::new();
    for s in series {
        let mut key = labels(&s["metric"]);
        for (k, v) in extra {
            key.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        let values = s["values"].as_array().ok_or("no values")?;
        let points = values
            .iter()
            .map(|p| {
                let t = p[0].as_f64().ok_or("bad timestamp")?;
                let v = p[1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .ok_or("bad value")?;
                Ok(((t * 1000.0).round() as i64, v))
            })
            .collect::<Result<_, &str>>()?;
        raw.insert(key, points);
    }
    Ok(raw)
}

/// Whether `read` holds exactly the samples of `stored`, NaNs aside: the two
/// APIs differ there (Prometheus returns NaN values but hides staleness
/// markers, VictoriaMetrics 1.79 the other way round). Values are compared to
/// 1e-12 relative, as VictoriaMetrics prints floats with fewer digits.
/// Returns the count of samples compared and of NaNs Prometheus returned.
fn compare(stored: &Raw, read: &Raw) -> Result<(usize, usize), String> {
    let (mut count, mut nan, mut differ) = (0, 0, Vec::new());
    for (series, points) in stored {
        let want: Vec<_> = points.iter().filter(|(_, v)| !v.is_nan()).collect();
        nan += points.len() - want.len();
        count += want.len();
        let got: Vec<_> = read
            .get(series)
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_nan())
            .collect();
        let same = want.len() == got.len()
            && want.iter().zip(&got).all(|((t1, v1), (t2, v2))| {
                t1 == t2 && (v1 - v2).abs() <= 1e-12 * v1.abs().max(v2.abs())
            });
        if !same && !want.is_empty() {
            differ.push(format!("{series:?}: stored {want:?}, read {got:?}"));
        }
    }
    let extra = read.keys().filter(|k| !stored.contains_key(*k)).count();
    if count == 0 || !differ.is_empty() || extra > 0 {
        return Err(format!(
            "{} of {} series differ, {extra} only in VictoriaMetrics; e.g. {}",
            differ.len(),
            stored.len(),
            differ.first().map_or("", String::as_str)
        ));
    }
    Ok((count, nan))
}

fn secret_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn remote(name: &str, url: String, password_file: &Path) -> RemoteWrite {
    RemoteWrite {
        name: Some(name.into()),
        url,
        basic_auth: Some(BasicAuth {
            username: USER.into(),
            password_file: password_file.display().to_string(),
        }),
        bearer_token_file: None,
    }
}

#[test]
fn samples_written_by_the_rendered_prometheus_are_read_back_from_victoria_metrics() {
    let test = "samples_written_by_the_rendered_prometheus_are_read_back_from_victoria_metrics";
    if !stack::binaries_present(test) || support::require_tool(VICTORIA_METRICS, test).is_none() {
        return;
    }
    let vm = VictoriaMetrics::start();
    let secrets = tempfile::tempdir().unwrap();
    let good = secret_file(secrets.path(), "vm-password", &format!("{PASSWORD}\n"));
    let wrong = secret_file(secrets.path(), "wrong-password", "not-the-password\n");

    let mut cfg = stack::loopback_config("rw-host");
    cfg.host.labels.insert("site".into(), "attic".into());
    cfg.prometheus.remote_write = vec![
        remote(GOOD, vm.write_url(), &good),
        remote(WRONG, vm.write_url(), &wrong),
    ];
    let stack = Stack::start(&cfg);
    let rendered =
        fs::read_to_string(stack.config_dir().join("prometheus/prometheus.yml")).unwrap();
    assert!(!rendered.contains(PASSWORD), "the password was inlined");
    stack
        .wait_targets_up(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("targets not up: {e}\n{}", stack.logs()));

    // Every `up` series Prometheus holds arrives with the external labels.
    let external = [("host", "rw-host"), ("site", "attic")];
    let arrived = stack::wait_until(Duration::from_secs(60), || {
        let local = stack.query("up")?;
        let remote = vm.query("up")?;
        let missing: Vec<_> = local
            .iter()
            .map(|s| {
                let mut want = s.labels.clone();
                for (k, v) in external {
                    want.entry(k.into()).or_insert_with(|| v.into());
                }
                want
            })
            .filter(|want| !remote.iter().any(|r| &r.labels == want && r.value == 1.0))
            .collect();
        if local.is_empty() || !missing.is_empty() {
            Err(format!(
                "not in VictoriaMetrics: {missing:?}; it has {remote:?}"
            ))
        } else {
            Ok(remote)
        }
    });
    let up = arrived.unwrap_or_else(|e| panic!("{e}\n{}\n{}", stack.logs(), vm.log()));
    let node: Vec<_> = up.iter().filter(|s| s.labels["job"] == "node").collect();
    assert_eq!(node.len(), 1, "{up:?}");
    assert_eq!(node[0].labels["host"], "rw-host");
    assert_eq!(node[0].labels["site"], "attic");

    let node_series = vm
        .series("{job=\"node\",host=\"rw-host\",site=\"attic\"}")
        .unwrap();
    assert!(
        node_series
            .iter()
            .any(|s| s.get("__name__").map(String::as_str) == Some("node_load1")),
        "node_exporter's series did not arrive: {} series",
        node_series.len()
    );
    let all_series = vm.series("{site=\"attic\"}").unwrap();
    assert!(
        all_series
            .iter()
            .all(|s| s.get("host").map(String::as_str) == Some("rw-host")),
        "a series lacks the host label"
    );

    // The wrong password is rejected: Prometheus counts those samples as
    // failed, while the good remote has sent samples and failed none.
    let prom_metrics = || {
        http::get(&format!("{}/metrics", stack.prometheus_url()))
            .map(|r| r.body)
            .unwrap_or_default()
    };
    let failed = "prometheus_remote_storage_samples_failed_total";
    let sent = "prometheus_remote_storage_samples_total";
    stack::wait_until(Duration::from_secs(60), || {
        if exposition_sum(&prom_metrics(), failed, &[("remote_name", WRONG)]) > 0.0 {
            Ok(())
        } else {
            Err(format!("no failed samples for {WRONG} yet"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    // Every sample Prometheus stored up to a moment just passed reads back
    // from VictoriaMetrics with its timestamp and value (asked again each
    // round, since a scrape started before that moment may land after it).
    let scrapes = 5.0;
    stack::wait_until(Duration::from_secs(60), || {
        let n = stack.query("count_over_time(up{job=\"node\"}[1h])")?;
        match n.first() {
            Some(s) if s.value >= scrapes => Ok(()),
            _ => Err(format!("fewer than {scrapes} scrapes: {n:?}")),
        }
    })
    .unwrap();
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 1.0;
    let compared = stack::wait_until(Duration::from_secs(30), || {
        let stored = stack.api(&window("{__name__=~\".+\"}", until))?;
        vm.flush();
        let read = vm.api(&window("{site=\"attic\"}", until))?;
        let (stored, read) = (raw_samples(&stored, &external)?, raw_samples(&read, &[])?);
        compare(&stored, &read)
    });
    let (stored, nan) = compared.unwrap_or_else(|e| panic!("{e}\n{}\n{}", stack.logs(), vm.log()));
    // Figures from both ends, read together.
    let text = prom_metrics();
    let figure = |name, remote| exposition_sum(&text, name, &[("remote_name", remote)]);
    let (good_sent, good_failed) = (figure(sent, GOOD), figure(failed, GOOD));
    let (wrong_sent, wrong_failed) = (figure(sent, WRONG), figure(failed, WRONG));
    assert!(good_sent > 0.0, "no samples sent to {GOOD}");
    assert_eq!(good_failed, 0.0, "samples failed with the right password");
    assert!(wrong_failed > 0.0);
    let inserted = exposition_sum(
        &vm.metrics(),
        "vm_rows_inserted_total",
        &[("type", "promremotewrite")],
    );

    println!("remote_write to VictoriaMetrics (Prometheus scraping every 2s):");
    println!("  {GOOD}: {sent} = {good_sent}, {failed} = {good_failed}");
    println!("  {WRONG}: {sent} = {wrong_sent}, {failed} = {wrong_failed}");
    println!("  VictoriaMetrics vm_rows_inserted_total{{type=\"promremotewrite\"}} = {inserted}");
    println!(
        "  samples until 1s ago: {stored} stored by Prometheus, all {stored} read back from \
         VictoriaMetrics with equal timestamps and values ({nan} NaN values left out)"
    );
    println!(
        "  series read back: {} up, {} of job node, {} in all",
        up.len(),
        node_series.len(),
        all_series.len()
    );
}
