//! The user's own scrape jobs: `prometheus.scrape_configs` and
//! `services[].metrics`. Their job names share one namespace with each other
//! and with configgen's own jobs, whose labels dashboards and alerts select on.

use std::collections::BTreeMap;

use super::{parse_duration_ms, Checker};
use crate::model::{Config, ScrapeConfig, ServiceMetrics, TlsConfig};
use crate::plan::job;

impl Checker {
    pub(super) fn scrape_jobs(&mut self, cfg: &Config) {
        // job name, with '-' read as '_' (Alloy component labels on agents
        // make both one identifier) -> (name as written, where it was declared)
        let mut names: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut claim = |c: &mut Checker, path: String, job_name: &str| {
            let key = job_name.replace('-', "_");
            if job::is_builtin(&key) {
                c.issue(
                    path,
                    format!(
                        "job `{job_name}` clashes with configgen's own jobs ({}); choose another name",
                        job::BUILTIN.join(", ")
                    ),
                );
            } else if let Some((first_name, first)) = names.get(&key) {
                let same = if first_name == job_name {
                    String::new()
                } else {
                    format!(" as `{first_name}`: '-' and '_' are the same in Alloy")
                };
                c.issue(
                    path,
                    format!("duplicate scrape job `{job_name}` (first declared by {first}{same})"),
                );
            } else {
                names.insert(key, (job_name.to_string(), path));
            }
        };
        for (i, s) in cfg.services.iter().enumerate() {
            if let Some(metrics) = &s.metrics {
                let path = format!("services[{i}].metrics");
                self.service_metrics(&path, metrics);
                if !s.name.is_empty() {
                    claim(self, format!("services[{i}].name"), &s.name);
                }
            }
        }
        for (i, sc) in cfg.prometheus.scrape_configs.iter().enumerate() {
            let path = format!("prometheus.scrape_configs[{i}]");
            if self.scrape_config(&path, sc, &cfg.prometheus.scrape_interval) {
                claim(self, format!("{path}.job_name"), &sc.job_name);
            }
        }
    }

    fn service_metrics(&mut self, path: &str, m: &ServiceMetrics) {
        if let Some(url) = self.http_url(&format!("{path}.url"), &m.url) {
            if url.query().is_some() || url.fragment().is_some() {
                self.issue(
                    format!("{path}.url"),
                    format!(
                        "`{}`: a metrics URL takes no query or fragment; use prometheus.scrape_configs for anything else",
                        m.url
                    ),
                );
            }
            if url.username() != "" || url.password().is_some() {
                self.issue(
                    format!("{path}.url"),
                    "credentials do not belong in the URL; use prometheus.scrape_configs with basic_auth.password_file",
                );
            }
        }
        if let Some(interval) = &m.interval {
            self.duration(&format!("{path}.interval"), interval, false);
        }
    }

    /// Checks one scrape config; true if its job name may be claimed.
    fn scrape_config(&mut self, path: &str, sc: &ScrapeConfig, global_interval: &str) -> bool {
        let at = |field: &str| format!("{path}.{field}");
        let named = if sc.job_name.is_empty() {
            self.issue(at("job_name"), "must not be empty");
            false
        } else if !super::is_plain_name(&sc.job_name) {
            self.issue(
                at("job_name"),
                format!(
                    "`{}` may only contain letters, digits, '-' and '_'",
                    sc.job_name
                ),
            );
            false
        } else {
            true
        };
        if sc.targets.is_empty() {
            self.issue(at("targets"), "list at least one host:port to scrape");
        }
        for (j, t) in sc.targets.iter().enumerate() {
            self.host_port(&at(&format!("targets[{j}]")), t);
        }
        self.labels(&at("labels"), &sc.labels, &["job", "host"]);
        if let Some(scheme) = &sc.scheme {
            if scheme != "http" && scheme != "https" {
                self.issue(
                    at("scheme"),
                    format!("scheme must be http or https, not `{scheme}`"),
                );
            }
        }
        if let Some(p) = &sc.metrics_path {
            if !p.starts_with('/') {
                self.issue(at("metrics_path"), format!("`{p}` must start with '/'"));
            }
        }
        if let Some(interval) = &sc.scrape_interval {
            self.duration(&at("scrape_interval"), interval, false);
        }
        if let Some(timeout) = &sc.scrape_timeout {
            self.duration(&at("scrape_timeout"), timeout, false);
            let interval = sc.scrape_interval.as_deref().unwrap_or(global_interval);
            if let (Some(t), Some(i)) = (parse_duration_ms(timeout), parse_duration_ms(interval)) {
                if t > i {
                    self.issue(
                        at("scrape_timeout"),
                        format!("{timeout} is longer than the scrape interval ({interval})"),
                    );
                }
            }
        }
        if let Some(auth) = &sc.basic_auth {
            if auth.username.is_empty() {
                self.issue(at("basic_auth.username"), "must not be empty");
            }
            self.secret_file(&at("basic_auth.password_file"), &auth.password_file);
            if sc.bearer_token_file.is_some() {
                self.issue(
                    at("bearer_token_file"),
                    "use either basic_auth or bearer_token_file, not both",
                );
            }
        }
        if let Some(file) = &sc.bearer_token_file {
            self.secret_file(&at("bearer_token_file"), file);
        }
        if let Some(tls) = &sc.tls_config {
            self.tls_config(&at("tls_config"), tls);
        }
        named
    }

    fn tls_config(&mut self, path: &str, tls: &TlsConfig) {
        if let Some(ca) = &tls.ca_file {
            self.absolute(&format!("{path}.ca_file"), ca);
        }
        if let Some(cert) = &tls.cert_file {
            self.absolute(&format!("{path}.cert_file"), cert);
        }
        if let Some(key) = &tls.key_file {
            self.secret_file(&format!("{path}.key_file"), key);
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => self.issue(
                format!("{path}.cert_file"),
                "a client certificate needs its key_file",
            ),
            (None, Some(_)) => self.issue(
                format!("{path}.key_file"),
                "a client key needs its cert_file",
            ),
            _ => {}
        }
        if let Some(name) = &tls.server_name {
            if !super::is_host_name(name) {
                self.issue(
                    format!("{path}.server_name"),
                    format!("`{name}` is not a host name"),
                );
            }
        }
    }
}
