//! Alertmanager gossips on 0.0.0.0:9094 (TCP and UDP) unless told otherwise.
//! Real Alertmanager, run with the flags the NixOS module adds (taken from the
//! evaluation of the one-switch case) after those nixpkgs' module always
//! passes, must have no socket but its web listener on 127.0.0.1. A control
//! run with a cluster address shows the test sees gossip sockets.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sockets (`ss` lines) of an Alertmanager started with `flags`, once
/// its web listener answers.
fn sockets(dir: &Path, name: &str, flags: &[String]) -> (u16, Vec<String>) {
    let port = common::free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    // nixpkgs' alertmanager.nix: extraFlags first, then its own flags.
    let am = Alertmanager(
        Command::new("prometheus-alertmanager")
            .args(flags)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.path={}", dir.join(name).display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    while !Command::new("curl")
        .args(["-sf", "-o", "/dev/null", &ready])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "alertmanager ({name}) never got ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new("ss").arg("-Htulnp").output().unwrap();
    let pid = format!("pid={},", am.0.id());
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&pid))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (port, lines)
}

#[test]
fn alertmanager_with_the_modules_flags_listens_on_loopback_only() {
    let Some(cases) = common::evaluate_cases("alertmanager_listeners") else {
        return;
    };
    let test = "alertmanager listener test";
    if !(common::tool(test, "prometheus-alertmanager")
        && common::tool(test, "curl")
        && common::tool(test, "ss"))
    {
        return;
    }
    let flags: Vec<String> =
        serde_json::from_value(cases["one-switch-server"]["alertmanagerFlags"].clone())
            .expect("the one-switch case gives alertmanagerFlags");
    let dir = tempfile::tempdir().unwrap();

    let (port, module) = sockets(dir.path(), "module", &flags);
    println!("with {flags:?}:\n  {}", module.join("\n  "));
    assert_eq!(module.len(), 1, "only the web listener: {module:#?}");
    assert!(
        module[0].starts_with("tcp LISTEN") && module[0].contains(&format!(" 127.0.0.1:{port} ")),
        "{module:#?}"
    );

    let gossip = common::free_port();
    let control = [format!("--cluster.listen-address=127.0.0.1:{gossip}")];
    let (_, clustered) = sockets(dir.path(), "control", &control);
    println!("with {control:?}:\n  {}", clustered.join("\n  "));
    for proto in ["tcp", "udp"] {
        assert!(
            clustered
                .iter()
                .any(|l| l.starts_with(proto) && l.contains(&format!("127.0.0.1:{gossip} "))),
            "the control run shows a {proto} gossip socket: {clustered:#?}"
        );
    }
}
