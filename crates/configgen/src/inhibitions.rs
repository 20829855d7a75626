//! Which firing alert silences which others in Alertmanager: a cause
//! silences what it causes (router down: every probe behind it), and a
//! critical alert silences the warning about the same object (TLS expiring
//! in 3 days silences "in 20 days" for that certificate).
//!
//! Each rule is rendered into alertmanager.yml's `inhibit_rules`, listed in
//! docs/alerts.md, and proven by a test of its own against the real
//! Alertmanager (tests/inhibitions_live.rs).

/// Label a service carries (`services[].labels.needs = "internet"`) when its
/// check goes through the internet uplink (a VPS, a public website).
pub const NEEDS_LABEL: &str = "needs";
/// Label naming the agent host a service runs on
/// (`services[].labels.runs_on = "nas"`); AgentNotReporting carries it too.
pub const RUNS_ON_LABEL: &str = "runs_on";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inhibition {
    /// Short name, used by docs and tests.
    pub name: &'static str,
    /// Matchers of the alert that silences.
    pub source: &'static [&'static str],
    /// Matchers of the alerts it silences.
    pub target: &'static [&'static str],
    /// Labels that must have the same value on both (the object).
    pub equal: &'static [&'static str],
    /// Why, for the docs.
    pub reason: &'static str,
}

/// Every inhibition rule, in rendering order.
pub const RULES: &[Inhibition] = &[
    Inhibition {
        name: "gateway-down",
        source: &[r#"alertname="GatewayDown""#],
        target: &[
            r#"alertname=~"ServiceProbeFailed|ServiceProbeSlow|ServiceHttpStatusUnexpected|TargetDown|AlertSourceDown|AgentNotReporting|AlertmanagerNotificationsFailing""#,
        ],
        equal: &[],
        reason: "With the router (or this host's link) down, checks of other machines fail, agents cannot report and notifications cannot leave: one GatewayDown says it all.",
    },
    Inhibition {
        name: "internet-down",
        source: &[r#"alertname="InternetDown""#],
        target: &[r#"needs="internet""#],
        equal: &[],
        reason: "Checks of services labelled needs = \"internet\" (a VPS, a public site) fail while the uplink is down.",
    },
    Inhibition {
        name: "internet-down-delivery",
        source: &[r#"alertname="InternetDown""#],
        target: &[r#"alertname="AlertmanagerNotificationsFailing""#],
        equal: &[],
        reason: "Notifications to internet services (ntfy.sh, a mail provider) fail while the uplink is down; they recover with it.",
    },
    Inhibition {
        name: "host-down",
        source: &[r#"alertname="AgentNotReporting""#],
        target: &[r#"alertname!="AgentNotReporting""#],
        equal: &["host"],
        reason: "A host that stopped reporting makes its own remaining alerts stale.",
    },
    Inhibition {
        name: "host-down-services",
        source: &[r#"alertname="AgentNotReporting""#],
        target: &[r#"runs_on=~".+""#],
        equal: &["runs_on"],
        reason: "Checks of services labelled runs_on = \"<host>\" fail when that host is down.",
    },
    Inhibition {
        name: "probe-failed-over-status",
        source: &[r#"alertname="ServiceProbeFailed""#, r#"severity="critical""#],
        target: &[r#"alertname="ServiceHttpStatusUnexpected""#, r#"severity="warning""#],
        equal: &["host", "job", "instance"],
        reason: "A failing HTTP check with a bad status is one problem: the critical probe failure is told, not also the status.",
    },
    Inhibition {
        name: "tls-critical-over-warning",
        source: &[r#"alertname="TlsCertificateAboutToExpire""#, r#"severity="critical""#],
        target: &[r#"alertname="TlsCertificateExpiringSoon""#, r#"severity="warning""#],
        equal: &["host", "job", "instance"],
        reason: "The same certificate expiring in 3 days and in 20 days is one problem.",
    },
    Inhibition {
        name: "disk-critical-over-warning",
        source: &[r#"alertname=~"HostDiskAlmostFull|HostDiskFullSoon""#, r#"severity="critical""#],
        target: &[r#"alertname="HostDiskFillingUp""#, r#"severity="warning""#],
        equal: &["host", "instance", "mountpoint"],
        reason: "A filesystem that is almost full (or full within hours) need not also be told to fill within a day.",
    },
    Inhibition {
        name: "inodes-critical-over-warning",
        source: &[r#"alertname="HostInodesAlmostFull""#, r#"severity="critical""#],
        target: &[r#"alertname="HostInodesFillingUp""#, r#"severity="warning""#],
        equal: &["host", "instance", "mountpoint"],
        reason: "Same filesystem, same problem, told once.",
    },
    Inhibition {
        name: "raid-critical-over-warning",
        source: &[r#"alertname="HostRaidDegraded""#, r#"severity="critical""#],
        target: &[r#"alertname="HostRaidDiskFailed""#, r#"severity="warning""#],
        equal: &["host", "instance", "device"],
        reason: "A degraded array with a failed member is one problem.",
    },
];

pub fn find(name: &str) -> Option<&'static Inhibition> {
    RULES.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alert name a rule matches on exists in the catalogue.
    #[test]
    fn rules_name_existing_alerts() {
        for r in RULES {
            for m in r.source.iter().chain(r.target) {
                let Some(names) = m
                    .strip_prefix("alertname=~\"")
                    .or(m.strip_prefix("alertname=\""))
                else {
                    continue;
                };
                for name in names.trim_end_matches('"').split('|') {
                    assert!(crate::alerts::find(name).is_some(), "{}: {name}", r.name);
                }
            }
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(
                RULES[i + 1..].iter().all(|o| o.name != r.name),
                "{}",
                r.name
            );
        }
    }
}
