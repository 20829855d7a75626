//! grafana.ini against Grafana's documented settings: the rendered file is
//! read as Grafana's parser reads it (tests/support/grafana_ini.rs), every
//! key is a documented key of its section with a value of the right kind,
//! and it agrees with the rest of the tree and the runtime model. No Grafana
//! binary is available to the suite (it is in no Debian release).

mod support;

use configgen::plan::Plan;
use configgen::runtime::daemons;
use support::grafana_ini::{check, parse, Sections};

/// Every Grafana option configgen has, set.
const FULL: &str = r#"
[deploy]
config_dir = "/opt/hlo"

[grafana]
listen_address = "0.0.0.0"
port = 3300
domain = "lab.example.org"
root_url = "https://lab.example.org/grafana/"
admin_user = "root"
admin_password_file = "/run/secrets/grafana-admin"
secret_key_file = "/run/secrets/grafana-key"
data_dir = "/srv/grafana"
smtp = { host = "smtp.example.org:587", user = "lab", password_file = "/run/secrets/smtp", from_address = "grafana@example.org" }

[grafana.oidc]
name = "Authentik"
client_id = "grafana"
client_secret_file = "/run/secrets/oidc"
auth_url = "https://auth.example.org/application/o/authorize/"
token_url = "https://auth.example.org/application/o/token/"
api_url = "https://auth.example.org/application/o/userinfo/"
role_attribute_path = "contains(groups, 'Grafana Admins') && 'Admin' || 'Viewer'"
"#;

fn ini_of(toml_text: &str) -> (configgen::model::Config, Sections) {
    let cfg = support::parse(toml_text);
    let tree = support::render(&cfg);
    let text = tree
        .get("grafana/grafana.ini")
        .expect("grafana.ini rendered");
    let sections = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (cfg, sections)
}

fn get<'s>(s: &'s Sections, section: &str, key: &str) -> &'s str {
    s.get(section)
        .and_then(|keys| keys.get(key))
        .unwrap_or_else(|| panic!("[{section}] {key} missing"))
}

#[test]
fn every_key_is_documented_for_the_example_and_a_full_config() {
    let example = std::fs::read_to_string(support::example()).unwrap();
    for (name, text) in [("example", example.as_str()), ("full", FULL), ("empty", "")] {
        let (_, sections) = ini_of(text);
        assert_eq!(check(&sections), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn the_checker_rejects_what_grafana_does_not_document() {
    let sections = parse(
        "[server]\nhttp_prot = 3000\nserve_from_sub_path = yes\n[securty]\nadmin_user = a\n[security]\nadmin_password = hunter2\n",
    )
    .unwrap();
    let problems = check(&sections);
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(parse("[a]\nk = 1\nk = 2\n").is_err());
    assert!(parse("k = 1\n").is_err());
    // go-ini cuts at a comment character unless the value is triple-quoted.
    let quoted = parse("[a]\nk = \"\"\"x;y\"\"\"\nj = x;y\n").unwrap();
    assert_eq!(quoted["a"]["k"], "x;y");
    assert_eq!(quoted["a"]["j"], "x");
}

#[test]
fn settings_follow_the_config() {
    let (cfg, s) = ini_of(FULL);
    assert_eq!(get(&s, "server", "http_addr"), "0.0.0.0");
    assert_eq!(get(&s, "server", "http_port"), "3300");
    assert_eq!(get(&s, "server", "domain"), "lab.example.org");
    assert_eq!(
        get(&s, "server", "root_url"),
        "https://lab.example.org/grafana/"
    );
    assert_eq!(get(&s, "server", "serve_from_sub_path"), "true");
    assert_eq!(get(&s, "security", "cookie_secure"), "true");
    assert_eq!(get(&s, "security", "admin_user"), "root");
    assert_eq!(get(&s, "auth.anonymous", "enabled"), "false");
    assert_eq!(get(&s, "users", "allow_sign_up"), "false");
    assert_eq!(get(&s, "analytics", "reporting_enabled"), "false");
    assert_eq!(get(&s, "auth.generic_oauth", "name"), "Authentik");
    assert_eq!(
        get(&s, "auth.generic_oauth", "role_attribute_path"),
        "contains(groups, 'Grafana Admins') && 'Admin' || 'Viewer'"
    );
    assert_eq!(get(&s, "smtp", "host"), "smtp.example.org:587");

    // The paths: the provisioning the tree holds, under the config dir, and
    // the same values in the GF_PATHS_* environment (which wins in the image).
    assert_eq!(
        get(&s, "paths", "provisioning"),
        "/opt/hlo/grafana/provisioning"
    );
    assert_eq!(get(&s, "paths", "data"), "/srv/grafana");
    let grafana = daemons(&Plan::new(&cfg))
        .into_iter()
        .find(|d| d.name == "grafana")
        .unwrap();
    for (key, value) in &s["paths"] {
        let env = format!("GF_PATHS_{}", key.to_uppercase());
        assert!(
            grafana.env.contains(&(env.clone(), value.clone())),
            "{env} {:?}",
            grafana.env
        );
    }
    // Every $__file reference is a secret the runtime model hands to Grafana.
    let refs: Vec<&str> = s
        .values()
        .flat_map(|keys| keys.values())
        .filter_map(|v| v.strip_prefix("$__file{")?.strip_suffix('}'))
        .collect();
    assert_eq!(refs.len(), 4, "{refs:?}");
    for path in refs {
        assert!(grafana.secrets.iter().any(|p| p == path), "{path}");
    }
}

#[test]
fn without_a_root_url_grafana_derives_it_and_serves_from_the_root() {
    let (_, s) = ini_of("[grafana]\ndomain = \"grafana.lan\"\n");
    assert_eq!(
        get(&s, "server", "root_url"),
        "%(protocol)s://%(domain)s:%(http_port)s/"
    );
    assert_eq!(get(&s, "server", "serve_from_sub_path"), "false");
    assert_eq!(get(&s, "server", "http_addr"), "127.0.0.1");
    assert!(!s.contains_key("smtp") && !s.contains_key("auth.generic_oauth"));
    assert!(!s["security"].contains_key("admin_password"));
}
