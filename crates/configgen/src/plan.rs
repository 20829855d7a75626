//! Derived facts, decided once: which scrape jobs exist, with which targets
//! and labels. Every renderer that needs them (prometheus.yml, Alloy on agents,
//! dashboards, rules) reads them from here.

use std::collections::BTreeMap;

use crate::model::Config;

/// Job label values. Dashboards and alert rules select on these.
pub mod job {
    pub const PROMETHEUS: &str = "prometheus";
    pub const ALERTMANAGER: &str = "alertmanager";
    pub const NODE: &str = "node";
    pub const BLACKBOX_EXPORTER: &str = "blackbox_exporter";
    pub const CADVISOR: &str = "cadvisor";
    pub const RED_PROBE: &str = "red_probe";
    pub const LOKI: &str = "loki";
    pub const TEMPO: &str = "tempo";
    pub const ALLOY: &str = "alloy";
    pub const GRAFANA: &str = "grafana";
    /// Service checks through blackbox_exporter; series carry `service` and `probe` labels.
    pub const BLACKBOX_HTTP: &str = "blackbox_http";
    pub const BLACKBOX_TCP: &str = "blackbox_tcp";
    pub const BLACKBOX_ICMP: &str = "blackbox_icmp";
    pub const BLACKBOX_DNS: &str = "blackbox_dns";
    /// ICMP to the gateway and public resolvers; series carry `role` = gateway | resolver.
    pub const NETWORK: &str = "network";
    /// ICMP sweep of the LAN range; one target per address.
    pub const LAN_SWEEP: &str = "lan_sweep";
}

/// A scrape job, independent of the format it is written in.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeJob {
    pub name: String,
    pub interval: Option<String>,
    pub metrics_path: String,
    pub targets: Vec<Target>,
}

/// One scrape target. For blackbox jobs `address` is the exporter and the
/// probed thing travels in the `__param_target` / `__param_module` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub address: String,
    pub labels: BTreeMap<String, String>,
}

pub struct Plan<'a> {
    pub cfg: &'a Config,
}

impl<'a> Plan<'a> {
    pub fn new(cfg: &'a Config) -> Self {
        Plan { cfg }
    }
}
