//! The rendered journal relabel rules (alloy/logs.alloy) applied to
//! journald-shaped records by a real evaluator: Alloy's loki.source.journal
//! runs its rules through Prometheus' relabel package, so Prometheus' own
//! target relabelling, given each record's fields as `__journal_*` labels the
//! way Alloy's journal target names them, yields the stream labels Alloy would.
//!
//! Needs prometheus (skips loudly, or fails under CI=true).

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use config_checkers::alloy_syntax::{parse, Expr, Stmt};
use serde_json::{json, Value};
use support::stack::{free_port, wait_until};

/// The journal source's keyword for each PRIORITY, as Alloy's journal target
/// writes it (`__journal_priority_keyword`).
const PRIORITY_KEYWORDS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];

/// The relabel rules of `loki.relabel "journal"` as Prometheus relabel_configs.
fn journal_rules(logs_alloy: &str) -> Vec<Value> {
    let stmts = parse("logs.alloy", logs_alloy).unwrap();
    let body = stmts
        .iter()
        .find_map(|s| match s {
            Stmt::Block {
                name, label, body, ..
            } if name == "loki.relabel" && label.as_deref() == Some("journal") => Some(body),
            _ => None,
        })
        .expect("a loki.relabel \"journal\" block");
    body.iter()
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
                        Expr::List(items) => json!(items
                            .iter()
                            .map(|i| match i {
                                Expr::Str(s) => s.clone(),
                                other => panic!("unexpected {other:?}"),
                            })
                            .collect::<Vec<_>>()),
                        other => panic!("unexpected {other:?}"),
                    };
                    out.insert(name.clone(), v);
                }
            }
            Value::Object(out)
        })
        .collect()
}

/// A journal record's fields as the labels Alloy's journal target gives them.
fn journal_labels(fields: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (k, v) in fields {
        labels.insert(format!("__journal_{}", k.to_lowercase()), v.to_string());
        if *k == "PRIORITY" {
            let keyword = PRIORITY_KEYWORDS[v.parse::<usize>().unwrap()];
            labels.insert("__journal_priority_keyword".into(), keyword.into());
        }
    }
    labels
}

/// Journal fields of a record, or the labels expected for it.
type Fields = Vec<(&'static str, &'static str)>;

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn user_units_and_containers_are_labelled_by_their_own_names() {
    let test = "user_units_and_containers_are_labelled_by_their_own_names";
    let Some(prometheus) = support::require_tool("prometheus", test) else {
        return;
    };
    let cfg = support::parse(
        r#"
        [[services]]
        name = "immich"
        logs = { unit = "immich.service" }
        [[services]]
        name = "paperless"
        logs = { container = "paperless" }
        [[services]]
        name = "jellyfin"
        logs = { unit = "jellyfin.service" }
        "#,
    );
    let tree = support::render(&cfg);
    let rules = journal_rules(tree.get("alloy/logs.alloy").unwrap());

    // (record, the stream labels Alloy must give it besides job)
    let records: Vec<(Fields, Fields)> = vec![
        (
            vec![
                ("_SYSTEMD_UNIT", "jellyfin.service"),
                ("_UID", "0"),
                ("PRIORITY", "3"),
            ],
            vec![
                ("unit", "jellyfin.service"),
                ("level", "error"),
                ("service_name", "jellyfin"),
            ],
        ),
        (
            // A rootless Podman quadlet: journald files it under the user manager.
            vec![
                ("_SYSTEMD_UNIT", "user@1001.service"),
                ("_SYSTEMD_USER_UNIT", "immich.service"),
                ("_UID", "1001"),
                ("PRIORITY", "4"),
            ],
            vec![
                ("unit", "immich.service"),
                ("uid", "1001"),
                ("level", "warning"),
                ("service_name", "immich"),
            ],
        ),
        (
            // A container logging to journald (--log-driver=journald), rootless.
            vec![
                ("_SYSTEMD_UNIT", "user@1001.service"),
                ("_SYSTEMD_USER_UNIT", "libpod-conmon-4f2a.scope"),
                ("_UID", "1001"),
                ("CONTAINER_NAME", "paperless"),
                ("PRIORITY", "6"),
            ],
            vec![
                ("unit", "libpod-conmon-4f2a.scope"),
                ("uid", "1001"),
                ("container", "paperless"),
                ("level", "info"),
                ("service_name", "paperless"),
            ],
        ),
        (
            // The user manager itself keeps its own unit and gets no uid label.
            vec![
                ("_SYSTEMD_UNIT", "user@1001.service"),
                ("_UID", "0"),
                ("PRIORITY", "5"),
            ],
            vec![("unit", "user@1001.service"), ("level", "notice")],
        ),
    ];

    let groups: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, (fields, _))| {
            json!({
                "targets": [format!("record-{i}.invalid:9")],
                "labels": journal_labels(fields),
            })
        })
        .collect();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let doc = json!({
        "scrape_configs": [{
            "job_name": "systemd-journal",
            "scrape_interval": "1h",
            "static_configs": groups,
            "relabel_configs": rules,
        }],
    });
    std::fs::write(&config, doc.to_string()).unwrap();
    let _prometheus = Prometheus(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let url = format!("http://127.0.0.1:{port}/api/v1/targets?state=active");
    let targets = wait_until(Duration::from_secs(30), || {
        let body = support::http::get(&url)?.body;
        let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let active = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if active.len() == records.len() {
            Ok(active)
        } else {
            Err(format!("{} of {} targets", active.len(), records.len()))
        }
    })
    .unwrap();

    for (i, (fields, expected)) in records.iter().enumerate() {
        let instance = format!("record-{i}.invalid:9");
        let target = targets
            .iter()
            .find(|t| t["labels"]["instance"] == instance.as_str())
            .unwrap_or_else(|| panic!("no target for {fields:?}"));
        let mut got: BTreeMap<String, String> = target["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        got.remove("instance");
        got.remove("job");
        let want: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "record {fields:?}");
    }
    println!(
        "{} journald records relabelled as Alloy would",
        records.len()
    );
}
