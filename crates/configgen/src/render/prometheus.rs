//! prometheus/prometheus.yml (standalone, scrape configs inline) and one
//! prometheus/scrape/<job>.yml fragment per job, both from the plan's jobs.
//! Only fields valid in both Prometheus 2.42 and 3.x are written.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

use super::{yaml, Tree};
use crate::model::{RemoteWrite, TlsConfig};
use crate::plan::containers::Relabel;
use crate::plan::{job, Auth, DiscoveredJob, Plan, ScrapeJob};

/// Where rule files are rendered, relative to prometheus.yml.
pub const RULE_FILES_GLOB: &str = "rules/*.yml";

#[derive(Serialize)]
struct PrometheusYml {
    global: Global,
    rule_files: Vec<String>,
    alerting: Alerting,
    scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    remote_write: Vec<RemoteWriteYml>,
}

#[derive(Serialize)]
struct Global {
    scrape_interval: String,
    evaluation_interval: String,
    external_labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Alerting {
    alertmanagers: Vec<AlertmanagerYml>,
}

#[derive(Serialize)]
struct AlertmanagerYml {
    static_configs: Vec<StaticConfig>,
}

#[derive(Serialize)]
struct ScrapeFragment<'a> {
    scrape_configs: [&'a ScrapeConfig; 1],
}

#[derive(Serialize)]
struct ScrapeConfig {
    job_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<String>,
    metrics_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<BasicAuthYml>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<AuthorizationYml>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<TlsConfigYml>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    docker_sd_configs: Vec<DockerSdConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabel_configs: Vec<Relabel>,
}

#[derive(Serialize)]
struct DockerSdConfig {
    host: String,
}

#[derive(Serialize)]
struct TlsConfigYml {
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_skip_verify: bool,
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RemoteWriteYml {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<BasicAuthYml>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<AuthorizationYml>,
}

#[derive(Serialize)]
struct BasicAuthYml {
    username: String,
    password_file: String,
}

#[derive(Serialize)]
struct AuthorizationYml {
    #[serde(rename = "type")]
    kind: &'static str,
    credentials_file: String,
}

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    if !plan.runs(job::PROMETHEUS) {
        return Ok(());
    }
    if let Some(issue) = plan.issues().first() {
        bail!("{}: {}", issue.path, issue.message);
    }
    let cfg = plan.cfg;
    let mut scrape_configs: Vec<ScrapeConfig> =
        plan.scrape_jobs().iter().map(scrape_config).collect();
    for sc in &scrape_configs {
        let fragment = ScrapeFragment {
            scrape_configs: [sc],
        };
        tree.add(
            format!("prometheus/scrape/{}.yml", sc.job_name),
            yaml::document(plan, "a scrape fragment", &fragment)?,
        )?;
    }

    // Inline only: a fragment is a file_sd source for the NixOS module, and
    // discovered targets cannot be written as file_sd.
    scrape_configs.extend(plan.discovered_jobs().iter().map(discovered_config));

    let mut rule_files = vec![RULE_FILES_GLOB.to_string()];
    rule_files.extend(cfg.alerting.extra_rule_files.iter().cloned());
    let doc = PrometheusYml {
        global: Global {
            scrape_interval: cfg.prometheus.scrape_interval.clone(),
            evaluation_interval: cfg.prometheus.evaluation_interval.clone(),
            external_labels: plan.external_labels().into_iter().collect(),
        },
        rule_files,
        alerting: Alerting {
            alertmanagers: vec![AlertmanagerYml {
                static_configs: vec![StaticConfig {
                    targets: vec![plan.alertmanager_address()],
                    labels: BTreeMap::new(),
                }],
            }],
        },
        scrape_configs,
        remote_write: cfg
            .prometheus
            .remote_write
            .iter()
            .map(remote_write)
            .collect(),
    };
    tree.add(
        "prometheus/prometheus.yml",
        yaml::document(plan, "prometheus.yml", &doc)?,
    )
}

fn scrape_config(job: &ScrapeJob) -> ScrapeConfig {
    ScrapeConfig {
        job_name: job.name.clone(),
        scrape_interval: job.interval.clone(),
        scrape_timeout: job.timeout.clone(),
        scheme: job.scheme.clone(),
        metrics_path: job.metrics_path.clone(),
        basic_auth: match &job.auth {
            Some(Auth::Basic(b)) => Some(BasicAuthYml {
                username: b.username.clone(),
                password_file: b.password_file.clone(),
            }),
            _ => None,
        },
        authorization: match &job.auth {
            Some(Auth::Bearer { token_file }) => Some(bearer(token_file)),
            _ => None,
        },
        tls_config: job.tls.as_ref().map(tls_config),
        static_configs: job
            .targets
            .iter()
            .map(|t| StaticConfig {
                targets: vec![t.address.clone()],
                labels: t.labels.clone(),
            })
            .collect(),
        docker_sd_configs: Vec::new(),
        relabel_configs: Vec::new(),
    }
}

fn discovered_config(job: &DiscoveredJob) -> ScrapeConfig {
    ScrapeConfig {
        job_name: job.name.clone(),
        scrape_interval: None,
        scrape_timeout: None,
        scheme: None,
        metrics_path: job.metrics_path.clone(),
        basic_auth: None,
        authorization: None,
        tls_config: None,
        static_configs: Vec::new(),
        docker_sd_configs: job
            .docker_hosts
            .iter()
            .map(|h| DockerSdConfig { host: h.clone() })
            .collect(),
        relabel_configs: job.relabel.clone(),
    }
}

fn tls_config(t: &TlsConfig) -> TlsConfigYml {
    TlsConfigYml {
        ca_file: t.ca_file.clone(),
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
    }
}

/// Prometheus 3 removed `bearer_token_file`; `authorization` works in 2.x too.
fn bearer(token_file: &str) -> AuthorizationYml {
    AuthorizationYml {
        kind: "Bearer",
        credentials_file: token_file.into(),
    }
}

fn remote_write(rw: &RemoteWrite) -> RemoteWriteYml {
    RemoteWriteYml {
        name: rw.name.clone(),
        url: rw.url.clone(),
        basic_auth: rw.basic_auth.as_ref().map(|b| BasicAuthYml {
            username: b.username.clone(),
            password_file: b.password_file.clone(),
        }),
        authorization: rw.bearer_token_file.as_deref().map(bearer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Config;

    fn rendered(toml: &str) -> Tree {
        let cfg: Config = toml::from_str(toml).unwrap();
        let mut tree = Tree::default();
        render(&Plan::new(&cfg), &mut tree).unwrap();
        tree
    }

    #[test]
    fn header_names_the_host() {
        let tree = rendered("host.name = \"nas\"");
        let yml = tree.get("prometheus/prometheus.yml").unwrap();
        assert!(yml.starts_with("# Generated by configgen from nas; do not edit.\n"));
    }

    #[test]
    fn fragments_hold_exactly_the_inline_jobs() {
        let tree = rendered(
            r#"
            [[services]]
            name = "a"
            interval = "15s"
            http = { url = "http://a/" }
            "#,
        );
        let inline: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(tree.get("prometheus/prometheus.yml").unwrap()).unwrap();
        let inline: Vec<_> = inline["scrape_configs"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|job| job.get("docker_sd_configs").is_none())
            .cloned()
            .collect();
        let mut from_fragments = Vec::new();
        for (path, text) in tree.files() {
            if path.starts_with("prometheus/scrape/") {
                let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
                let jobs = v["scrape_configs"].as_sequence().unwrap();
                assert_eq!(jobs.len(), 1);
                let name = jobs[0]["job_name"].as_str().unwrap();
                assert_eq!(path, format!("prometheus/scrape/{name}.yml"));
                from_fragments.push(jobs[0].clone());
            }
        }
        assert_eq!(from_fragments.len(), inline.len());
        for job in &inline {
            assert!(from_fragments.contains(job), "{job:?}");
        }
        assert!(tree
            .get("prometheus/scrape/blackbox_http_15s.yml")
            .is_some());
    }

    #[test]
    fn remote_write_secrets_stay_in_files() {
        let tree = rendered(
            r#"
            [[prometheus.remote_write]]
            url = "https://m/api/v1/push"
            basic_auth = { username = "u", password_file = "/run/secrets/p" }
            [[prometheus.remote_write]]
            name = "vm"
            url = "https://v/api/v1/write"
            bearer_token_file = "/run/secrets/t"
            "#,
        );
        let yml = tree.get("prometheus/prometheus.yml").unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(yml).unwrap();
        let rw = &v["remote_write"];
        assert_eq!(
            rw[0]["basic_auth"]["password_file"].as_str(),
            Some("/run/secrets/p")
        );
        assert_eq!(rw[1]["authorization"]["type"].as_str(), Some("Bearer"));
        assert_eq!(
            rw[1]["authorization"]["credentials_file"].as_str(),
            Some("/run/secrets/t")
        );
        assert!(
            !yml.contains("bearer_token_file"),
            "removed in Prometheus 3"
        );
    }

    #[test]
    fn an_unplannable_lan_sweep_is_an_error_not_a_silent_gap() {
        let cfg: Config = toml::from_str(r#"network.lan_sweep = { cidr = "10.0.0.0/8" }"#).unwrap();
        let err = render(&Plan::new(&cfg), &mut Tree::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("network.lan_sweep.cidr: "),
            "{err}"
        );
    }

    #[test]
    fn agents_get_no_prometheus() {
        let tree = rendered(
            r#"host = { role = "agent", ship_to = { prometheus_remote_write = "http://m/", loki_push = "http://m/" } }"#,
        );
        assert_eq!(tree.files().count(), 0);
    }
}
