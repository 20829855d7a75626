//! alloy/*.alloy: Grafana Alloy pipelines.
//!
//! - logs.alloy: journald (every unit, user units and containers logging to
//!   journald by their own names), Docker/Podman containers of every socket and
//!   optional log files, all pushed to Loki (local on a server, `ship_to` on an agent);
//! - traces.alloy: an OTLP receiver (gRPC and HTTP) forwarding traces to Tempo;
//! - metrics.alloy (agents only): runs the plan's scrape jobs (local exporters
//!   and service checks) and its container jobs (probes and metrics by the
//!   containers' `homelab.*` labels), and remote-writes to the server's Prometheus.
//!
//! Alloy loads every `*.alloy` file of its config directory as one module, so
//! component names are unique across the files.

use std::fmt::Write as _;

use anyhow::{bail, Result};

use super::{lgtm, Tree};
use crate::model::{LogSource, Role};
use crate::plan::{containers, job, join_host_port, scrape_address, Auth, Plan};

/// `job` label of the journal's log streams; dashboards select on it.
pub const JOURNAL_JOB: &str = "systemd-journal";
/// `job` label of the containers' log streams; dashboards select on it.
pub const CONTAINERS_JOB: &str = "containers";
/// The `level` values loki.source.journal writes (`__journal_priority_keyword`),
/// for PRIORITY 0 to 7: the keyword table of Alloy's journal target, which
/// spells 3 and 4 `error` and `warning`, not syslog's `err` and `warn`.
pub const JOURNAL_LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    if !plan.runs(job::ALLOY) {
        return Ok(());
    }
    let sinks = Sinks::of(plan)?;
    if let Some(loki_push) = &sinks.loki_push {
        tree.add("alloy/logs.alloy", logs(plan, loki_push))?;
    }
    if let Some(otlp) = &sinks.otlp_grpc {
        tree.add("alloy/traces.alloy", traces(plan, otlp))?;
    }
    if let Some(remote_write) = &sinks.remote_write {
        tree.add("alloy/metrics.alloy", metrics(plan, remote_write))?;
    }
    Ok(())
}

/// The URL of Alloy's OTLP HTTP receiver on this host, when Alloy runs and has somewhere
/// to send traces (else there is no receiver).
pub fn otlp_http_receiver(plan: &Plan) -> Result<Option<String>> {
    if !plan.runs(job::ALLOY) || Sinks::of(plan)?.otlp_grpc.is_none() {
        return Ok(None);
    }
    let a = &plan.cfg.alloy;
    Ok(Some(lgtm::local_url(&a.listen_address, a.otlp_http_port)))
}

/// Where this host's Alloy sends logs, traces and metrics.
struct Sinks {
    loki_push: Option<String>,
    otlp_grpc: Option<String>,
    remote_write: Option<String>,
}

impl Sinks {
    fn of(plan: &Plan) -> Result<Sinks> {
        let cfg = plan.cfg;
        match cfg.host.role {
            Role::Server => Ok(Sinks {
                loki_push: plan.runs(job::LOKI).then(|| {
                    format!(
                        "{}/loki/api/v1/push",
                        lgtm::local_url(&cfg.loki.listen_address, cfg.loki.port)
                    )
                }),
                otlp_grpc: plan.runs(job::TEMPO).then(|| {
                    scrape_address(
                        &cfg.tempo.otlp_grpc_listen_address,
                        cfg.tempo.otlp_grpc_port,
                    )
                }),
                // The server's own Prometheus scrapes the exporters.
                remote_write: None,
            }),
            Role::Agent => {
                let Some(ship) = &cfg.host.ship_to else {
                    bail!("host.ship_to: required when host.role = \"agent\"");
                };
                Ok(Sinks {
                    loki_push: Some(ship.loki_push.clone()),
                    otlp_grpc: ship.otlp_grpc.clone(),
                    remote_write: Some(ship.prometheus_remote_write.clone()),
                })
            }
        }
    }
}

fn external_labels(plan: &Plan) -> Value {
    Value::Object(
        plan.external_labels()
            .into_iter()
            .map(|(k, v)| (k, Value::Str(v)))
            .collect(),
    )
}

fn logs(plan: &Plan, loki_push: &str) -> String {
    let cfg = plan.cfg;
    let to_loki = || Value::List(vec![Value::Ref("loki.write.default.receiver".into())]);
    let mut d = Doc::new(
        plan,
        "Logs: journald, containers and files, pushed to Loki.",
    );

    d.comment(
        "systemd journal, every unit; user units (rootless Podman, quadlets) by their own name \
         and uid, containers logging to journald by name; level from the priority.",
    );
    d.block("loki.relabel", Some("journal"), |b| {
        b.attr("forward_to", Value::List(vec![]));
        b.block("rule", None, |r| {
            relabel(r, &["__journal__systemd_unit"], None, "unit", None)
        });
        // The user manager's own unit (user@1001.service) is replaced by the user unit's name.
        b.block("rule", None, |r| {
            relabel(
                r,
                &["__journal__systemd_user_unit"],
                Some("(.+)"),
                "unit",
                None,
            )
        });
        b.block("rule", None, |r| {
            relabel(
                r,
                &["__journal__systemd_user_unit", "__journal__uid"],
                Some(".+;(.+)"),
                "uid",
                None,
            )
        });
        b.block("rule", None, |r| {
            relabel(r, &["__journal_container_name"], None, "container", None)
        });
        b.block("rule", None, |r| {
            relabel(r, &["__journal_priority_keyword"], None, "level", None)
        });
        service_rules(b, cfg, "");
    });
    d.block("loki.source.journal", Some("system"), |b| {
        b.attr("max_age", Value::str("12h"));
        b.attr(
            "labels",
            Value::Object(vec![("job".into(), Value::str(JOURNAL_JOB))]),
        );
        b.attr(
            "relabel_rules",
            Value::Ref("loki.relabel.journal.rules".into()),
        );
        b.attr("forward_to", to_loki());
    });

    let sockets = &cfg.alloy.container_sockets;
    if !sockets.is_empty() {
        d.comment("Docker/Podman containers of every socket, labelled with the container name.");
        d.block("discovery.relabel", Some("containers"), |b| {
            b.attr("targets", Value::List(vec![]));
            b.block("rule", None, |r| {
                relabel(
                    r,
                    &["__meta_docker_container_name"],
                    Some("/(.*)"),
                    "container",
                    None,
                )
            });
            service_rules(b, cfg, "/");
        });
    }
    for (i, socket) in sockets.iter().enumerate() {
        let host = format!("unix://{}", containers::in_daemon(socket));
        let name = match i {
            0 => "containers".to_string(),
            i => format!("containers_{}", i + 1),
        };
        d.block("discovery.docker", Some(&name), |b| {
            b.attr("host", Value::str(&host));
        });
        let opted_in = format!("{name}_opted_in");
        d.block("discovery.relabel", Some(&opted_in), |b| {
            b.attr(
                "targets",
                Value::Ref(format!("discovery.docker.{name}.targets")),
            );
            b.block("rule", None, |r| {
                r.attr(
                    "source_labels",
                    Value::List(vec![Value::str(&containers::meta(
                        containers::container_label::ENABLE,
                    ))]),
                );
                r.attr("regex", Value::str("false"));
                r.attr("action", Value::str("drop"));
            });
        });
        d.block("loki.source.docker", Some(&name), |b| {
            b.attr("host", Value::str(&host));
            b.attr(
                "targets",
                Value::Ref(format!("discovery.relabel.{opted_in}.output")),
            );
            b.attr(
                "labels",
                Value::Object(vec![("job".into(), Value::str(CONTAINERS_JOB))]),
            );
            b.attr(
                "relabel_rules",
                Value::Ref("discovery.relabel.containers.rules".into()),
            );
            b.attr("forward_to", to_loki());
        });
    }

    if !cfg.alloy.log_files.is_empty() {
        d.comment("Log files by glob; `job` names each set.");
        d.block("local.file_match", Some("files"), |b| {
            let targets = cfg
                .alloy
                .log_files
                .iter()
                .map(|f| {
                    Value::Object(vec![
                        ("__path__".into(), Value::str(&f.path)),
                        ("job".into(), Value::str(&f.job)),
                    ])
                })
                .collect();
            b.attr("path_targets", Value::List(targets));
        });
        d.block("loki.source.file", Some("files"), |b| {
            b.attr(
                "targets",
                Value::Ref("local.file_match.files.targets".into()),
            );
            b.attr("forward_to", to_loki());
        });
    }

    d.block("loki.write", Some("default"), |b| {
        b.block("endpoint", None, |e| e.attr("url", Value::str(loki_push)));
        b.attr("external_labels", external_labels(plan));
    });
    d.finish()
}

/// `service_name` rules of the services whose logs are a unit or a container.
/// In the journal, they match the `unit` and `container` labels the earlier
/// rules set; Docker's container names start with `container_prefix` ("/").
fn service_rules(b: &mut Doc, cfg: &crate::model::Config, container_prefix: &str) {
    for svc in &cfg.services {
        let (source, name) = match &svc.logs {
            Some(LogSource::Unit(unit)) if container_prefix.is_empty() => ("unit", unit),
            Some(LogSource::Container(name)) => ("container", name),
            _ => continue,
        };
        let (source, regex) = if container_prefix.is_empty() {
            (source, regex_escape(name))
        } else {
            (
                "__meta_docker_container_name",
                format!("{container_prefix}{}", regex_escape(name)),
            )
        };
        b.block("rule", None, |r| {
            relabel(r, &[source], Some(&regex), "service_name", Some(&svc.name))
        });
    }
}

fn relabel(
    r: &mut Doc,
    sources: &[&str],
    regex: Option<&str>,
    target: &str,
    replacement: Option<&str>,
) {
    r.attr(
        "source_labels",
        Value::List(sources.iter().map(|s| Value::str(s)).collect()),
    );
    if let Some(regex) = regex {
        r.attr("regex", Value::str(regex));
    }
    r.attr("target_label", Value::str(target));
    if let Some(replacement) = replacement {
        r.attr("replacement", Value::str(replacement));
    }
}

fn traces(plan: &Plan, otlp_grpc: &str) -> String {
    let a = &plan.cfg.alloy;
    let mut d = Doc::new(
        plan,
        "Traces: an OTLP receiver (gRPC and HTTP) forwarding to Tempo.",
    );
    d.block("otelcol.receiver.otlp", Some("default"), |b| {
        b.block("grpc", None, |g| {
            g.attr(
                "endpoint",
                Value::str(&join_host_port(&a.listen_address, a.otlp_grpc_port)),
            )
        });
        b.block("http", None, |h| {
            h.attr(
                "endpoint",
                Value::str(&join_host_port(&a.listen_address, a.otlp_http_port)),
            )
        });
        b.block("output", None, |o| {
            o.attr(
                "traces",
                Value::List(vec![Value::Ref(
                    "otelcol.processor.batch.default.input".into(),
                )]),
            )
        });
    });
    d.block("otelcol.processor.batch", Some("default"), |b| {
        b.block("output", None, |o| {
            o.attr(
                "traces",
                Value::List(vec![Value::Ref("otelcol.exporter.otlp.tempo.input".into())]),
            )
        });
    });
    d.block("otelcol.exporter.otlp", Some("tempo"), |b| {
        b.block("client", None, |c| {
            c.attr("endpoint", Value::str(otlp_grpc));
            // Plain gRPC: loopback on a server, the LAN on an agent.
            c.block("tls", None, |t| t.attr("insecure", Value::Bool(true)));
        });
    });
    d.finish()
}

fn metrics(plan: &Plan, remote_write: &str) -> String {
    let jobs = plan.scrape_jobs();
    let mut d = Doc::new(
        plan,
        "Metrics: scrape the local exporters, remote-write to the server's Prometheus.",
    );
    for job in jobs {
        d.block("prometheus.scrape", Some(&ident(&job.name)), |b| {
            let targets = job
                .targets
                .iter()
                .map(|t| {
                    let mut fields = vec![("__address__".to_string(), Value::str(&t.address))];
                    for (k, v) in &t.labels {
                        fields.push((k.clone(), Value::str(v)));
                    }
                    Value::Object(fields)
                })
                .collect();
            b.attr("targets", Value::List(targets));
            b.attr("job_name", Value::str(&job.name));
            b.attr(
                "scrape_interval",
                Value::str(
                    job.interval
                        .as_deref()
                        .unwrap_or(&plan.cfg.prometheus.scrape_interval),
                ),
            );
            if let Some(timeout) = &job.timeout {
                b.attr("scrape_timeout", Value::str(timeout));
            }
            if let Some(scheme) = &job.scheme {
                b.attr("scheme", Value::str(scheme));
            }
            if job.metrics_path != "/metrics" {
                b.attr("metrics_path", Value::str(&job.metrics_path));
            }
            match &job.auth {
                Some(Auth::Basic(basic)) => b.block("basic_auth", None, |a| {
                    a.attr("username", Value::str(&basic.username));
                    a.attr("password_file", Value::str(&basic.password_file));
                }),
                Some(Auth::Bearer { token_file }) => b.block("authorization", None, |a| {
                    a.attr("type", Value::str("Bearer"));
                    a.attr("credentials_file", Value::str(token_file));
                }),
                None => {}
            }
            if let Some(tls) = &job.tls {
                b.block("tls_config", None, |t| {
                    let files = [
                        ("ca_file", &tls.ca_file),
                        ("cert_file", &tls.cert_file),
                        ("key_file", &tls.key_file),
                        ("server_name", &tls.server_name),
                    ];
                    for (key, value) in files {
                        if let Some(value) = value {
                            t.attr(key, Value::str(value));
                        }
                    }
                    if tls.insecure_skip_verify {
                        t.attr("insecure_skip_verify", Value::Bool(true));
                    }
                });
            }
            b.attr(
                "forward_to",
                Value::List(vec![Value::Ref(
                    "prometheus.remote_write.ship.receiver".into(),
                )]),
            );
        });
    }
    discovered(&mut d, plan);
    d.block("prometheus.remote_write", Some("ship"), |b| {
        b.block("endpoint", None, |e| {
            e.attr("url", Value::str(remote_write))
        });
        b.attr("external_labels", external_labels(plan));
    });
    d.finish()
}

/// The containers of every socket, probed and scraped by their `homelab.*`
/// labels: the jobs the server's Prometheus runs with docker_sd, with the same
/// relabel rules (Alloy's discovery.docker gives the same `__meta_docker_*`
/// labels). One discovery and one scrape per (job, socket), all under the
/// job's name.
fn discovered(d: &mut Doc, plan: &Plan) {
    let jobs = plan.discovered_jobs();
    let Some(first) = jobs.first() else {
        return;
    };
    d.comment("Containers of every socket, by their homelab.* labels (docs/discovery.md).");
    let socket = |i: usize| match i {
        0 => "metrics_containers".to_string(),
        i => format!("metrics_containers_{}", i + 1),
    };
    for (i, host) in first.docker_hosts.iter().enumerate() {
        d.block("discovery.docker", Some(&socket(i)), |b| {
            b.attr("host", Value::str(host))
        });
    }
    for job in jobs {
        for i in 0..job.docker_hosts.len() {
            let name = match i {
                0 => ident(&job.name),
                i => format!("{}_{}", ident(&job.name), i + 1),
            };
            d.block("discovery.relabel", Some(&name), |b| {
                b.attr(
                    "targets",
                    Value::Ref(format!("discovery.docker.{}.targets", socket(i))),
                );
                for rule in &job.relabel {
                    b.block("rule", None, |r| relabel_rule(r, rule));
                }
            });
            d.block("prometheus.scrape", Some(&name), |b| {
                b.attr(
                    "targets",
                    Value::Ref(format!("discovery.relabel.{name}.output")),
                );
                b.attr("job_name", Value::str(&job.name));
                b.attr(
                    "scrape_interval",
                    Value::str(&plan.cfg.prometheus.scrape_interval),
                );
                if job.metrics_path != "/metrics" {
                    b.attr("metrics_path", Value::str(&job.metrics_path));
                }
                b.attr(
                    "forward_to",
                    Value::List(vec![Value::Ref(
                        "prometheus.remote_write.ship.receiver".into(),
                    )]),
                );
            });
        }
    }
}

/// One Prometheus relabel rule as an Alloy `rule` block (same fields, same defaults).
fn relabel_rule(r: &mut Doc, rule: &containers::Relabel) {
    if !rule.source_labels.is_empty() {
        r.attr(
            "source_labels",
            Value::List(rule.source_labels.iter().map(|s| Value::str(s)).collect()),
        );
    }
    let fields = [
        ("separator", rule.separator),
        ("regex", rule.regex.as_deref()),
        ("target_label", rule.target_label.as_deref()),
        ("replacement", rule.replacement.as_deref()),
        ("action", rule.action),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            r.attr(key, Value::str(value));
        }
    }
}

/// A component label: Alloy labels are identifiers.
fn ident(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// Escape RE2 metacharacters so a unit or container name matches literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An Alloy expression, the subset this renderer writes.
enum Value {
    Str(String),
    Bool(bool),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
    /// A reference to another component's export, e.g. `loki.write.default.receiver`.
    Ref(String),
}

impl Value {
    fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Value::Str(s) => out.push_str(&quote(s)),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Ref(r) => out.push_str(r),
            Value::List(items) if items.is_empty() => out.push_str("[]"),
            Value::List(items) if items.len() == 1 && !matches!(items[0], Value::Object(_)) => {
                out.push('[');
                items[0].write(out, depth);
                out.push(']');
            }
            Value::List(items) => {
                out.push_str("[\n");
                for item in items {
                    indent(out, depth + 1);
                    item.write(out, depth + 1);
                    out.push_str(",\n");
                }
                indent(out, depth);
                out.push(']');
            }
            Value::Object(fields) => {
                out.push_str("{\n");
                for (k, v) in fields {
                    indent(out, depth + 1);
                    if is_ident(k) {
                        out.push_str(k);
                    } else {
                        out.push_str(&quote(k));
                    }
                    out.push_str(" = ");
                    v.write(out, depth + 1);
                    out.push_str(",\n");
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Writes Alloy blocks and attributes with consistent indentation.
struct Doc {
    out: String,
    depth: usize,
    /// A top-level comment was just written: the next block follows it directly.
    after_comment: bool,
}

impl Doc {
    fn new(plan: &Plan, title: &str) -> Doc {
        Doc {
            out: format!("// {}\n// {title}\n", super::generated_notice(plan)),
            depth: 0,
            after_comment: false,
        }
    }

    fn comment(&mut self, text: &str) {
        self.out.push('\n');
        indent(&mut self.out, self.depth);
        let _ = writeln!(self.out, "// {text}");
        self.after_comment = self.depth == 0;
    }

    fn block(&mut self, name: &str, label: Option<&str>, body: impl FnOnce(&mut Doc)) {
        if self.depth == 0 && !self.after_comment {
            self.out.push('\n');
        }
        self.after_comment = false;
        indent(&mut self.out, self.depth);
        self.out.push_str(name);
        if let Some(label) = label {
            self.out.push(' ');
            self.out.push_str(&quote(label));
        }
        self.out.push_str(" {\n");
        self.depth += 1;
        body(self);
        self.depth -= 1;
        indent(&mut self.out, self.depth);
        self.out.push_str("}\n");
    }

    fn attr(&mut self, key: &str, value: Value) {
        indent(&mut self.out, self.depth);
        self.out.push_str(key);
        self.out.push_str(" = ");
        value.write(&mut self.out, self.depth);
        self.out.push('\n');
    }

    fn finish(self) -> String {
        self.out
    }
}
