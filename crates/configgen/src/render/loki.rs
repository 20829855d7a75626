//! loki/loki.yaml: Loki 3.x single binary, TSDB index (schema v13) on the local
//! filesystem, retention applied by the compactor; with Alertmanager, the
//! ruler evaluates the log alerts of loki/rules/ and sends them there.

use anyhow::{Context, Result};
use serde_json::json;

use super::{alloy, lgtm, yaml, Tree};
use crate::plan::{job, Plan, INTERNAL_ADDRESS};

/// The ruler's rule files for the single tenant (`fake` while auth is off),
/// relative to the config dir: `<directory>/<tenant>/<file>`.
pub const RULES_DIR: &str = "loki/rules";
pub const RULES_FILE: &str = "loki/rules/fake/logs.yaml";
const RULES_TEMPLATE: &str = include_str!("../../rules/loki/logs.yml.j2");

/// First day of the v13 schema period. Fixed forever: moving it would orphan stored data.
const SCHEMA_FROM: &str = "2024-01-01";

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    let cfg = plan.cfg;
    let loki = &cfg.loki;
    if !plan.runs(job::LOKI) {
        return Ok(());
    }
    let dir = loki.data_dir.trim_end_matches('/');
    let mut doc = json!({
        "auth_enabled": false,
        "analytics": { "reporting_enabled": false },
        "server": {
            "http_listen_address": loki.listen_address,
            "http_listen_port": loki.port,
            "grpc_listen_address": INTERNAL_ADDRESS,
            "grpc_listen_port": loki.grpc_port,
            "log_level": "info",
        },
        "common": {
            "instance_addr": "127.0.0.1",
            "path_prefix": dir,
            "replication_factor": 1,
            "ring": { "kvstore": { "store": "inmemory" } },
            "storage": {
                "filesystem": {
                    "chunks_directory": format!("{dir}/chunks"),
                    "rules_directory": format!("{dir}/rules"),
                }
            },
        },
        "schema_config": {
            "configs": [{
                "from": SCHEMA_FROM,
                "store": "tsdb",
                "object_store": "filesystem",
                "schema": "v13",
                "index": { "prefix": "index_", "period": "24h" },
            }]
        },
        "storage_config": {
            "tsdb_shipper": {
                "active_index_directory": format!("{dir}/tsdb-index"),
                "cache_location": format!("{dir}/tsdb-cache"),
            }
        },
        "compactor": {
            "working_directory": format!("{dir}/compactor"),
            "compaction_interval": "10m",
            "retention_enabled": true,
            "retention_delete_delay": "2h",
            "delete_request_store": "filesystem",
        },
        // One machine, a few dozen units and containers: generous for bursts
        // (a crash-looping unit), small enough to protect the disk.
        "limits_config": {
            "retention_period": lgtm::go_duration("loki.retention", &loki.retention)?,
            "ingestion_rate_mb": 8,
            "ingestion_burst_size_mb": 16,
            "per_stream_rate_limit": "4MB",
            "per_stream_rate_limit_burst": "16MB",
            "max_global_streams_per_user": 5000,
            "max_line_size": "256KB",
            "reject_old_samples": true,
            "reject_old_samples_max_age": "168h",
            "allow_structured_metadata": true,
            "volume_enabled": true,
            "max_query_series": 1000,
        },
        "query_range": {
            "results_cache": {
                "cache": { "embedded_cache": { "enabled": true, "max_size_mb": 100 } }
            }
        },
    });
    if plan.runs(job::ALERTMANAGER) {
        let config_dir = cfg.deploy.config_dir.trim_end_matches('/');
        doc["ruler"] = json!({
            "storage": { "type": "local", "local": { "directory": format!("{config_dir}/{RULES_DIR}") } },
            "rule_path": format!("{dir}/ruler"),
            "alertmanager_url": format!("http://{}", plan.alertmanager_address()),
            "ring": { "kvstore": { "store": "inmemory" } },
            "enable_api": true,
        });
        tree.add(RULES_FILE, rules()?)?;
    }
    tree.add("loki/loki.yaml", yaml::document(plan, "loki.yaml", &doc)?)
}

/// The log alert rules (templates use [[ ]] so that Loki's {{ }} stay).
fn rules() -> Result<String> {
    let env = super::rules::rule_template_environment()?;
    env.render_str(
        RULES_TEMPLATE,
        minijinja::context! { journal_job => alloy::JOURNAL_JOB },
    )
    .context("rendering rules/loki/logs.yml.j2")
}
