//! Notifications delivered for real by Debian's Alertmanager from the
//! rendered alertmanager.yml and the runtime model's flags: email to a local
//! SMTP server (subject, plain-text part, external links, the password file
//! byte for byte), and ntfy's priority and tags by severity (the ntfy URL
//! points at a local sink that records what ntfy would receive).
//!
//! Needs prometheus-alertmanager (fails under CI=true when missing, else
//! skips loudly).

mod support;

use std::process::Command;
use std::time::Duration;

use configgen::model::Receiver;
use serde_json::{json, Value};
use support::alertmanager::{config_to, LiveAlertmanager};
use support::http;
use support::smtp::SmtpSink;
use support::stack::{wait_until, ALERTMANAGER};
use support::webhook::WebhookSink;

/// AUTH PLAIN answers (base64 of "\0lab\0hunter2" and of the same with a
/// trailing newline, as `echo hunter2 > file` writes it).
const PLAIN_OK: &str = "AGxhYgBodW50ZXIy";
const PLAIN_WITH_NEWLINE: &str = "AGxhYgBodW50ZXIyCg==";

fn receiver(v: Value) -> Receiver {
    serde_json::from_value(v).unwrap()
}

/// A started Alertmanager whose only receiver is email to `smtp`, with the
/// SMTP password in a file holding `password`.
fn mail_setup(smtp: &SmtpSink, password: &str) -> (LiveAlertmanager, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("smtp-password");
    std::fs::write(&file, password).unwrap();
    let sink = WebhookSink::start();
    let mut cfg = config_to(&sink);
    cfg.alerting.receivers = vec![receiver(json!({
        "type": "email", "name": "mail", "to": "me@example.org", "from": "lab@example.org",
        "smarthost": smtp.address(), "username": "lab", "password_file": file,
        "require_tls": false,
    }))];
    cfg.alerting.default_receivers = vec!["mail".into()];
    cfg.alerting.external_url = Some("http://monitor.lan".into());
    (LiveAlertmanager::start(&cfg, sink), secrets)
}

fn web_down() -> (Value, Value) {
    (
        json!({"alertname": "ServiceProbeFailed", "severity": "critical", "service": "web",
               "job": "blackbox_http", "instance": "http://nas/"}),
        json!({"summary": "Service web is down",
               "description": "The blackbox_http check of web (http://nas/) has failed for 1m."}),
    )
}

fn alertmanager_version() -> String {
    let out = Command::new(ALERTMANAGER)
        .arg("--version")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

#[test]
fn email_has_a_summary_subject_a_text_part_and_external_links() {
    if support::require_tool(ALERTMANAGER, "email_has_a_summary_subject").is_none() {
        return;
    }
    let smtp = SmtpSink::start(PLAIN_OK);
    let (am, _secrets) = mail_setup(&smtp, "hunter2");
    am.post_annotated(&[web_down()]);
    let log = wait_until(Duration::from_secs(20), || {
        let log = smtp.log();
        if log.messages.is_empty() {
            Err(format!("no mail yet: {log:?}"))
        } else {
            Ok(log)
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", am.log()));
    let mail = log.messages[0].replace("=\r\n", "");
    println!("{mail}");
    assert!(
        mail.contains("Subject: [CRITICAL] Service web is down\r\n"),
        "{mail}"
    );
    assert!(mail.contains("Content-Type: text/plain"), "{mail}");
    assert!(mail.contains("Content-Type: text/html"), "{mail}");
    assert!(mail.contains("has failed for 1m."), "{mail}");
    let port = am.url().rsplit(':').next().unwrap();
    assert!(
        mail.contains(&format!(
            "Silence or see all alerts: http://monitor.lan:{port}"
        )),
        "the links use alerting.external_url: {mail}"
    );
}

/// The warning of `configgen check` (secret_files) is about this: on
/// Alertmanager 0.25 the newline becomes part of the password and
/// authentication fails; the lost notification shows in
/// alertmanager_notifications_failed_total, which AlertmanagerNotificationsFailing watches.
#[test]
fn a_password_file_ending_with_a_newline_breaks_smtp_auth_on_0_25() {
    if support::require_tool(ALERTMANAGER, "a_password_file_ending_with_a_newline").is_none() {
        return;
    }
    let version = alertmanager_version();
    let smtp = SmtpSink::start(PLAIN_OK);
    let (am, secrets) = mail_setup(&smtp, "hunter2\n");
    let file = secrets.path().join("smtp-password");
    let cfg: configgen::model::Config = toml::from_str(&format!(
        "[[alerting.receivers]]\ntype = \"email\"\nname = \"m\"\nto = \"a@b\"\nfrom = \"a@b\"\n\
         smarthost = \"x:25\"\npassword_file = \"{}\"\n",
        file.display()
    ))
    .unwrap();
    assert_eq!(configgen::secret_files::check(&cfg).len(), 1);

    am.post_annotated(&[web_down()]);
    let metrics = format!("{}/metrics", am.url());
    let failed = wait_until(Duration::from_secs(30), || {
        let auth = smtp.log().auth_attempts;
        let body = http::get(&metrics)?.body;
        let failed = body
            .lines()
            .find(|l| {
                l.starts_with("alertmanager_notifications_failed_total{integration=\"email\"}")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if !auth.is_empty() && (failed >= 1.0 || !version.starts_with("0.25")) {
            Ok((auth, failed))
        } else {
            Err(format!(
                "auth attempts {auth:?}, failed notifications {failed}"
            ))
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", am.log()));
    println!(
        "alertmanager {version}: auth attempts {:?}, failed notifications {}",
        failed.0, failed.1
    );
    if version.starts_with("0.25") {
        assert!(failed
            .0
            .iter()
            .all(|(answer, ok)| answer == PLAIN_WITH_NEWLINE && !ok));
        assert!(smtp.log().messages.is_empty());
    }
}

/// ntfy receives critical, warning and info alerts with priorities 5, 4 and 3
/// and matching tags; the title template is the summary.
#[test]
fn ntfy_priority_and_tags_follow_the_severity() {
    if support::require_tool(ALERTMANAGER, "ntfy_priority_and_tags_follow_the_severity").is_none() {
        return;
    }
    let sink = WebhookSink::start();
    let mut cfg = config_to(&sink);
    cfg.alerting.receivers = vec![receiver(
        json!({"type": "ntfy", "name": "phone", "url": sink.url("/homelab")}),
    )];
    cfg.alerting.default_receivers = vec!["phone".into()];
    let am = LiveAlertmanager::start(&cfg, sink);
    let alert = |name: &str, severity: &str| {
        (
            json!({"alertname": name, "severity": severity}),
            json!({"summary": format!("{name} summary")}),
        )
    };
    am.post_annotated(&[
        alert("HostDiskAlmostFull", "critical"),
        alert("HostSystemdUnitFailed", "warning"),
        alert("HostHighLoadAverage", "info"),
    ]);
    let received = wait_until(Duration::from_secs(20), || {
        let r = am.sink.received();
        if r.len() >= 3 {
            Ok(r)
        } else {
            Err(format!(
                "{} notifications: {:?}",
                r.len(),
                r.iter()
                    .map(|r| (&r.path, &r.body["commonLabels"]))
                    .collect::<Vec<_>>()
            ))
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", am.log()));
    let mut seen = Vec::new();
    for r in &received {
        let url = url::Url::parse(&format!("http://x{}", r.path)).unwrap();
        assert_eq!(url.path(), "/homelab");
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        let alertname = r.body["commonLabels"]["alertname"]
            .as_str()
            .unwrap()
            .to_string();
        seen.push((alertname, q["p"].clone(), q["ta"].clone()));
    }
    seen.sort();
    let seen: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|(a, p, t)| (a.as_str(), p.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("HostDiskAlmostFull", "5", "rotating_light"),
            ("HostHighLoadAverage", "3", "information_source"),
            ("HostSystemdUnitFailed", "4", "warning"),
        ]
    );
}
