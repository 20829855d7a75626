//! compose.yaml: accepted by real Compose implementations, safe by default,
//! and following every config key it carries.
//!
//! Validation runs `config` of three implementations, none of which needs a
//! container engine: Docker Compose v2 (`docker-compose-v2`, what `docker
//! compose` runs; it checks the file against the Compose Specification's JSON
//! schema and normalizes it), Debian bookworm's docker-compose 1.29 (its own
//! copy of that schema) and podman-compose (`--dry-run`). No image can be
//! pulled on this machine, so no container is started: what the images do
//! with the file is not tested here. scripts/setup-debian installs the three;
//! a missing one skips loudly, or fails under CI=true.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use configgen::model::Config;
use configgen::plan::Plan;
use configgen::render::compose::{volume_name, PATH, VOLUME_INIT};
use configgen::runtime::{self, release};
use serde_yaml_ng::Value;

fn compose_of(cfg: &Config) -> String {
    support::render(cfg)
        .get(PATH)
        .expect("compose.yaml rendered")
        .to_string()
}

fn parsed(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("compose.yaml: {e}\n{text}"))
}

fn services(doc: &Value) -> Vec<(&str, &Value)> {
    doc["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap(), v))
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn example_config() -> Config {
    support::parse(&std::fs::read_to_string(support::example()).unwrap())
}

/// Runs `program args...` in `dir`; returns stdout, panicking with stderr
/// and the file when it fails.
fn run_in(dir: &Path, program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {} rejected compose.yaml:\n{}\n--- file ---\n{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join(PATH)).unwrap_or_default()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// How the implementations read the file.
#[derive(Default)]
struct Readings {
    /// Docker Compose v2's normalized model. Being a Compose file itself, it
    /// writes a literal `$` as `$$`.
    v2: Option<serde_json::Value>,
    /// podman-compose's merged file, values as the containers get them.
    podman: Option<Value>,
    ran: usize,
}

/// Validates with every implementation found.
fn validate(text: &str, test: &str) -> Readings {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(PATH), text).unwrap();
    let mut ran = 0;
    let mut readings = Readings::default();
    if let Some(v2) = support::require_tool("docker-compose-v2", test) {
        let json = run_in(dir.path(), &v2, &["-f", PATH, "config", "--format", "json"]);
        readings.v2 = Some(serde_json::from_str(&json).expect("compose v2 prints JSON"));
        ran += 1;
    }
    if let Some(v1) = support::require_tool("docker-compose", test) {
        run_in(dir.path(), &v1, &["-f", PATH, "config", "-q"]);
        ran += 1;
    }
    if let Some(podman) = support::require_tool("podman-compose", test) {
        let merged = run_in(dir.path(), &podman, &["--dry-run", "-f", PATH, "config"]);
        // podman-compose reads YAML 1.1: every user must still be the string
        // that was written.
        let theirs = parsed(&merged);
        let ours = parsed(text);
        for (name, s) in services(&ours) {
            assert_eq!(
                theirs["services"][name]["user"], s["user"],
                "podman-compose read {name}'s user differently"
            );
        }
        readings.podman = Some(theirs);
        ran += 1;
    }
    readings.ran = ran;
    readings
}

#[test]
fn example_compose_passes_every_compose_implementation() {
    let text = compose_of(&example_config());
    let readings = validate(&text, "example_compose_passes_every_compose_implementation");
    eprintln!("compose.yaml checked by {} implementations", readings.ran);
    let Some(v2) = readings.v2 else { return };
    // Docker Compose v2's reading of the file, not ours.
    let grafana = &v2["services"]["grafana"];
    assert_eq!(grafana["user"], "472:0");
    assert_eq!(grafana["read_only"], true);
    assert_eq!(v2["services"]["prometheus"]["mem_limit"], "1073741824");
    for (name, s) in v2["services"].as_object().unwrap() {
        assert!(s.get("ports").is_none(), "{name} publishes ports");
        for m in s["volumes"].as_array().into_iter().flatten() {
            if m["type"] == "bind" {
                assert_eq!(m["read_only"], true, "{name}: {m}");
            }
        }
    }
}

#[test]
fn agent_compose_passes_every_compose_implementation() {
    let cfg = support::parse(
        &std::fs::read_to_string(support::crate_dir().join("tests/fixtures/agent.toml")).unwrap(),
    );
    let text = compose_of(&cfg);
    let doc = parsed(&text);
    assert!(doc["services"].get(VOLUME_INIT).is_none());
    assert!(doc["services"].get("prometheus").is_none());
    validate(&text, "agent_compose_passes_every_compose_implementation");
}

/// A Docker socket and a rootless Podman user's, each owned by its group:
/// Prometheus and Alloy mount both at the one path their configs name, and
/// join both groups by number (nothing is added to the images' users).
#[test]
fn container_sockets_are_mounted_with_their_groups() {
    let test = "container_sockets_are_mounted_with_their_groups";
    let (docker, podman) = ("/var/run/docker.sock", "/run/user/1001/podman/podman.sock");
    let cfg = support::parse(&format!(
        "alloy.container_sockets = [\"{docker}\", \"{podman}\"]"
    ));
    let groups = [(docker.to_string(), 998), (podman.to_string(), 1001)];
    let tree =
        configgen::render::render_with_socket_groups(&cfg, groups.into_iter().collect()).unwrap();
    let text = tree.get(PATH).unwrap();
    let prometheus_yml = tree.get("prometheus/prometheus.yml").unwrap();
    let doc = parsed(text);
    for name in ["prometheus", "alloy"] {
        let s = &doc["services"][name];
        assert_eq!(strings(&s["group_add"]), ["998", "1001"], "{name}");
        for host in [docker, podman] {
            let inside = configgen::plan::containers::in_daemon(host);
            let mount = s["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|m| m["source"].as_str() == Some(host))
                .unwrap_or_else(|| panic!("{name} mounts {host}"));
            assert_eq!(mount["target"].as_str(), Some(inside.as_str()));
            assert_eq!(mount["read_only"].as_bool(), Some(true));
            assert!(prometheus_yml.contains(&format!("unix://{inside}")));
        }
        assert_eq!(s["privileged"], Value::Null, "{name}");
        assert!(!strings(&s["cap_add"]).contains(&"DAC_OVERRIDE"), "{name}");
    }
    let readings = validate(text, test);
    if let Some(v2) = readings.v2 {
        let groups = &v2["services"]["prometheus"]["group_add"];
        assert_eq!(groups, &serde_json::json!(["998", "1001"]), "{v2}");
    }
    if let Some(podman) = readings.podman {
        assert_eq!(
            strings(&podman["services"]["alloy"]["group_add"]),
            ["998", "1001"]
        );
    }
}

#[test]
fn a_dollar_in_a_path_reaches_the_daemon_unchanged() {
    let cfg = support::parse("[prometheus]\ndata_dir = \"/srv/$prom\"\n");
    let readings = validate(
        &compose_of(&cfg),
        "a_dollar_in_a_path_reaches_the_daemon_unchanged",
    );
    if let Some(podman) = readings.podman {
        let command = strings(&podman["services"]["prometheus"]["command"]);
        assert!(
            command.contains(&"--storage.tsdb.path=/srv/$prom"),
            "{command:?}"
        );
    }
    if let Some(v2) = readings.v2 {
        let p = &v2["services"]["prometheus"];
        assert!(
            p["command"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--storage.tsdb.path=/srv/$$prom"),
            "{p}"
        );
    }
}

#[test]
fn example_compose_is_safe_by_default() {
    let cfg = example_config();
    let plan = Plan::new(&cfg);
    let daemons = runtime::daemons(&plan);
    let text = compose_of(&cfg);
    let doc = parsed(&text);
    let config_dir = cfg.deploy.config_dir.trim_end_matches('/');
    let pins = [
        release::PROMETHEUS,
        release::ALERTMANAGER,
        release::NODE_EXPORTER,
        release::BLACKBOX_EXPORTER,
        release::CADVISOR,
        release::LOKI,
        release::ALLOY,
        release::TEMPO,
        release::GRAFANA,
    ]
    .map(|i| i.reference());

    assert!(!text.contains("privileged"), "{text}");
    assert!(!text.contains("ports:"), "{text}");
    assert_eq!(
        services(&doc).len(),
        daemons.len() + 1,
        "daemons plus {VOLUME_INIT}"
    );
    for (name, s) in services(&doc) {
        assert_eq!(strings(&s["cap_drop"]), ["ALL"], "{name}");
        assert_eq!(
            strings(&s["security_opt"]),
            ["no-new-privileges:true"],
            "{name}"
        );
        assert_eq!(s["read_only"], true, "{name}");
        assert!(
            pins.contains(&s["image"].as_str().unwrap().to_string()),
            "{name}"
        );
        for m in s["volumes"].as_sequence().into_iter().flatten() {
            if m["type"] == "bind" {
                assert_eq!(m["read_only"], true, "{name}: {m:?}");
            }
        }
    }

    let init = &doc["services"][VOLUME_INIT];
    let script = strings(&init["command"]).join(" ");
    for d in &daemons {
        let s = &doc["services"][d.name];
        assert_eq!(s["image"].as_str(), Some(d.image.reference().as_str()));
        assert_eq!(s["network_mode"], "host", "{}", d.name);
        for l in &d.listeners {
            assert_eq!(l.address, "127.0.0.1", "{} {}", d.name, l.purpose);
        }
        let command = strings(&s["command"]);
        assert_eq!(command, d.container_args(), "{}", d.name);
        let flags: Vec<&str> = command
            .iter()
            .filter_map(|a| a.split_once('=').map(|(name, _)| name))
            .collect();
        for (i, f) in flags.iter().enumerate() {
            assert!(!flags[i + 1..].contains(f), "{}: {f} twice", d.name);
        }
        for arg in &command {
            assert!(
                !arg.contains("0.0.0.0") && !arg.contains("[::]"),
                "{}: {arg}",
                d.name
            );
        }
        let mounts = s["volumes"].as_sequence().cloned().unwrap_or_default();
        let mounted_ro = |path: &str| {
            mounts
                .iter()
                .any(|m| m["source"] == path && m["target"] == path && m["read_only"] == true)
        };
        if !d.config_files.is_empty() {
            assert!(mounted_ro(config_dir), "{}: config dir", d.name);
        }
        for secret in &d.secrets {
            assert!(mounted_ro(secret), "{}: secret {secret}", d.name);
        }
        if let Some(dir) = &d.data_dir {
            let volume = volume_name(d);
            assert!(
                mounts.iter().any(|m| m["type"] == "volume"
                    && m["source"] == volume.as_str()
                    && m["target"] == dir.as_str()),
                "{}: data volume",
                d.name
            );
            assert!(doc["volumes"].get(volume.as_str()).is_some());
            if d.container.user != "0:0" {
                let at = format!("/volumes/{}", d.name);
                assert!(
                    script.contains(&format!("chown {} {at}", d.container.user)),
                    "{}: {script}",
                    d.name
                );
                assert!(init["volumes"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|m| { m["source"] == volume.as_str() && m["target"] == at.as_str() }));
                assert_eq!(
                    s["depends_on"][VOLUME_INIT]["condition"], "service_completed_successfully",
                    "{}",
                    d.name
                );
            }
        }
    }
    // The example names secrets: the test would prove nothing otherwise.
    assert!(daemons.iter().any(|d| !d.secrets.is_empty()));
    assert_eq!(strings(&init["cap_add"]), ["CHOWN"]);
    assert_eq!(init["user"], "0:0");
    assert_eq!(init["network_mode"], "none");
    assert!(init.get("restart").is_none());
}

#[test]
fn compose_follows_the_config_keys() {
    let base = compose_of(&Config::default());
    let cases: BTreeMap<&str, (&str, &str, &str)> = BTreeMap::from([
        (
            "prometheus.retention",
            (
                "[prometheus]\nretention = \"400d\"\n",
                "prometheus",
                "--storage.tsdb.retention.time=400d",
            ),
        ),
        (
            "exporters.node.collectors",
            (
                "[exporters.node]\ncollectors = [\"ethtool\"]\n",
                "node-exporter",
                "--collector.ethtool",
            ),
        ),
        (
            "prometheus.port",
            (
                "[prometheus]\nport = 19090\n",
                "prometheus",
                "--web.listen-address=127.0.0.1:19090",
            ),
        ),
        (
            "alertmanager.port",
            (
                "[alertmanager]\nport = 19093\n",
                "alertmanager",
                "--web.listen-address=127.0.0.1:19093",
            ),
        ),
        (
            "exporters.cadvisor.port",
            (
                "[exporters.cadvisor]\nport = 18080\n",
                "cadvisor",
                "--port=18080",
            ),
        ),
        (
            "alertmanager.data_dir",
            (
                "[alertmanager]\ndata_dir = \"/srv/am\"\n",
                "alertmanager",
                "--storage.path=/srv/am",
            ),
        ),
    ]);
    for (key, (toml_text, service, flag)) in cases {
        let text = compose_of(&support::parse(toml_text));
        assert_ne!(text, base, "{key} changed nothing");
        let doc = parsed(&text);
        assert!(
            strings(&doc["services"][service]["command"]).contains(&flag),
            "{key}: {service} lacks {flag}"
        );
    }

    // A port moves the healthcheck with it.
    let doc = parsed(&compose_of(&support::parse("[loki]\nport = 13100\n")));
    assert!(strings(&doc["services"]["loki"]["healthcheck"]["test"])
        .contains(&"-health.url=http://127.0.0.1:13100/ready"));

    // A data dir moves the volume, which the daemon is told about.
    for (toml_text, service, dir) in [
        (
            "[prometheus]\ndata_dir = \"/srv/prom\"\n",
            "prometheus",
            "/srv/prom",
        ),
        ("[loki]\ndata_dir = \"/srv/loki\"\n", "loki", "/srv/loki"),
        (
            "[grafana]\ndata_dir = \"/srv/grafana\"\n",
            "grafana",
            "/srv/grafana",
        ),
    ] {
        let doc = parsed(&compose_of(&support::parse(toml_text)));
        let mounts = doc["services"][service]["volumes"].as_sequence().unwrap();
        assert!(
            mounts
                .iter()
                .any(|m| m["type"] == "volume" && m["target"] == dir),
            "{service}: no volume at {dir}"
        );
    }

    // A listen address the config asks for is the one the daemon binds.
    let doc = parsed(&compose_of(&support::parse(
        "[exporters.node]\nlisten_address = \"192.168.1.5\"\n",
    )));
    assert!(strings(&doc["services"]["node-exporter"]["command"])
        .contains(&"--web.listen-address=192.168.1.5:9100"));
}

#[test]
fn golden_files() {
    let owned = |p: &str| p == PATH;
    support::golden::check(
        &support::render_file(&support::example()),
        owned,
        "compose-homelab",
    );
    support::golden::check(
        &support::render_file(&support::crate_dir().join("tests/fixtures/agent.toml")),
        owned,
        "compose-agent",
    );
}
