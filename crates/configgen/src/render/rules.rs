//! Alert rules: `prometheus/rules/<group>.yml`, rendered from the templates in
//! `crates/configgen/rules/` with the catalogue's values and the user's overrides.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::Tree;
use crate::alerts::{self, format_number, Group};
use crate::plan::{job, Plan};
use crate::validate::parse_duration_ms;

const MACROS: (&str, &str) = ("_macros.j2", include_str!("../../rules/_macros.j2"));

fn template_source(group: Group) -> &'static str {
    match group {
        Group::Watchdog => include_str!("../../rules/watchdog.yml.j2"),
        Group::Targets => include_str!("../../rules/targets.yml.j2"),
        Group::Host => include_str!("../../rules/host.yml.j2"),
        Group::HostExtra => include_str!("../../rules/host_extra.yml.j2"),
        Group::HostSmart => include_str!("../../rules/host_smart.yml.j2"),
        Group::Probes => include_str!("../../rules/probes.yml.j2"),
        Group::Red => include_str!("../../rules/red.yml.j2"),
        Group::Prometheus => include_str!("../../rules/prometheus.yml.j2"),
    }
}

/// What a template sees of one alert.
#[derive(Serialize)]
struct AlertVars {
    enabled: bool,
    severity: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    threshold: Option<String>,
}

#[derive(Serialize)]
struct Vars {
    alerts: BTreeMap<&'static str, AlertVars>,
    job: BTreeMap<&'static str, &'static str>,
    /// `blackbox_http|blackbox_tcp|...`: the service checks, for `job=~`.
    blackbox_jobs: String,
    /// Every job scraped through blackbox_exporter's /probe.
    probe_jobs: String,
    /// Services whose TLS expiry is not watched, as a regex alternation ("" = none).
    tls_expiry_ignored: String,
    /// alerting.timer_max_age: each timer with its maximum age in seconds.
    timers: Vec<TimerAge>,
    /// The same timers as a regex alternation ("" = none).
    timers_regex: String,
}

#[derive(Serialize)]
struct TimerAge {
    name: String,
    seconds: String,
}

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    // Rule files are Prometheus's.
    if !plan.runs(job::PROMETHEUS) {
        return Ok(());
    }
    for (group, text) in render_groups(plan)? {
        tree.add(format!("prometheus/rules/{}.yml", group.name()), text)?;
    }
    Ok(())
}

/// The rule files of every group that has at least one enabled alert.
fn render_groups(plan: &Plan) -> Result<Vec<(Group, String)>> {
    if let Some(issue) = alerts::check_overrides(plan.cfg).first() {
        bail!("{}: {}", issue.path, issue.message);
    }
    let resolved = alerts::resolve(plan.cfg);
    let ctx = Vars {
        alerts: resolved
            .iter()
            .map(|r| {
                let vars = AlertVars {
                    enabled: r.enabled,
                    severity: r.severity.clone(),
                    for_: r.for_.clone(),
                    threshold: r.threshold.map(format_number),
                };
                (r.alert.name, vars)
            })
            .collect(),
        job: jobs(),
        blackbox_jobs: job::SERVICE_CHECKS.join("|"),
        probe_jobs: [&job::SERVICE_CHECKS[..], &[job::NETWORK, job::LAN_SWEEP]]
            .concat()
            .join("|"),
        tls_expiry_ignored: plan
            .cfg
            .services
            .iter()
            .filter(|s| s.http.as_ref().is_some_and(|h| h.tls_expiry == Some(false)))
            .map(|s| regex_literal(&s.name))
            .collect::<Vec<_>>()
            .join("|"),
        timers: timer_ages(plan)?,
        timers_regex: plan
            .cfg
            .alerting
            .timer_max_age
            .keys()
            .map(|t| regex_literal(t))
            .collect::<Vec<_>>()
            .join("|"),
    };
    let env = environment()?;
    let mut out = Vec::new();
    for group in Group::ALL {
        if !resolved.iter().any(|r| r.alert.group == group && r.enabled) {
            continue;
        }
        let text = env
            .get_template(group.name())?
            .render(&ctx)
            .with_context(|| format!("rendering rules/{}.yml.j2", group.name()))?;
        out.push((group, text));
    }
    Ok(out)
}

fn timer_ages(plan: &Plan) -> Result<Vec<TimerAge>> {
    let mut out = Vec::new();
    for (name, age) in &plan.cfg.alerting.timer_max_age {
        let Some(ms) = parse_duration_ms(age) else {
            bail!("alerting.timer_max_age[{name}]: `{age}` is not a duration");
        };
        out.push(TimerAge {
            // Validated as a unit name: no quote or backslash to escape.
            name: name.clone(),
            seconds: format_number(ms as f64 / 1000.0),
        });
    }
    Ok(out)
}

/// The template syntax of every rule file, Prometheus' and Loki's: their
/// annotations use {{ }} themselves, so the templates use [[ ]] and [% %].
pub(super) fn rule_template_environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .block_delimiters("[%", "%]")
            .variable_delimiters("[[", "]]")
            .comment_delimiters("[#", "#]")
            .build()?,
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    Ok(env)
}

fn environment() -> Result<Environment<'static>> {
    let mut env = rule_template_environment()?;
    env.set_lstrip_blocks(true);
    env.add_template(MACROS.0, MACROS.1)?;
    for group in Group::ALL {
        env.add_template(group.name(), template_source(group))?;
    }
    Ok(env)
}

/// `s` as a literal inside a PromQL regex matcher's double-quoted string.
fn regex_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' | '\\' => {
                out.push_str("\\\\");
                out.push(c);
            }
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Job names as the templates see them: `job.node`, `job.blackbox_http`, ...
fn jobs() -> BTreeMap<&'static str, &'static str> {
    [
        ("prometheus", job::PROMETHEUS),
        ("alertmanager", job::ALERTMANAGER),
        ("node", job::NODE),
        ("blackbox_exporter", job::BLACKBOX_EXPORTER),
        ("cadvisor", job::CADVISOR),
        ("red_probe", job::RED_PROBE),
        ("loki", job::LOKI),
        ("tempo", job::TEMPO),
        ("alloy", job::ALLOY),
        ("grafana", job::GRAFANA),
        ("blackbox_http", job::BLACKBOX_HTTP),
        ("blackbox_tcp", job::BLACKBOX_TCP),
        ("blackbox_icmp", job::BLACKBOX_ICMP),
        ("blackbox_dns", job::BLACKBOX_DNS),
        ("network", job::NETWORK),
        ("lan_sweep", job::LAN_SWEEP),
    ]
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertOverride, Config};

    #[test]
    fn regex_literals_are_escaped_for_promql_strings() {
        assert_eq!(regex_literal("nas-smb_2"), "nas-smb_2");
        assert_eq!(regex_literal("a.b"), r"a\\.b");
        assert_eq!(regex_literal(r#"q"x"#), r#"q\"x"#);
    }

    #[test]
    fn invalid_overrides_are_an_error_not_a_broken_file() {
        let mut cfg = Config::default();
        cfg.alerting.overrides.insert(
            "TargetDown".into(),
            AlertOverride {
                severity: Some("page".into()),
                ..Default::default()
            },
        );
        let err = render_groups(&Plan::new(&cfg)).unwrap_err().to_string();
        assert!(
            err.starts_with("alerting.overrides.TargetDown.severity: "),
            "{err}"
        );
    }
}
