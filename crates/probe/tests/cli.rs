//! The probe's command line and its errors (no eBPF needed, except the privilege test).

mod common;

use std::process::Command;

use common::*;

#[test]
fn help_explains_flags_metrics_and_privileges() {
    let out = Command::new(PROBE).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--watch-port",
        "--watch-client-port",
        "--watch-unit",
        "--watch-container",
        "--metrics-listen",
        "--config",
        "http_server_request_duration_seconds",
        "http_client_request_duration_seconds",
        "CAP_BPF",
        "[[watch]]",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn config_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe.toml");
    std::fs::write(
        &file,
        "metrics_listen = \"127.0.0.1:9464\"\n[[watch]]\nservice = \"x\"\nportz = [80]\n",
    )
    .unwrap();
    let out = Command::new(PROBE)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let expected = format!(
        "{}:4:1: watch[0].portz: unknown field `portz`",
        file.display()
    );
    assert!(err.contains(&expected), "{err}");

    std::fs::write(&file, "[[watch]]\nports = [80]\nroutes = [\"no-slash\"]\n").unwrap();
    let out = Command::new(PROBE)
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(":1:1: watch[0].routes[0]:"), "{err}");
}

#[test]
fn nothing_to_watch_is_an_error() {
    let out = Command::new(PROBE).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to watch"));
}

#[test]
fn missing_privileges_are_named() {
    if !live_or_skip("privilege test", &["setpriv"]) {
        return;
    }
    let port = free_port().to_string();
    let metrics = format!("127.0.0.1:{}", free_port());
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(PROBE)
        .args(["--watch-port", &port, "--metrics-listen", &metrics])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
}

#[test]
fn flag_errors_name_the_flag() {
    let out = Command::new(PROBE)
        .args(["--watch-port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--watch-port: port 0 is not a valid port"),
        "{err}"
    );
}

#[test]
fn metrics_listen_accepts_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe.toml");
    // No watch: the probe only serves its own metrics, without eBPF.
    std::fs::write(&file, "watch = []\n").unwrap();
    let port = free_port();
    let mut probe = Proc(
        Command::new(PROBE)
            .arg("--config")
            .arg(&file)
            .args(["--metrics-listen", &format!("localhost:{port}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let resolved: Vec<std::net::SocketAddr> =
        std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port))
            .unwrap()
            .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let served = loop {
        if resolved
            .iter()
            .any(|a| std::net::TcpStream::connect(a).is_ok())
        {
            break true;
        }
        if std::time::Instant::now() > deadline || probe.0.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(served, "no metrics endpoint on localhost:{port}");
    assert!(probe.terminate().unwrap().success());
}
