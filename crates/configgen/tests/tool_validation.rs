//! The rendered metrics configs are accepted by the real tools: promtool,
//! amtool and blackbox_exporter's --config.check, for the annotated example
//! and for edge configs. A missing tool skips loudly, or fails under CI=true.

mod support;

use std::path::Path;
use std::process::Command;

use configgen::render::Tree;

fn run_check(program: &Path, args: &[&str], file: &Path) {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {} {} rejected the render:\n{text}\n--- file ---\n{}",
        program.display(),
        args.join(" "),
        file.display(),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// Checks every metrics config file of the tree with its tool; returns how
/// many files were checked.
fn check_tree(tree: &Tree, test: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    support::write_tree(tree, dir.path());
    let mut checked = 0;
    if tree.get("prometheus/prometheus.yml").is_some() {
        if let Some(promtool) = support::require_tool("promtool", test) {
            let file = dir.path().join("prometheus/prometheus.yml");
            run_check(&promtool, &["check", "config"], &file);
            checked += 1;
        }
    }
    if tree.get("alertmanager/alertmanager.yml").is_some() {
        if let Some(amtool) = support::require_tool("amtool", test) {
            let file = dir.path().join("alertmanager/alertmanager.yml");
            run_check(&amtool, &["check-config"], &file);
            checked += 1;
        }
    }
    if tree.get("blackbox/blackbox.yml").is_some() {
        if let Some(blackbox) = support::require_tool("prometheus-blackbox-exporter", test) {
            let file = dir.path().join("blackbox/blackbox.yml");
            let arg = format!("--config.file={}", file.display());
            let out = Command::new(&blackbox)
                .args(["--config.check", &arg])
                .output()
                .expect("running blackbox exporter");
            assert!(
                out.status.success(),
                "blackbox exporter rejected {}:\n{}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    checked
}

/// The config as a host with Debian's Alertmanager 0.25 (the amtool here)
/// writes it: no `url_file`, URLs inline, no telegram, discord or pushover
/// receiver. The `url_file` form is checked
/// against the pinned 0.34's documented schema in alertmanager_schema.rs.
fn for_alertmanager_0_25(mut cfg: configgen::model::Config) -> configgen::model::Config {
    use configgen::model::Receiver;
    let inline = |file: &mut Option<String>, url: &mut Option<String>| {
        if file.take().is_some() {
            *url = Some("https://hooks.example.org/inline".into());
        }
    };
    inline(
        &mut cfg.alerting.watchdog_url_file,
        &mut cfg.alerting.watchdog_url,
    );
    // Receivers whose credentials only come from files do not exist there.
    cfg.alerting.receivers.retain(|r| {
        !matches!(
            r,
            Receiver::Telegram(_) | Receiver::Discord(_) | Receiver::Pushover(_)
        )
    });
    for r in &mut cfg.alerting.receivers {
        match r {
            Receiver::Webhook(w) => inline(&mut w.url_file, &mut w.url),
            Receiver::Ntfy(n) => inline(&mut n.url_file, &mut n.url),
            Receiver::Email(_)
            | Receiver::Telegram(_)
            | Receiver::Discord(_)
            | Receiver::Pushover(_) => {}
        }
    }
    cfg.alertmanager.version = "0.25".into();
    cfg
}

#[test]
fn homelab_example_passes_the_real_tools() {
    let text = std::fs::read_to_string(support::example()).unwrap();
    let cfg = for_alertmanager_0_25(support::parse(&text));
    assert_eq!(configgen::validate::validate(&cfg), Vec::new());
    let tree = support::render(&cfg);
    let checked = check_tree(&tree, "homelab_example_passes_the_real_tools");
    eprintln!("checked {checked} files");
}

#[test]
fn local_example_passes_the_real_tools() {
    let tree = support::render_file(&support::repo_root().join("examples/local.toml"));
    check_tree(&tree, "local_example_passes_the_real_tools");
}

#[test]
fn config_without_services_passes_the_real_tools() {
    let tree = support::render(&support::parse("host.name = \"bare\""));
    check_tree(&tree, "config_without_services_passes_the_real_tools");
}

#[test]
fn agent_renders_only_exporter_configs_and_they_pass() {
    let tree = support::render(&support::parse(
        r#"
        host = { name = "pi", role = "agent", ship_to = { prometheus_remote_write = "http://nas:9090/api/v1/write", loki_push = "http://nas:3100/loki/api/v1/push" } }
        [[services]]
        name = "printer"
        http = { url = "http://192.168.1.30/", valid_status_codes = [200, 302] }
        icmp = "192.168.1.30"
        "#,
    ));
    assert!(tree.get("prometheus/prometheus.yml").is_none());
    assert!(tree.get("alertmanager/alertmanager.yml").is_none());
    assert!(tree
        .get("blackbox/blackbox.yml")
        .unwrap()
        .contains("http_200_302:"));
    check_tree(&tree, "agent_renders_only_exporter_configs_and_they_pass");
}

#[test]
fn remote_write_receivers_and_every_check_kind_pass_the_real_tools() {
    let tree = support::render(&support::parse(
        r#"
        host = { name = "edge-case", labels = { site = "attic", rack = "1" } }
        prometheus.evaluation_interval = "15s"
        network = { gateway = "10.0.0.1", resolvers = ["1.1.1.1"], lan_sweep = { cidr = "10.0.0.0/28", interval = "10m" } }
        alerting.default_receivers = ["hook", "phone", "mail"]
        alerting.routes = { critical = ["mail", "phone"], info = [] }
        alerting.watchdog_url = "https://hc-ping.com/x"
        alerting.extra_rule_files = ["/etc/prometheus/my-rules/*.yml"]

        [[prometheus.remote_write]]
        url = "https://mimir.example.org/api/v1/push"
        basic_auth = { username = "lab", password_file = "/run/secrets/mimir" }
        [[prometheus.remote_write]]
        name = "vm"
        url = "https://vm.example.org/api/v1/write"
        bearer_token_file = "/run/secrets/vm-token"

        [[alerting.receivers]]
        type = "webhook"
        name = "hook"
        url = "http://127.0.0.1:9999/hook"
        send_resolved = false
        [[alerting.receivers]]
        type = "ntfy"
        name = "phone"
        url = "https://ntfy.example.org/lab"
        token_file = "/run/secrets/ntfy-token"
        [[alerting.receivers]]
        type = "email"
        name = "mail"
        to = "me@example.org"
        from = "lab@example.org"
        smarthost = "smtp.example.org:465"
        require_tls = false

        [[services]]
        name = "web"
        interval = "10s"
        http = { url = "https://web.lan/", valid_status_codes = [200, 301], accept_unauthorized = true, insecure_skip_verify = true }
        tcp = "web.lan:443"
        icmp = "web.lan"
        dns = { server = "10.0.0.1:53", query = "web.lan", record_type = "aaaa" }
        [[services]]
        name = "mqtt"
        interval = "1m"
        tcp = "10.0.0.5:1883"
        "#,
    ));
    let checked = check_tree(
        &tree,
        "remote_write_receivers_and_every_check_kind_pass_the_real_tools",
    );
    eprintln!("checked {checked} files");
}

#[test]
fn every_scrape_job_option_passes_promtool() {
    // promtool opens every file a job names (TLS files, credentials).
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "ca.pem",
        "client.pem",
        "client.key",
        "envoy-token",
        "unifi-password",
    ] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let file = |f: &str| dir.path().join(f).display().to_string();
    let tree = support::render(&support::parse(&format!(
        r#"
        [[services]]
        name = "authentik"
        metrics = "https://127.0.0.1:9300/metrics"
        [[services]]
        name = "immich"
        metrics = {{ url = "http://[::1]:8081/metrics", interval = "1m" }}
        [[prometheus.scrape_configs]]
        job_name = "envoy"
        targets = ["127.0.0.1:9901", "[fd00::2]:9901"]
        metrics_path = "/stats/prometheus"
        scrape_interval = "15s"
        scrape_timeout = "5s"
        labels = {{ site = "edge" }}
        bearer_token_file = "{token}"
        [[prometheus.scrape_configs]]
        job_name = "unifi"
        targets = ["unifi.lan:9130"]
        scheme = "https"
        basic_auth = {{ username = "prometheus", password_file = "{password}" }}
        tls_config = {{ ca_file = "{ca}", cert_file = "{cert}", key_file = "{key}", server_name = "unifi.lan", insecure_skip_verify = true }}
        "#,
        ca = file("ca.pem"),
        cert = file("client.pem"),
        key = file("client.key"),
        token = file("envoy-token"),
        password = file("unifi-password"),
    )));
    let unifi = tree.get("prometheus/scrape/unifi.yml").unwrap();
    let password = format!("password_file: {}", file("unifi-password"));
    for written in [password.as_str(), "server_name: unifi.lan", "scheme: https"] {
        assert!(unifi.contains(written), "{written} missing:\n{unifi}");
    }
    assert!(tree
        .get("prometheus/scrape/envoy.yml")
        .unwrap()
        .contains(&format!("credentials_file: {}", file("envoy-token"))));
    check_tree(&tree, "every_scrape_job_option_passes_promtool");
}

/// amtool's own router (`amtool config routes test`) on the rendered
/// alertmanager.yml: severities reach their receivers, ntfy gets its
/// per-severity variant, the Watchdog only the heartbeat, an empty route list
/// nobody.
#[test]
fn amtool_routes_each_severity_to_its_receivers() {
    let Some(amtool) = support::require_tool("amtool", "amtool_routes_each_severity") else {
        return;
    };
    let tree = support::render(&support::parse(
        r#"
        [alerting]
        default_receivers = ["phone"]
        routes = { critical = ["phone", "hook"], info = [] }
        watchdog_url = "https://hc-ping.com/x"
        [[alerting.receivers]]
        type = "webhook"
        name = "hook"
        url = "http://127.0.0.1:1/"
        [[alerting.receivers]]
        type = "ntfy"
        name = "phone"
        url = "https://ntfy.sh/topic"
        "#,
    ));
    let dir = tempfile::tempdir().unwrap();
    support::write_tree(&tree, dir.path());
    let file = dir.path().join("alertmanager/alertmanager.yml");
    for (labels, expected) in [
        ("alertname=X severity=critical", "phone/critical,hook"),
        ("alertname=X severity=warning", "phone/warning"),
        ("alertname=X severity=info", "null"),
        ("alertname=X", "phone"),
        ("alertname=Watchdog severity=none", "watchdog"),
    ] {
        let out = Command::new(&amtool)
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={}", file.display()))
            .args(labels.split(' '))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.trim(), expected, "{labels}");
    }
}
