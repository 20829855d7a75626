//! The rendered alertmanager.yml run by the real Alertmanager: each
//! inhibition rule of `configgen::inhibitions` silences what it should and
//! nothing more, and grouping sends one message per incident. Alerts are
//! posted to /api/v2/alerts; a webhook sink records the notifications.
//!
//! Each test posts a cause (source), what it causes (targets) and a control
//! (an alert the rule must leave alone: another object, or an unrelated
//! alert), waits until the cause and the control are notified, lets
//! Alertmanager settle for a few group intervals, and checks that no target
//! ever reached the receiver.
//!
//! Needs prometheus-alertmanager (fails under CI=true when missing, else
//! skips loudly).

mod support;

use std::time::Duration;

use configgen::inhibitions;
use serde_json::{json, Value};
use support::alertmanager::{config_to, notified_labels, LiveAlertmanager};
use support::stack::ALERTMANAGER;
use support::webhook::WebhookSink;

/// Longer than group_wait (1s) plus two group intervals (2s) of the test config.
const SETTLE: Duration = Duration::from_secs(6);

fn start(test: &str) -> Option<LiveAlertmanager> {
    support::require_tool(ALERTMANAGER, test)?;
    let sink = WebhookSink::start();
    let cfg = config_to(&sink);
    Some(LiveAlertmanager::start(&cfg, sink))
}

/// Posts `source`, `targets` and `controls` together; asserts that the source
/// and the controls are notified and no target ever is.
fn assert_inhibits(rule: &str, source: Value, targets: &[Value], controls: &[Value]) {
    assert!(inhibitions::find(rule).is_some(), "no rule {rule}");
    let Some(am) = start(rule) else { return };
    let mut all = vec![source.clone()];
    all.extend_from_slice(targets);
    all.extend_from_slice(controls);
    am.post(&all);
    let mut expected = vec![source];
    expected.extend_from_slice(controls);
    let received = am.notifications_after(&expected, SETTLE);
    let notified = notified_labels(&received);
    for t in targets {
        assert!(
            !notified.contains(t),
            "{rule}: {t} was notified although inhibited; notifications: {notified:?}"
        );
    }
    println!(
        "{rule}: {} notifications carrying {} alerts; {} inhibited",
        received.len(),
        notified.len(),
        targets.len()
    );
}

fn probe(alertname: &str, severity: &str, job: &str, instance: &str, service: &str) -> Value {
    json!({"alertname": alertname, "severity": severity, "job": job,
           "instance": instance, "service": service, "host": "server"})
}

#[test]
fn gateway_down_silences_what_is_behind_it() {
    assert_inhibits(
        "gateway-down",
        json!({"alertname": "GatewayDown", "severity": "critical", "job": "network",
               "instance": "192.168.1.1", "role": "gateway", "host": "server"}),
        &[
            probe(
                "ServiceProbeFailed",
                "critical",
                "blackbox_http",
                "http://nas:8096/",
                "jellyfin",
            ),
            probe(
                "ServiceProbeFailed",
                "critical",
                "blackbox_icmp",
                "nas",
                "jellyfin",
            ),
            probe(
                "ServiceProbeSlow",
                "warning",
                "blackbox_http",
                "http://pi/",
                "pihole",
            ),
            json!({"alertname": "AgentNotReporting", "severity": "critical", "host": "pi", "runs_on": "pi"}),
            json!({"alertname": "TargetDown", "severity": "warning", "job": "router_exporter",
                   "instance": "192.168.1.1:9100", "host": "server"}),
            json!({"alertname": "AlertmanagerNotificationsFailing", "severity": "critical",
                   "integration": "email", "host": "server"}),
        ],
        // The monitoring host's own disk is not behind the router.
        &[
            json!({"alertname": "HostDiskAlmostFull", "severity": "critical", "job": "node",
                 "instance": "server", "mountpoint": "/", "host": "server"}),
        ],
    );
}

#[test]
fn internet_down_silences_checks_that_need_it() {
    assert_inhibits(
        "internet-down",
        json!({"alertname": "InternetDown", "severity": "critical", "job": "network", "host": "server"}),
        &[{
            let mut a = probe(
                "ServiceProbeFailed",
                "critical",
                "blackbox_http",
                "https://blog.example.org/",
                "blog",
            );
            a["needs"] = json!("internet");
            a
        }],
        // A LAN service failing at the same time is its own problem.
        &[probe(
            "ServiceProbeFailed",
            "critical",
            "blackbox_http",
            "http://nas:8096/",
            "jellyfin",
        )],
    );
}

#[test]
fn internet_down_silences_failing_delivery() {
    assert_inhibits(
        "internet-down-delivery",
        json!({"alertname": "InternetDown", "severity": "critical", "job": "network", "host": "server"}),
        &[
            json!({"alertname": "AlertmanagerNotificationsFailing", "severity": "critical",
                 "integration": "webhook", "host": "server"}),
        ],
        &[
            json!({"alertname": "PrometheusRuleEvaluationFailures", "severity": "critical",
                 "job": "prometheus", "instance": "server", "host": "server"}),
        ],
    );
}

#[test]
fn host_down_silences_its_own_alerts() {
    assert_inhibits(
        "host-down",
        json!({"alertname": "AgentNotReporting", "severity": "critical", "host": "pi", "runs_on": "pi"}),
        &[
            json!({"alertname": "HostSystemdUnitFailed", "severity": "warning", "job": "node",
                 "instance": "pi", "name": "alloy.service", "host": "pi"}),
        ],
        &[
            json!({"alertname": "HostSystemdUnitFailed", "severity": "warning", "job": "node",
                 "instance": "nuc", "name": "alloy.service", "host": "nuc"}),
        ],
    );
}

#[test]
fn host_down_silences_the_services_it_runs() {
    assert_inhibits(
        "host-down-services",
        json!({"alertname": "AgentNotReporting", "severity": "critical", "host": "nas", "runs_on": "nas"}),
        &[{
            let mut a = probe(
                "ServiceProbeFailed",
                "critical",
                "blackbox_http",
                "http://nas:8096/",
                "jellyfin",
            );
            a["runs_on"] = json!("nas");
            a
        }],
        &[{
            let mut a = probe(
                "ServiceProbeFailed",
                "critical",
                "blackbox_http",
                "http://pi/",
                "pihole",
            );
            a["runs_on"] = json!("pi");
            a
        }],
    );
}

#[test]
fn probe_failure_silences_the_bad_status_of_the_same_check() {
    assert_inhibits(
        "probe-failed-over-status",
        probe(
            "ServiceProbeFailed",
            "critical",
            "blackbox_http",
            "http://nas:8096/",
            "jellyfin",
        ),
        &[probe(
            "ServiceHttpStatusUnexpected",
            "warning",
            "blackbox_http",
            "http://nas:8096/",
            "jellyfin",
        )],
        &[probe(
            "ServiceHttpStatusUnexpected",
            "warning",
            "blackbox_http",
            "http://pi/",
            "pihole",
        )],
    );
}

#[test]
fn tls_about_to_expire_silences_expiring_soon_of_the_same_certificate() {
    assert_inhibits(
        "tls-critical-over-warning",
        probe(
            "TlsCertificateAboutToExpire",
            "critical",
            "blackbox_http",
            "https://vault/",
            "vault",
        ),
        &[probe(
            "TlsCertificateExpiringSoon",
            "warning",
            "blackbox_http",
            "https://vault/",
            "vault",
        )],
        &[probe(
            "TlsCertificateExpiringSoon",
            "warning",
            "blackbox_http",
            "https://git/",
            "git",
        )],
    );
}

fn filesystem(alertname: &str, severity: &str, mountpoint: &str) -> Value {
    json!({"alertname": alertname, "severity": severity, "job": "node", "instance": "server",
           "mountpoint": mountpoint, "device": "/dev/sda1", "fstype": "ext4", "host": "server"})
}

#[test]
fn disk_almost_full_silences_filling_up_of_the_same_filesystem() {
    assert_inhibits(
        "disk-critical-over-warning",
        filesystem("HostDiskAlmostFull", "critical", "/"),
        &[filesystem("HostDiskFillingUp", "warning", "/")],
        &[filesystem("HostDiskFillingUp", "warning", "/srv")],
    );
}

#[test]
fn inodes_almost_full_silences_filling_up_of_the_same_filesystem() {
    assert_inhibits(
        "inodes-critical-over-warning",
        filesystem("HostInodesAlmostFull", "critical", "/"),
        &[filesystem("HostInodesFillingUp", "warning", "/")],
        &[filesystem("HostInodesFillingUp", "warning", "/srv")],
    );
}

#[test]
fn raid_degraded_silences_the_failed_disk_of_the_same_array() {
    let md = |alertname: &str, severity: &str, device: &str| {
        json!({"alertname": alertname, "severity": severity, "job": "node", "instance": "server",
               "device": device, "host": "server"})
    };
    assert_inhibits(
        "raid-critical-over-warning",
        md("HostRaidDegraded", "critical", "md0"),
        &[md("HostRaidDiskFailed", "warning", "md0")],
        &[md("HostRaidDiskFailed", "warning", "md1")],
    );
}

#[test]
fn every_rule_has_its_live_test() {
    let source = include_str!("inhibitions_live.rs");
    for r in inhibitions::RULES {
        assert!(
            source.contains(&format!("\n        \"{}\",\n", r.name)),
            "inhibition rule {} has no live test in this file",
            r.name
        );
    }
}

/// One outage of a service probed three ways (HTTP, TCP, ICMP) is one message
/// with three alerts, not three messages.
#[test]
fn one_service_outage_is_one_notification() {
    let Some(am) = start("one_service_outage_is_one_notification") else {
        return;
    };
    let alerts = [
        probe(
            "ServiceProbeFailed",
            "critical",
            "blackbox_http",
            "http://nas:8096/",
            "jellyfin",
        ),
        probe(
            "ServiceProbeFailed",
            "critical",
            "blackbox_tcp",
            "nas:8096",
            "jellyfin",
        ),
        probe(
            "ServiceProbeFailed",
            "critical",
            "blackbox_icmp",
            "nas",
            "jellyfin",
        ),
    ];
    am.post(&alerts);
    let received = am.notifications_after(&alerts, SETTLE);
    assert_eq!(
        received.len(),
        1,
        "one notification expected: {:?}",
        notified_labels(&received)
    );
    assert_eq!(received[0].body["alerts"].as_array().unwrap().len(), 3);
    assert_eq!(
        received[0].body["groupLabels"],
        json!({"alertname": "ServiceProbeFailed"})
    );
}
