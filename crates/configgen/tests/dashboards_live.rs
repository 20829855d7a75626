//! Every PromQL expression of every rendered dashboard, run against a real
//! Prometheus. The stack is the rendered config run by the real daemons
//! (tests/support/stack.rs: prometheus, alertmanager, node_exporter,
//! blackbox_exporter on loopback), with service checks of every kind, the
//! network check and a LAN sweep pointed at loopback, so the series carry the
//! job names and labels the plan gives them.
//!
//! Without the daemons the test prints SKIPPED, except under CI=true where it
//! fails.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use config_checkers::dashboard_queries::{all_values, queries, substitute};
use configgen::model::{Config, HttpCheck, LanSweep, Service};
use serde_json::Value;
use support::stack::{self, Stack};

/// Panels that must show data on any Linux host running the stack.
const MUST_HAVE_DATA: &[(&str, &str)] = &[
    ("Homelab / Overview", "Service availability"),
    ("Homelab / Overview", "Uptime"),
    ("Homelab / Overview", "Gateway and public resolvers"),
    ("Homelab / Host", "Uptime"),
    ("Homelab / Host", "Fullest filesystem"),
    ("Homelab / Host", "Read-only filesystems"),
    ("Homelab / Host", "CPU utilization"),
    ("Homelab / Host", "CPU time by mode"),
    ("Homelab / Host", "CPU saturation: load vs CPUs"),
    ("Homelab / Host", "Memory utilization"),
    ("Homelab / Host", "Memory breakdown"),
    ("Homelab / Host", "Disk utilization (busy time)"),
    ("Homelab / Host", "Disk IOPS"),
    ("Homelab / Host", "Filesystem space used"),
    ("Homelab / Host", "Network utilization"),
    ("Homelab / Host", "Network packets"),
    ("Homelab / Host", "TCP connections"),
    (
        "Homelab / Host",
        "File descriptors allocated (of the kernel maximum)",
    ),
    ("Homelab / Host", "Kernel"),
    ("Homelab / Host", "Operating system"),
    ("Homelab / Host", "CPUs"),
    ("Homelab / Probes", "Status per check"),
    ("Homelab / Probes", "Probe duration"),
    (
        "Homelab / Probes",
        "LAN presence (addresses seen in the last day)",
    ),
];

/// A loopback server with one service per check kind, the network check and
/// a LAN sweep of loopback addresses.
fn live_config() -> Config {
    let mut cfg = stack::loopback_config("live");
    let service = |name: &str| Service {
        name: name.into(),
        ..Service::default()
    };
    cfg.services = vec![
        Service {
            http: Some(HttpCheck {
                url: format!("http://127.0.0.1:{}/-/healthy", cfg.prometheus.port),
                ..HttpCheck::default()
            }),
            ..service("prometheus")
        },
        Service {
            tcp: Some(format!("127.0.0.1:{}", cfg.exporters.node.port)),
            ..service("node-exporter")
        },
        Service {
            icmp: Some("127.0.0.1".into()),
            ..service("loopback")
        },
    ];
    cfg.network.gateway = Some("127.0.0.1".into());
    cfg.network.lan_sweep = Some(LanSweep {
        cidr: "127.0.0.0/30".into(),
        interval: "2s".into(),
    });
    cfg
}

#[test]
fn every_dashboard_promql_expression_runs_on_a_real_prometheus() {
    if !stack::binaries_present("every_dashboard_promql_expression_runs_on_a_real_prometheus") {
        return;
    }
    let cfg = live_config();
    let stack = Stack::start(&cfg);
    stack
        .wait_targets_up(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("targets not up: {e}\n{}", stack.logs()));
    // Enough samples of every target for rate() over the 1m window that
    // $__rate_interval is replaced with.
    stack::wait_until(Duration::from_secs(60), || {
        let n = stack.query("min(count_over_time(up[1m]))")?;
        match n.first() {
            Some(s) if s.value >= 5.0 => Ok(()),
            other => Err(format!("not enough scrapes yet: {other:?}")),
        }
    })
    .unwrap();

    // The same host with Grafana, Loki and Tempo on: the dashboards it gets.
    let mut with_grafana = cfg.clone();
    with_grafana.grafana.enable = true;
    with_grafana.loki.enable = true;
    with_grafana.tempo.enable = true;
    let tree = support::render(&with_grafana);

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
            checked += 1;
            match stack.query_raw(&expr) {
                Err(e) => failures.push(format!("{} / {}: {e}\n    {expr}", q.dashboard, q.panel)),
                Ok(data) => {
                    let has_data = data["result"].as_array().is_some_and(|a| !a.is_empty());
                    with_data += usize::from(has_data);
                    *panel_data
                        .entry((q.dashboard.clone(), q.panel.clone()))
                        .or_default() |= has_data;
                }
            }
        }
    }
    println!(
        "checked {checked} dashboard PromQL expressions against a live Prometheus: {} failed, {with_data} returned data",
        failures.len()
    );
    let empty: Vec<String> = panel_data
        .iter()
        .filter(|(_, has)| !**has)
        .map(|((d, p), _)| format!("{d} / {p}"))
        .collect();
    println!(
        "{} panels without data on this host (exporter, collector or hardware absent):\n  {}",
        empty.len(),
        empty.join("\n  ")
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
