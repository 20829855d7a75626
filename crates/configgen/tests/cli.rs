//! The `configgen` binary end to end: render, check, schema, formats, stdin.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use configgen::load::{self, Format, Source};
use support::cli::{configgen, snapshot, stderr};
use support::{crate_dir, example};

fn render_to(config: &str, out: &std::path::Path, stdin: Option<&str>) {
    let result = configgen(
        &["render", "--config", config, "--out", out.to_str().unwrap()],
        stdin,
    );
    assert!(
        result.status.success(),
        "render {config} failed: {}",
        stderr(&result)
    );
}

/// The example as JSON, keeping only the keys the user wrote (no defaults).
fn example_as_json() -> serde_json::Value {
    let text = fs::read_to_string(example()).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn render_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let example = example();
    render_to(example.to_str().unwrap(), &a, None);
    render_to(example.to_str().unwrap(), &b, None);
    assert_eq!(snapshot(&a), snapshot(&b));
    assert_eq!(
        fs::metadata(&a).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // Rendering over an existing tree replaces it with identical bytes.
    let before = snapshot(&a);
    render_to(example.to_str().unwrap(), &a, None);
    assert_eq!(snapshot(&a), before);
}

#[test]
fn toml_yaml_json_and_stdin_give_the_same_config_and_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let json = example_as_json();
    let pretty = tmp.path().join("homelab.json");
    fs::write(&pretty, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let compact = serde_json::to_string(&json).unwrap();
    let yaml = crate_dir().join("tests/fixtures/homelab.yaml");

    let read = |path: &std::path::Path| load::load(&Source::read(path.to_str().unwrap()).unwrap());
    let from_toml = read(&example()).unwrap();
    assert_eq!(
        read(&yaml).unwrap(),
        from_toml,
        "YAML fixture differs from the TOML example"
    );
    assert_eq!(read(&pretty).unwrap(), from_toml);
    let stdin_like = Source::new("<stdin>", compact.clone(), Format::Json);
    assert_eq!(load::load(&stdin_like).unwrap(), from_toml);

    let outs: Vec<_> = ["toml", "yaml", "json", "stdin"]
        .iter()
        .map(|name| tmp.path().join(format!("out-{name}")))
        .collect();
    render_to(example().to_str().unwrap(), &outs[0], None);
    render_to(yaml.to_str().unwrap(), &outs[1], None);
    render_to(pretty.to_str().unwrap(), &outs[2], None);
    render_to("-", &outs[3], Some(&compact));
    let reference = snapshot(&outs[0]);
    for out in &outs[1..] {
        assert_eq!(snapshot(out), reference, "{}", out.display());
    }
}

#[test]
fn check_reports_ok_and_errors() {
    let example = example();
    let ok = configgen(&["check", "--config", example.to_str().unwrap()], None);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (7 services)"));

    let bad = configgen(
        &["check", "--config", "-"],
        Some(r#"{"host": {"name": "nas", "role": "agent"}}"#),
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stderr(&bad),
        "<stdin>:1:34: host.role: role = \"agent\" needs host.ship_to (where to send metrics, logs and traces)\nconfiggen: 1 error\n"
    );
}

#[test]
fn unreadable_or_unknown_files_are_clear_errors() {
    let missing = configgen(&["check", "--config", "no/such/file.toml"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).starts_with("no/such/file.toml: cannot read: "));

    let unknown = configgen(&["check", "--config", "Cargo.lock"], None);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).starts_with("Cargo.lock: unknown config format"));

    let tmp = tempfile::tempdir().unwrap();
    let latin1 = tmp.path().join("latin1.toml");
    fs::write(&latin1, b"[host]\nname = \"caf\xe9\"\n").unwrap();
    let out = configgen(&["check", "--config", latin1.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("{}:2:12: not valid UTF-8", latin1.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn render_refuses_dangerous_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, "keep me").unwrap();
    let example = example();
    let example = example.to_str().unwrap();
    let out = configgen(
        &[
            "render",
            "--config",
            example,
            "--out",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");

    let foreign = tmp.path().join("project");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("Cargo.toml"), "[package]").unwrap();
    let before = snapshot(tmp.path());
    let out = configgen(
        &[
            "render",
            "--config",
            example,
            "--out",
            foreign.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("configgen did not write it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(tmp.path()), before);

    for root in ["/", "/tmp/.."] {
        let out = configgen(&["render", "--config", example, "--out", root], None);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("refusing to replace"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn schema_is_json_naming_every_top_level_key() {
    let out = configgen(&["schema"], None);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    let defaults = serde_json::to_value(configgen::model::Config::default()).unwrap();
    for key in defaults.as_object().unwrap().keys() {
        assert!(properties.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(
        configgen(&["schema"], None).stdout,
        out.stdout,
        "schema output varies"
    );
}

#[test]
fn help_describes_the_commands() {
    let out = configgen(&["--help"], None);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["render", "check", "schema"] {
        assert!(help.contains(word), "{help}");
    }
    let usage = configgen(&["render"], None);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("--config <FILE>"));
}

/// `check` on the monitoring host warns about an SMTP password file ending
/// with a newline (Alertmanager 0.25 sends it as part of the password), at the
/// field's line, and still succeeds; `render` never reads the file.
#[test]
fn check_warns_about_a_password_file_with_a_trailing_newline() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("smtp-password");
    fs::write(&secret, "hunter2\n").unwrap();
    let config = tmp.path().join("mail.toml");
    fs::write(
        &config,
        format!(
            "alloy.container_sockets = false\n\
             [[alerting.receivers]]\ntype = \"email\"\nname = \"mail\"\nto = \"me@example.org\"\n\
             from = \"lab@example.org\"\nsmarthost = \"smtp.example.org:587\"\nusername = \"lab\"\n\
             password_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let result = configgen(&["check", "--config", config], None);
    assert!(result.status.success(), "{}", stderr(&result));
    let err = stderr(&result);
    assert!(
        err.contains(&format!(
            "{config}:9:17: alerting.receivers[0].password_file: warning: "
        )),
        "{err}"
    );
    assert!(err.contains("a trailing newline"), "{err}");

    fs::write(&secret, "hunter2").unwrap();
    let result = configgen(&["check", "--config", config], None);
    assert!(result.status.success());
    assert_eq!(stderr(&result), "");

    fs::remove_file(&secret).unwrap();
    render_to(config, &tmp.path().join("out"), None);
}

/// `check` warns, at the socket's line, about a container socket that is
/// missing, that only root's group opens, or whose group has no name (systemd
/// would not start the unit); a socket with a named group passes. `render`
/// gives Prometheus that socket's group by number.
#[test]
fn check_warns_about_container_sockets_no_daemon_can_open() {
    use std::os::unix::fs::chown;
    if !std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
    {
        eprintln!(
            "SKIPPED check_warns_about_container_sockets_no_daemon_can_open: needs root to chown"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("podman.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let config = tmp.path().join("sockets.toml");
    fs::write(
        &config,
        format!(
            "[alloy]\ncontainer_sockets = [\n  \"{}\",\n  \"/nonexistent/docker.sock\",\n]\n",
            socket.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let check = || {
        let result = configgen(&["check", "--config", config], None);
        assert!(result.status.success(), "{}", stderr(&result));
        stderr(&result)
    };
    let named: u32 = fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("adm:x:")?.split(':').next()?.parse().ok())
        .expect("Debian's adm group");
    let unnamed = 4242;
    assert!(!fs::read_to_string("/etc/group")
        .unwrap()
        .contains(&format!(":{unnamed}:")));

    let err = check();
    assert!(
        err.contains(&format!(
            "{config}:4:3: alloy.container_sockets[1]: warning: /nonexistent/docker.sock: No such file"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{config}:3:3: alloy.container_sockets[0]: warning: {} is owned by group root",
            socket.display()
        )),
        "{err}"
    );

    chown(&socket, None, Some(unnamed)).unwrap();
    let err = check();
    assert!(
        err.contains("is owned by group 4242, which has no name"),
        "{err}"
    );

    chown(&socket, None, Some(named)).unwrap();
    let err = check();
    assert!(!err.contains("container_sockets[0]"), "{err}");
    let out = tmp.path().join("out");
    render_to(config, &out, None);
    let unit =
        fs::read_to_string(out.join("systemd/prometheus.service.d/homelab-observability.conf"))
            .unwrap();
    assert!(
        unit.contains(&format!("\nSupplementaryGroups={named}\n")),
        "{unit}"
    );
}
