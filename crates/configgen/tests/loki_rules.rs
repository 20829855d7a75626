//! The Loki ruler's log alerts (loki/rules/fake/logs.yaml). Loki cannot run
//! here, so each rule is checked in parts: its LogQL against the checker,
//! its stream selector against the labels Alloy puts on journal lines, and
//! its line filters, as Loki applies them, against real journal lines of the
//! incident (it fires) and of everyday noise (it stays silent).

mod support;

use config_checkers::logql::{self, Kind, LineFilter};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

/// A Prometheus-style alerting rule, the format the Loki ruler reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

fn rules() -> Vec<Rule> {
    let tree = support::render_file(&support::example());
    let text = tree
        .get("loki/rules/fake/logs.yaml")
        .expect("log rules rendered with Loki and Alertmanager on");
    let file: File = serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(file.groups.len(), 1);
    assert_eq!(file.groups[0].name, "logs");
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

fn rule(name: &str) -> Rule {
    rules()
        .into_iter()
        .find(|r| r.alert == name)
        .unwrap_or_else(|| panic!("no rule {name}"))
}

/// Whether the rule fires on these lines, all within its 10-minute window.
fn fires(rule: &Rule, lines: &[&str]) -> bool {
    let filters: Vec<LineFilter> = logql::line_filters(&rule.expr).unwrap();
    let count = lines
        .iter()
        .filter(|l| filters.iter().all(|f| f.keeps(l)))
        .count();
    let (_, threshold) = rule.expr.trim().rsplit_once("> ").unwrap();
    count as f64 > threshold.trim().parse::<f64>().unwrap()
}

#[test]
fn rules_are_valid_logql_on_the_journal_stream_with_severity_and_text() {
    let rules = rules();
    let names: Vec<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(names, ["LogOomKill", "LogSegfault", "LogSshLoginFailures"]);
    let alloy = support::render_file(&support::example());
    let logs = alloy.get("alloy/logs.alloy").unwrap();
    for r in &rules {
        assert_eq!(
            logql::check(&r.expr),
            Ok(Kind::Metric),
            "{}: {}",
            r.alert,
            r.expr
        );
        assert!(r.expr.contains(r#"{job="systemd-journal""#), "{}", r.expr);
        assert!(r.for_.is_none(), "a log count needs no `for`");
        assert!(["critical", "warning", "info"].contains(&r.labels["severity"].as_str()));
        assert!(r.annotations["summary"].contains("{{ $labels.host }}"));
        assert!(!r.annotations["description"].is_empty());
    }
    // The stream and the labels the rules read are the ones Alloy writes.
    assert!(logs.contains(r#"job = "systemd-journal""#), "{logs}");
    assert!(logs.contains(r#"target_label = "unit""#));
    assert!(logs.contains("host = "));
}

#[test]
fn oom_kill_fires_on_the_kernel_line_and_not_on_oom_daemons() {
    let r = rule("LogOomKill");
    for incident in [
        "Out of memory: Killed process 2514 (java) total-vm:4912344kB, anon-rss:3812004kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:7900kB oom_score_adj:0",
        "Memory cgroup out of memory: Killed process 1822 (node) total-vm:1203340kB, anon-rss:511232kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1400kB oom_score_adj:0",
        "Out of memory: Kill process 1234 (mysqld) score 912 or sacrifice child",
    ] {
        assert!(fires(&r, &[incident]), "{incident}");
    }
    assert!(!fires(
        &r,
        &[
            "earlyoom v1.7: mem avail: 3012 of 7856 MiB (38.34%), swap free: 0 of 0 MiB ( 0.00%)",
            "systemd-oomd: Considered 12 cgroups for killing, top candidates were:",
            "Started OOM killer test suite.",
            "level=warn msg=\"query would run out of memory, aborted\"",
        ]
    ));
}

#[test]
fn segfault_fires_on_the_kernel_report_and_not_on_mentions() {
    let r = rule("LogSegfault");
    assert!(fires(
        &r,
        &["python3[4121]: segfault at 0 ip 00007f3a2c1d4e10 sp 00007ffd6f0b1a28 error 4 in libc.so.6[7f3a2c000000+195000] likely on CPU 1 (core 1, socket 0)"]
    ));
    assert!(fires(
        &r,
        &["jellyfin[880]: segfault at 7f12a0000010 ip 00007f12b3c4d5e6 sp 00007f12a8ff1c40 error 6 in libSkiaSharp.so[7f12b3800000+600000]"]
    ));
    assert!(!fires(
        &r,
        &[
            "pytest: tests/test_native.py::test_segfault_handler PASSED",
            "apt: Unpacking foo (1.2) ... fixes a segfault at startup",
            "kernel: traps: nginx[902] trap invalid opcode ip:55d1 sp:7ffc error:0",
        ]
    ));
}

#[test]
fn ssh_failures_fire_on_guessing_and_not_on_typos_or_logins() {
    let r = rule("LogSshLoginFailures");
    // The unit matcher covers Debian, NixOS and socket-activated sshd, not sshguard.
    let unit_re = regex::Regex::new(r#"unit=~"([^"]+)""#)
        .unwrap()
        .captures(&r.expr)
        .unwrap()[1]
        .replace(r"\\", r"\");
    let unit = regex::Regex::new(&format!("^(?:{unit_re})$")).unwrap();
    for u in [
        "ssh.service",
        "sshd.service",
        "sshd@3-192.168.1.2:22-203.0.113.7:51234.service",
    ] {
        assert!(unit.is_match(u), "{u}");
    }
    assert!(!unit.is_match("sshguard.service"));

    let mut guessing = Vec::new();
    for port in 0..15 {
        guessing.push(format!(
            "Invalid user admin{port} from 203.0.113.7 port {}",
            50000 + port
        ));
        guessing.push(format!(
            "Failed password for invalid user admin{port} from 203.0.113.7 port {} ssh2",
            50000 + port
        ));
    }
    let guessing: Vec<&str> = guessing.iter().map(String::as_str).collect();
    assert!(fires(&r, &guessing));

    let everyday = [
        "Failed password for alice from 192.168.1.10 port 51000 ssh2",
        "Failed password for alice from 192.168.1.10 port 51000 ssh2",
        "Accepted password for alice from 192.168.1.10 port 51000 ssh2",
        "Accepted publickey for alice from 192.168.1.10 port 51002 ssh2: ED25519 SHA256:Zq1m",
        "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        "Connection closed by 192.168.1.10 port 51004 [preauth]",
        "Disconnected from user alice 192.168.1.10 port 51000",
        "error: kex_exchange_identification: Connection closed by remote host",
    ];
    assert!(!fires(&r, &everyday));
    // The typos count, but stay under the threshold.
    let filters = logql::line_filters(&r.expr).unwrap();
    let counted = everyday
        .iter()
        .filter(|l| filters.iter().all(|f| f.keeps(l)))
        .count();
    assert_eq!(counted, 2);
}
