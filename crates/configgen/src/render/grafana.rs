//! Grafana: its settings (grafana.ini, see `ini`), provisioning of
//! datasources with fixed uids and their correlations (traces to logs and
//! metrics, logs to traces, exemplars), the dashboard provider, and the
//! dashboards rendered from `dashboards/*.json.j2`.

use anyhow::Result;
use serde_json::{json, Value};

use super::{lgtm, yaml, Tree};
use crate::model::Config;
use crate::plan::{job, Plan};

mod dashboards;
pub(crate) mod ini;

/// A provisioned datasource: its plugin type and fixed uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datasource {
    pub kind: &'static str,
    pub uid: &'static str,
}

pub const PROMETHEUS: Datasource = Datasource {
    kind: "prometheus",
    uid: "prometheus",
};
pub const LOKI: Datasource = Datasource {
    kind: "loki",
    uid: "loki",
};
pub const TEMPO: Datasource = Datasource {
    kind: "tempo",
    uid: "tempo",
};
pub const ALERTMANAGER: Datasource = Datasource {
    kind: "alertmanager",
    uid: "alertmanager",
};

/// The dashboards folder in Grafana.
const FOLDER: &str = "Homelab";
const FOLDER_UID: &str = "homelab";

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    let cfg = plan.cfg;
    if !plan.runs(job::GRAFANA) {
        return Ok(());
    }
    let provisioned = provisioned(plan);
    tree.add("grafana/grafana.ini", ini::render(plan)?)?;
    tree.add(
        "grafana/provisioning/datasources/homelab.yaml",
        yaml::document(plan, "Grafana datasources", &datasources(cfg, &provisioned))?,
    )?;
    tree.add(
        "grafana/provisioning/dashboards/homelab.yaml",
        yaml::document(plan, "Grafana dashboard provider", &provider(cfg))?,
    )?;
    for (name, json) in dashboards::render(cfg, &provisioned)? {
        tree.add(format!("grafana/dashboards/{name}.json"), json)?;
    }
    Ok(())
}

/// The datasources this server runs.
fn provisioned(plan: &Plan) -> Vec<Datasource> {
    let mut all = vec![PROMETHEUS, ALERTMANAGER];
    if plan.runs(job::LOKI) {
        all.push(LOKI);
    }
    if plan.runs(job::TEMPO) {
        all.push(TEMPO);
    }
    all
}

/// Grafana expands `$VAR` in provisioning files: a literal `$` is written `$$`.
fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

fn datasources(cfg: &Config, provisioned: &[Datasource]) -> Value {
    let has = |d: Datasource| provisioned.contains(&d);
    let mut list = Vec::new();

    let mut prometheus = json!({
        "httpMethod": "POST",
        "timeInterval": cfg.prometheus.scrape_interval,
        "prometheusType": "Prometheus",
    });
    if has(TEMPO) {
        // Exemplar labels holding a trace id: Tempo's metrics-generator writes `traceID` on
        // span metrics, homelab-probe `trace_id` on its duration histograms.
        prometheus["exemplarTraceIdDestinations"] = json!([
            { "name": "traceID", "datasourceUid": TEMPO.uid },
            { "name": "trace_id", "datasourceUid": TEMPO.uid },
        ]);
    }
    list.push(datasource(
        "Prometheus",
        PROMETHEUS,
        lgtm::local_url(&cfg.prometheus.listen_address, cfg.prometheus.port),
        true,
        prometheus,
    ));

    list.push(datasource(
        "Alertmanager",
        ALERTMANAGER,
        lgtm::local_url(&cfg.alertmanager.listen_address, cfg.alertmanager.port),
        false,
        json!({ "implementation": "prometheus", "handleGrafanaManagedAlerts": false }),
    ));

    if has(LOKI) {
        let mut loki = json!({ "maxLines": 1000 });
        if has(TEMPO) {
            loki["derivedFields"] = json!([
                {
                    "name": "trace_id",
                    "matcherType": "regex",
                    "matcherRegex": r#"(?:trace_?id|traceID)["=: ]+"?(\w+)"#,
                    "datasourceUid": TEMPO.uid,
                    "url": literal("${__value.raw}"),
                    "urlDisplayLabel": "View trace",
                },
                {
                    "name": "trace_id (label)",
                    "matcherType": "label",
                    "matcherRegex": "trace_id",
                    "datasourceUid": TEMPO.uid,
                    "url": literal("${__value.raw}"),
                    "urlDisplayLabel": "View trace",
                },
            ]);
        }
        list.push(datasource(
            "Loki",
            LOKI,
            lgtm::local_url(&cfg.loki.listen_address, cfg.loki.port),
            false,
            loki,
        ));
    }

    if has(TEMPO) {
        // Span metrics of Tempo's metrics-generator: `service` is service.name.
        let tags = || json!([{ "key": "service.name", "value": "service" }]);
        let mut tempo = json!({
            "nodeGraph": { "enabled": true },
            "search": { "hide": false },
            "serviceMap": { "datasourceUid": PROMETHEUS.uid },
            "tracesToMetrics": {
                "datasourceUid": PROMETHEUS.uid,
                "spanStartTimeShift": "-5m",
                "spanEndTimeShift": "5m",
                "tags": tags(),
                "queries": [
                    { "name": "Request rate", "query": literal("sum(rate(traces_spanmetrics_calls_total{$__tags}[5m]))") },
                    { "name": "Error rate", "query": literal("sum(rate(traces_spanmetrics_calls_total{$__tags, status_code=\"STATUS_CODE_ERROR\"}[5m]))") },
                    { "name": "p95 latency", "query": literal("histogram_quantile(0.95, sum by (le) (rate(traces_spanmetrics_latency_bucket{$__tags}[5m])))") },
                ],
            },
        });
        if has(LOKI) {
            // Alloy labels logs of configured services with service_name.
            tempo["tracesToLogsV2"] = json!({
                "datasourceUid": LOKI.uid,
                "spanStartTimeShift": "-5m",
                "spanEndTimeShift": "5m",
                "filterByTraceID": true,
                "filterBySpanID": false,
                "tags": [{ "key": "service.name", "value": "service_name" }],
            });
            tempo["lokiSearch"] = json!({ "datasourceUid": LOKI.uid });
        }
        list.push(datasource(
            "Tempo",
            TEMPO,
            lgtm::local_url(&cfg.tempo.listen_address, cfg.tempo.port),
            false,
            tempo,
        ));
    }

    json!({ "apiVersion": 1, "datasources": list })
}

fn datasource(name: &str, ds: Datasource, url: String, default: bool, json_data: Value) -> Value {
    json!({
        "name": name,
        "type": ds.kind,
        "uid": ds.uid,
        "access": "proxy",
        "url": url,
        "isDefault": default,
        "editable": false,
        "jsonData": json_data,
    })
}

fn provider(cfg: &Config) -> Value {
    json!({
        "apiVersion": 1,
        "providers": [{
            "name": "homelab",
            "orgId": 1,
            "type": "file",
            "folder": FOLDER,
            "folderUid": FOLDER_UID,
            "disableDeletion": true,
            "allowUiUpdates": false,
            "updateIntervalSeconds": 60,
            "options": { "path": cfg.grafana.dashboards_dir, "foldersFromFilesStructure": false },
        }],
    })
}
