//! Listeners: every daemon's address and port, checked together so that two
//! daemons never get the same one.

use std::net::IpAddr;

use super::Checker;
use crate::model::Config;
use crate::plan::{job, Plan, INTERNAL_ADDRESS};

impl Checker {
    /// Port 0, unparsable addresses, and two daemons on one address and port.
    /// A clash is reported on the listener the user changed from its default,
    /// since that is the line to fix.
    pub(super) fn listeners(&mut self, cfg: &Config) {
        let defaults = listeners(&Config::default());
        let mut taken: Vec<(ListenerRef, IpAddr, bool)> = Vec::new();
        for (l, default) in listeners(cfg).into_iter().zip(defaults) {
            self.port(&l.port_path, l.port);
            let Ok(addr) = l.address.parse::<IpAddr>() else {
                self.issue(
                    l.address_path.clone(),
                    format!(
                        "`{}` is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for all interfaces)",
                        l.address
                    ),
                );
                continue;
            };
            if !l.enabled || l.port == 0 {
                continue;
            }
            let customized = l.port != default.port || l.address != default.address;
            let clash = taken.iter().find(|(other, other_addr, _)| {
                other.port == l.port
                    && (*other_addr == addr || other_addr.is_unspecified() || addr.is_unspecified())
            });
            match clash {
                Some((other, other_addr, other_customized)) => {
                    let (blamed, blamed_addr, holder, holder_addr) =
                        if customized || !other_customized {
                            (&l, addr, other, *other_addr)
                        } else {
                            (other, *other_addr, &l, addr)
                        };
                    self.issue(
                        blamed.port_path.clone(),
                        format!(
                            "{blamed_addr}:{} is already taken by {} ({holder_addr}:{})",
                            blamed.port, holder.port_path, holder.port
                        ),
                    );
                }
                None => taken.push((l, addr, customized)),
            }
        }
    }
}

struct ListenerRef {
    port_path: String,
    address_path: String,
    address: String,
    port: u16,
    enabled: bool,
}

/// Every daemon address:port of the stack, with whether it runs on this host.
fn listeners(cfg: &Config) -> Vec<ListenerRef> {
    let plan = Plan::new(cfg);
    let mut out = Vec::new();
    let at = |section: &str,
              address_field: &str,
              port_field: &str,
              address: &str,
              port: u16,
              daemon: &str| {
        ListenerRef {
            port_path: format!("{section}.{port_field}"),
            address_path: format!("{section}.{address_field}"),
            address: address.to_string(),
            port,
            enabled: plan.runs(daemon),
        }
    };
    let mut add = |section: &str, port_field: &str, address: &str, port: u16, daemon: &str| {
        out.push(at(
            section,
            "listen_address",
            port_field,
            address,
            port,
            daemon,
        ))
    };
    let e = &cfg.exporters;
    add(
        "exporters.node",
        "port",
        &e.node.listen_address,
        e.node.port,
        job::NODE,
    );
    for (name, address, port, daemon) in [
        (
            "blackbox",
            &e.blackbox.listen_address,
            e.blackbox.port,
            job::BLACKBOX_EXPORTER,
        ),
        (
            "cadvisor",
            &e.cadvisor.listen_address,
            e.cadvisor.port,
            job::CADVISOR,
        ),
        (
            "probe",
            &e.probe.listen_address,
            e.probe.port,
            job::RED_PROBE,
        ),
    ] {
        add(&format!("exporters.{name}"), "port", address, port, daemon);
    }
    let (p, am) = (&cfg.prometheus, &cfg.alertmanager);
    add(
        "prometheus",
        "port",
        &p.listen_address,
        p.port,
        job::PROMETHEUS,
    );
    add(
        "alertmanager",
        "port",
        &am.listen_address,
        am.port,
        job::ALERTMANAGER,
    );
    let loki = &cfg.loki;
    add("loki", "port", &loki.listen_address, loki.port, job::LOKI);
    add(
        "loki",
        "grpc_port",
        INTERNAL_ADDRESS,
        loki.grpc_port,
        job::LOKI,
    );
    let alloy = &cfg.alloy;
    add(
        "alloy",
        "port",
        &alloy.listen_address,
        alloy.port,
        job::ALLOY,
    );
    add(
        "alloy",
        "otlp_grpc_port",
        &alloy.listen_address,
        alloy.otlp_grpc_port,
        job::ALLOY,
    );
    add(
        "alloy",
        "otlp_http_port",
        &alloy.listen_address,
        alloy.otlp_http_port,
        job::ALLOY,
    );
    let tempo = &cfg.tempo;
    add(
        "tempo",
        "port",
        &tempo.listen_address,
        tempo.port,
        job::TEMPO,
    );
    let g = &cfg.grafana;
    add("grafana", "port", &g.listen_address, g.port, job::GRAFANA);
    // The one Tempo listener with an address of its own.
    out.push(at(
        "tempo",
        "otlp_grpc_listen_address",
        "otlp_grpc_port",
        &tempo.otlp_grpc_listen_address,
        tempo.otlp_grpc_port,
        job::TEMPO,
    ));
    out
}
