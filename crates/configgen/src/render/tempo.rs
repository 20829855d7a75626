//! tempo/tempo.yaml: Tempo 3.x in monolithic mode (no Kafka). Receives OTLP
//! from the local Alloy, keeps recent traces in the live-store and blocks on
//! the local filesystem, and turns spans into span metrics and service graphs
//! remote-written to the local Prometheus.
//!
//! Tempo 3 reads its config strictly: the 2.x `ingester`, `compactor` and
//! `metrics_generator.traces_storage` keys are errors, so none is written.
//! Retention is the backend worker's compaction setting.

use anyhow::Result;
use serde_json::json;

use super::{lgtm, yaml, Tree};
use crate::plan::{job, join_host_port, Plan, INTERNAL_ADDRESS};

/// Tempo's gRPC API port (queriers, frontend). Loki already uses 9096.
pub const GRPC_PORT: u16 = 9095;
/// Memberlist gossip, Tempo's own default port, written out so that the
/// runtime model can list it.
pub const MEMBERLIST_PORT: u16 = 7946;

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    let cfg = plan.cfg;
    let tempo = &cfg.tempo;
    if !plan.runs(job::TEMPO) {
        return Ok(());
    }
    let dir = tempo.data_dir.trim_end_matches('/');
    let prometheus = lgtm::local_url(&cfg.prometheus.listen_address, cfg.prometheus.port);
    let mut external_labels = serde_json::Map::new();
    external_labels.insert("source".into(), "tempo".into());
    for (k, v) in plan.external_labels() {
        external_labels.insert(k, v.into());
    }
    let retention = lgtm::go_duration("tempo.retention", &tempo.retention)?;
    let doc = json!({
        "stream_over_http_enabled": true,
        "usage_report": { "reporting_enabled": false },
        "server": {
            "http_listen_address": tempo.listen_address,
            "http_listen_port": tempo.port,
            "grpc_listen_address": INTERNAL_ADDRESS,
            "grpc_listen_port": GRPC_PORT,
            "log_level": "info",
        },
        "distributor": {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {
                            "endpoint": join_host_port(&tempo.otlp_grpc_listen_address, tempo.otlp_grpc_port),
                        }
                    }
                }
            }
        },
        // Memberlist gossip stays on loopback (it binds every interface by default).
        "memberlist": { "bind_addr": [INTERNAL_ADDRESS], "bind_port": MEMBERLIST_PORT },
        "live_store": {
            "wal": { "path": format!("{dir}/live-store/traces") },
            "shutdown_marker_dir": format!("{dir}/live-store/shutdown-marker"),
        },
        "backend_scheduler": { "local_work_path": format!("{dir}/work") },
        "backend_worker": { "compaction": { "block_retention": retention } },
        "metrics_generator": {
            "registry": { "external_labels": external_labels },
            "storage": {
                "path": format!("{dir}/generator/wal"),
                "remote_write": [{
                    "url": format!("{prometheus}/api/v1/write"),
                    "send_exemplars": true,
                }],
            },
        },
        "storage": {
            "trace": {
                "backend": "local",
                "wal": { "path": format!("{dir}/wal") },
                "local": { "path": format!("{dir}/blocks") },
            }
        },
        "overrides": {
            "defaults": {
                "metrics_generator": { "processors": ["service-graphs", "span-metrics"] },
                "compaction": { "block_retention": retention },
            }
        },
    });
    tree.add(
        "tempo/tempo.yaml",
        yaml::document(plan, "tempo.yaml", &doc)?,
    )
}
