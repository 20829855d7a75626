//! The NixOS module hands Prometheus the rendered scrape jobs as file_sd target
//! groups (nixos-modules/homelab-observability/scrape-to-file-sd.jq), because
//! services.prometheus has no `scrape_config_files` option. Real Prometheus,
//! run once with configgen's standalone prometheus.yml and once with the
//! module's shape, must end up with the same targets: same labels, URL,
//! interval and timeout.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::free_port;

fn tool(name: &str) -> bool {
    common::tool("scrape wiring test", name)
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(config: &Path, data: &Path) -> Self {
        let port = free_port();
        let child = Command::new("prometheus")
            .current_dir(config.parent().unwrap())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port }
    }

    /// Active targets, without the scrape pool (the module uses one pool for
    /// every job), once `expected` of them are discovered.
    fn targets(&self, expected: usize) -> BTreeSet<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{}/api/v1/targets?state=active", self.port);
        loop {
            let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
            if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
                let active = v["data"]["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if active.len() >= expected {
                    return active
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "labels": t["labels"],
                                "scrapeUrl": t["scrapeUrl"],
                                "scrapeInterval": t["scrapeInterval"],
                                "scrapeTimeout": t["scrapeTimeout"],
                            })
                            .to_string()
                        })
                        .collect();
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus on {} found fewer than {expected} targets",
                self.port
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_sd(fragment: &str, jq_program: &Path) -> Value {
    let json: Value = serde_yaml_ng::from_str(fragment).expect("scrape fragment is YAML");
    let mut jq = Command::new("jq")
        .args(["--arg", "global_timeout", "10s", "-f"])
        .arg(jq_program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(jq.stdin.take().unwrap(), &json).unwrap();
    let out = jq.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        jq_program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn file_sd_wiring_gives_prometheus_the_same_targets_as_the_rendered_config() {
    let root = common::repo_root();
    let cfg = common::load_file(&root.join("examples/homelab.toml"));
    let tree = configgen::render::render(&cfg).unwrap();
    let fragments: Vec<(&str, &str)> = tree
        .files()
        .filter(|(path, _)| path.starts_with("prometheus/scrape/"))
        .collect();
    if fragments.is_empty() || tree.get("prometheus/prometheus.yml").is_none() {
        common::skipped("scrape wiring test: configgen renders no Prometheus config yet");
        return;
    }
    if !(tool("prometheus") && tool("jq") && tool("curl")) {
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in tree.files() {
        let file = dir.path().join("tree").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, contents).unwrap();
    }

    let jq_program = root.join("nixos-modules/homelab-observability/scrape-to-file-sd.jq");
    let sd_dir = dir.path().join("file_sd");
    std::fs::create_dir_all(&sd_dir).unwrap();
    let mut expected = 0;
    for (path, fragment) in &fragments {
        let groups = file_sd(fragment, &jq_program);
        expected += groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["targets"].as_array().unwrap().len())
            .sum::<usize>();
        let name = Path::new(path).file_stem().unwrap().to_string_lossy();
        std::fs::write(sd_dir.join(format!("{name}.json")), groups.to_string()).unwrap();
    }

    // What services.prometheus generates from the module's options.
    let mut external_labels = cfg.host.labels.clone();
    external_labels.insert("host".into(), cfg.host.name.clone());
    let module_shaped = serde_json::json!({
        "global": {
            "scrape_interval": cfg.prometheus.scrape_interval,
            "evaluation_interval": cfg.prometheus.evaluation_interval,
            "external_labels": external_labels,
        },
        "scrape_configs": [{
            "job_name": "homelab-observability",
            "file_sd_configs": [{ "files": [format!("{}/*.json", sd_dir.display())] }],
        }],
    });
    let nixos_config = dir.path().join("nixos/prometheus.yml");
    std::fs::create_dir_all(nixos_config.parent().unwrap()).unwrap();
    std::fs::write(&nixos_config, module_shaped.to_string()).unwrap();

    let standalone = Prometheus::start(
        &dir.path().join("tree/prometheus/prometheus.yml"),
        &dir.path().join("data-standalone"),
    );
    let nixos = Prometheus::start(&nixos_config, &dir.path().join("data-nixos"));
    let (want, got) = (standalone.targets(expected), nixos.targets(expected));
    assert_eq!(
        want.len(),
        expected,
        "the rendered prometheus.yml has another target count"
    );
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "targets differ\nonly standalone: {missing:#?}\nonly NixOS wiring: {extra:#?}"
    );
    println!(
        "{} targets of {} jobs identical",
        got.len(),
        fragments.len()
    );
}
