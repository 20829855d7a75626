//! blackbox/blackbox.yml: the plan's modules (a fixed set plus those the
//! checks use). Everything prefers IPv4: homelab IPv6 is often half set up,
//! and a probe should fail because the service is down, not because of that.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

use super::{yaml, Tree};
use crate::plan::{job, BlackboxModule, Plan};

const IP4: &str = "ip4";

#[derive(Serialize)]
struct BlackboxYml {
    modules: BTreeMap<String, ModuleYml>,
}

#[derive(Serialize)]
struct ModuleYml {
    prober: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpProbe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpProbe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp: Option<IcmpProbe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<DnsProbe>,
}

#[derive(Serialize)]
struct HttpProbe {
    preferred_ip_protocol: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    valid_status_codes: Vec<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<TlsConfig>,
}

#[derive(Serialize)]
struct TlsConfig {
    insecure_skip_verify: bool,
}

#[derive(Serialize)]
struct TcpProbe {
    preferred_ip_protocol: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls: bool,
}

#[derive(Serialize)]
struct IcmpProbe {
    preferred_ip_protocol: &'static str,
}

#[derive(Serialize)]
struct DnsProbe {
    preferred_ip_protocol: &'static str,
    query_name: String,
    query_type: String,
}

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    if !plan.runs(job::BLACKBOX_EXPORTER) {
        return Ok(());
    }
    if let Some(issue) = plan.issues().first() {
        bail!("{}: {}", issue.path, issue.message);
    }
    let modules = plan
        .blackbox_modules()
        .iter()
        .map(|(name, m)| (name.clone(), module(m)))
        .collect();
    tree.add(
        "blackbox/blackbox.yml",
        yaml::document(plan, "blackbox.yml", &BlackboxYml { modules })?,
    )
}

fn module(m: &BlackboxModule) -> ModuleYml {
    let mut out = ModuleYml {
        prober: "",
        http: None,
        tcp: None,
        icmp: None,
        dns: None,
    };
    match m {
        BlackboxModule::Http {
            valid_status_codes,
            insecure_skip_verify,
        } => {
            out.prober = "http";
            out.http = Some(HttpProbe {
                preferred_ip_protocol: IP4,
                valid_status_codes: valid_status_codes.clone(),
                tls_config: insecure_skip_verify.then_some(TlsConfig {
                    insecure_skip_verify: true,
                }),
            });
        }
        BlackboxModule::Tcp { tls } => {
            out.prober = "tcp";
            out.tcp = Some(TcpProbe {
                preferred_ip_protocol: IP4,
                tls: *tls,
            });
        }
        BlackboxModule::Icmp => {
            out.prober = "icmp";
            out.icmp = Some(IcmpProbe {
                preferred_ip_protocol: IP4,
            });
        }
        BlackboxModule::Dns {
            query_name,
            query_type,
        } => {
            out.prober = "dns";
            out.dns = Some(DnsProbe {
                preferred_ip_protocol: IP4,
                query_name: query_name.clone(),
                query_type: query_type.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Config;
    use serde_yaml_ng::Value;

    fn rendered(toml: &str) -> Value {
        let cfg: Config = toml::from_str(toml).unwrap();
        let mut tree = Tree::default();
        render(&Plan::new(&cfg), &mut tree).unwrap();
        serde_yaml_ng::from_str(tree.get("blackbox/blackbox.yml").unwrap()).unwrap()
    }

    #[test]
    fn fixed_modules_exist_without_services() {
        let bb = rendered("");
        let names: Vec<&str> = bb["modules"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["http_2xx", "http_2xx_or_401", "icmp", "tcp_connect", "tls"]
        );
        assert_eq!(bb["modules"]["tls"]["tcp"]["tls"].as_bool(), Some(true));
        assert!(bb["modules"]["http_2xx"]["http"]["valid_status_codes"].is_null());
        let or_401 = &bb["modules"]["http_2xx_or_401"]["http"]["valid_status_codes"];
        assert!(or_401.as_sequence().unwrap().contains(&Value::from(401)));
    }

    #[test]
    fn used_modules_are_added() {
        let bb = rendered(
            r#"
            [[services]]
            name = "r"
            http = { url = "https://r/", insecure_skip_verify = true }
            [[services]]
            name = "d"
            dns = { server = "1.1.1.1", query = "example.org", record_type = "MX" }
            "#,
        );
        let insecure = &bb["modules"]["http_2xx_insecure"]["http"];
        assert_eq!(
            insecure["tls_config"]["insecure_skip_verify"].as_bool(),
            Some(true)
        );
        let dns = &bb["modules"]["dns_mx_example_org"];
        assert_eq!(dns["prober"].as_str(), Some("dns"));
        assert_eq!(dns["dns"]["query_type"].as_str(), Some("MX"));
    }

    #[test]
    fn disabled_exporter_gets_no_config() {
        let cfg: Config =
            toml::from_str("exporters.blackbox = { enable = false, port = 9115 }").unwrap();
        let mut tree = Tree::default();
        render(&Plan::new(&cfg), &mut tree).unwrap();
        assert!(tree.get("blackbox/blackbox.yml").is_none());
    }
}
