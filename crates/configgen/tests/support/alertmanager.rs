//! The real Alertmanager (Debian's prometheus-alertmanager) alone, running the
//! rendered alertmanager.yml on loopback, with a webhook sink as the receiver
//! of everything. Alerts are posted to its API as Prometheus would post them;
//! the sink shows which notifications came out.

use std::fs::{self, File};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use configgen::model::{Config, Receiver};
use configgen::plan::Plan;
use serde_json::{json, Value};

use super::http;
use super::stack::{self, wait_until, ALERTMANAGER};
use super::webhook::{Received, WebhookSink};

pub struct LiveAlertmanager {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
    pub sink: WebhookSink,
}

/// A loopback config whose only receiver is `sink`, with 1s group wait and
/// 2s group interval so that a test sees notifications within seconds.
pub fn config_to(sink: &WebhookSink) -> Config {
    let mut cfg = stack::loopback_config("am");
    let hook: Receiver = serde_json::from_value(
        json!({"type": "webhook", "name": "hook", "url": sink.url("/alerts")}),
    )
    .unwrap();
    cfg.alerting.receivers = vec![hook];
    cfg.alerting.default_receivers = vec!["hook".into()];
    cfg
}

impl LiveAlertmanager {
    /// Renders `cfg` (see [`config_to`]) and starts Alertmanager with it,
    /// with the flags of configgen's runtime model (its config and data
    /// directories moved into a temporary directory).
    pub fn start(cfg: &Config, sink: WebhookSink) -> LiveAlertmanager {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg.clone();
        let conf = dir.path().join("config");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        cfg.deploy.config_dir = conf.display().to_string();
        cfg.alertmanager.data_dir = data.display().to_string();
        super::write_tree(&super::render(&cfg), &conf);
        let daemon = configgen::runtime::daemons(&Plan::new(&cfg))
            .into_iter()
            .find(|d| d.job == configgen::plan::job::ALERTMANAGER)
            .expect("the config runs an Alertmanager");
        let log = dir.path().join("alertmanager.log");
        let out = File::create(&log).unwrap();
        let port = cfg.alertmanager.port;
        let child = Command::new(ALERTMANAGER)
            .args(&daemon.args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ALERTMANAGER}: {e}"));
        let am = LiveAlertmanager {
            dir,
            child,
            url: format!("http://127.0.0.1:{port}"),
            sink,
        };
        let ready = format!("{}/-/ready", am.url);
        if let Err(e) = wait_until(Duration::from_secs(20), || {
            http::get(&ready)
                .ok()
                .filter(|r| r.status == 200)
                .ok_or("not ready")
        }) {
            panic!("alertmanager never became ready: {e}\n{}", am.log());
        }
        am
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// Posts firing alerts, each given as its labels, to /api/v2/alerts.
    pub fn post(&self, alerts: &[Value]) {
        let annotated: Vec<(Value, Value)> = alerts
            .iter()
            .map(|labels| (labels.clone(), json!({"summary": "test"})))
            .collect();
        self.post_annotated(&annotated);
    }

    /// Posts firing alerts given as (labels, annotations).
    pub fn post_annotated(&self, alerts: &[(Value, Value)]) {
        let body: Vec<Value> = alerts
            .iter()
            .map(|(labels, annotations)| json!({"labels": labels, "annotations": annotations}))
            .collect();
        let url = format!("{}/api/v2/alerts", self.url);
        let resp = http::post_json(&url, &Value::Array(body).to_string()).unwrap();
        assert_eq!(resp.status, 200, "{}: {}", url, resp.body);
    }

    /// Waits until the notifications received hold every alert of `expected`
    /// (each identified by its full label set), then `settle` longer so that
    /// anything else Alertmanager was going to send has arrived too.
    pub fn notifications_after(&self, expected: &[Value], settle: Duration) -> Vec<Received> {
        let got = wait_until(Duration::from_secs(20), || {
            let received = self.sink.received();
            let notified = notified_labels(&received);
            let missing: Vec<&Value> = expected.iter().filter(|e| !notified.contains(e)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not notified: {missing:?}; got {notified:?}"))
            }
        });
        if let Err(e) = got {
            panic!("{e}\n{}", self.log());
        }
        std::thread::sleep(settle);
        self.sink.received()
    }
}

/// The label sets of every alert in the notifications, in arrival order.
pub fn notified_labels(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .flat_map(|r| r.body["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| a["labels"].clone())
        .collect()
}

impl Drop for LiveAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
