//! Dashboards from the minijinja templates in `dashboards/` (repository root).
//!
//! Templates get the provisioned datasources (`ds.<kind>` = {type, uid}), the
//! job label values (`jobs`, exposed in Grafana as hidden constant variables
//! `$job_<name>`) and the `job` labels of Alloy's log streams (`log_streams`),
//! so no dashboard repeats a job name or uid.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use minijinja::{AutoEscape, Environment};
use serde_json::{json, Value};

use super::{Datasource, LOKI};
use crate::model::Config;
use crate::plan::job;
use crate::render::alloy;
use crate::validate::is_plain_name;

const PANELS: &str = include_str!("../../../../../dashboards/_panels.j2");

struct Template {
    name: &'static str,
    source: &'static str,
    /// Datasources beyond Prometheus the dashboard cannot work without.
    needs: &'static [Datasource],
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "overview",
        source: include_str!("../../../../../dashboards/overview.json.j2"),
        needs: &[],
    },
    Template {
        name: "host",
        source: include_str!("../../../../../dashboards/host.json.j2"),
        needs: &[],
    },
    Template {
        name: "services",
        source: include_str!("../../../../../dashboards/services.json.j2"),
        needs: &[],
    },
    Template {
        name: "probes",
        source: include_str!("../../../../../dashboards/probes.json.j2"),
        needs: &[],
    },
    Template {
        name: "logs",
        source: include_str!("../../../../../dashboards/logs.json.j2"),
        needs: &[LOKI],
    },
    Template {
        name: "containers",
        source: include_str!("../../../../../dashboards/containers.json.j2"),
        needs: &[],
    },
];

/// The job label values dashboards select on, by variable suffix.
fn jobs() -> BTreeMap<&'static str, String> {
    let mut jobs: BTreeMap<&str, String> = [
        ("node", job::NODE),
        ("cadvisor", job::CADVISOR),
        ("red_probe", job::RED_PROBE),
        ("network", job::NETWORK),
        ("lan_sweep", job::LAN_SWEEP),
        ("blackbox_http", job::BLACKBOX_HTTP),
        ("blackbox_tcp", job::BLACKBOX_TCP),
        ("blackbox_icmp", job::BLACKBOX_ICMP),
        ("blackbox_dns", job::BLACKBOX_DNS),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect();
    // Every service check, for `job=~"$job_blackbox"`.
    jobs.insert("blackbox", job::SERVICE_CHECKS.join("|"));
    // configgen's own jobs: `job!~"$job_builtin"` is every job the user declared.
    jobs.insert("builtin", job::BUILTIN.join("|"));
    jobs
}

/// Rendered dashboards: (file stem, pretty JSON).
pub fn render(cfg: &Config, provisioned: &[Datasource]) -> Result<Vec<(String, String)>> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Json);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("_panels.j2", PANELS)?;
    for t in TEMPLATES {
        env.add_template(t.name, t.source)
            .with_context(|| format!("dashboards/{}.json.j2", t.name))?;
    }
    let ds: BTreeMap<&str, Value> = provisioned
        .iter()
        .map(|d| (d.kind, json!({ "type": d.kind, "uid": d.uid })))
        .collect();
    env.add_global("ds", minijinja::Value::from_serialize(&ds));
    env.add_global("jobs", minijinja::Value::from_serialize(jobs()));
    env.add_global("refresh", "1m");
    env.add_global("log_jobs_regex", log_jobs_regex(cfg)?);
    env.add_global("probe_unit", crate::render::systemd::PROBE_UNIT);
    // Priority 0-3 (emerg to error), as Alloy spells them.
    env.add_global("journal_error_levels", alloy::JOURNAL_LEVELS[..4].join("|"));
    env.add_global(
        "log_streams",
        minijinja::Value::from_serialize(BTreeMap::from([
            ("journal", alloy::JOURNAL_JOB),
            ("containers", alloy::CONTAINERS_JOB),
        ])),
    );

    let mut out = Vec::new();
    for t in TEMPLATES {
        if !t.needs.iter().all(|d| provisioned.contains(d)) {
            continue;
        }
        let text = env
            .get_template(t.name)?
            .render(())
            .with_context(|| format!("rendering dashboards/{}.json.j2", t.name))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("dashboards/{}.json.j2 rendered invalid JSON", t.name))?;
        let mut json = serde_json::to_string_pretty(&value)?;
        json.push('\n');
        out.push((t.name.to_string(), json));
    }
    Ok(out)
}

/// `job` values of the configured log files, as a LogQL regex alternation.
fn log_jobs_regex(cfg: &Config) -> Result<String> {
    let mut jobs = Vec::new();
    for (i, f) in cfg.alloy.log_files.iter().enumerate() {
        if !is_plain_name(&f.job) {
            bail!(
                "alloy.log_files[{i}].job: {:?} must be letters, digits, '-' or '_'",
                f.job
            );
        }
        if !jobs.contains(&f.job.as_str()) {
            jobs.push(f.job.as_str());
        }
    }
    Ok(jobs.join("|"))
}
