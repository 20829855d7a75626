//! No secret in any rendered file: a config sets every secret-bearing field
//! (every `*_file` field of the schema) to a real file whose path carries a
//! marker and whose contents carry another. `configgen render` must write
//! none of the contents (it never reads a secret), every secret path must be
//! named by a rendered file, and each such path must be in the runtime
//! model's `secrets` of the daemon that reads that file.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use configgen::plan::Plan;
use configgen::runtime::daemons;
use serde_json::Value;
use support::cli::{configgen, snapshot, stderr};

const PATH_MARKER: &str = "SECRET-PATH-MARKER";
const CONTENT_MARKER: &str = "SECRET-CONTENT-MARKER";

/// Every field the config fills, by the file name of its secret.
const CONFIG: &str = r#"
[[prometheus.remote_write]]
url = "https://mimir.example.org/api/v1/push"
basic_auth = { username = "lab", password_file = "@DIR@/remote-write-password" }
[[prometheus.remote_write]]
url = "https://vm.example.org/api/v1/write"
bearer_token_file = "@DIR@/remote-write-token"

[[prometheus.scrape_configs]]
job_name = "authentik"
targets = ["auth.example.org:9300"]
scheme = "https"
bearer_token_file = "@DIR@/authentik-token"
tls_config = { ca_file = "@DIR@/ca.pem", cert_file = "@DIR@/client.pem", key_file = "@DIR@/client-key.pem" }

[alerting]
default_receivers = ["mail", "hook", "phone", "chat", "channel", "push"]
watchdog_url_file = "@DIR@/heartbeat-url"

[[alerting.receivers]]
type = "email"
name = "mail"
to = "me@example.org"
from = "lab@example.org"
smarthost = "smtp.example.org:587"
username = "lab"
password_file = "@DIR@/alert-smtp-password"

[[alerting.receivers]]
type = "webhook"
name = "hook"
url_file = "@DIR@/webhook-url"

[[alerting.receivers]]
type = "ntfy"
name = "phone"
url_file = "@DIR@/ntfy-topic-url"
token_file = "@DIR@/ntfy-token"

[[alerting.receivers]]
type = "telegram"
name = "chat"
bot_token_file = "@DIR@/telegram-bot-token"
chat_id = -1001234567890

[[alerting.receivers]]
type = "discord"
name = "channel"
webhook_url_file = "@DIR@/discord-webhook-url"

[[alerting.receivers]]
type = "pushover"
name = "push"
user_key_file = "@DIR@/pushover-user-key"
token_file = "@DIR@/pushover-token"

[grafana]
root_url = "https://lab.example.org/grafana/"
admin_password_file = "@DIR@/grafana-admin-password"
secret_key_file = "@DIR@/grafana-secret-key"
smtp = { host = "smtp.example.org:587", user = "lab", password_file = "@DIR@/grafana-smtp-password", from_address = "grafana@example.org" }

[grafana.oidc]
client_id = "grafana"
client_secret_file = "@DIR@/grafana-oidc-secret"
auth_url = "https://auth.example.org/application/o/authorize/"
token_url = "https://auth.example.org/application/o/token/"
api_url = "https://auth.example.org/application/o/userinfo/"
"#;

/// `(key, string value)` of every `*_file` field in a JSON value.
fn file_fields(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key.ends_with("_file") => {
                        out.push((key.clone(), s.clone()))
                    }
                    _ => file_fields(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| file_fields(v, out)),
        _ => {}
    }
}

/// The names of every `*_file` property the config schema knows.
fn schema_file_fields(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().filter(|k| k.ends_with("_file")).cloned());
            }
            map.values().for_each(|v| schema_file_fields(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| schema_file_fields(v, out)),
        _ => {}
    }
}

#[test]
fn no_rendered_file_holds_a_secret_and_every_reader_is_told() {
    let tmp = tempfile::tempdir().unwrap();
    let secret_dir = tmp.path().join(PATH_MARKER);
    fs::create_dir(&secret_dir).unwrap();
    let text = CONFIG.replace("@DIR@", secret_dir.to_str().unwrap());
    let config_path = tmp.path().join("homelab.toml");
    fs::write(&config_path, &text).unwrap();

    let cfg = support::parse(&text);
    let mut fields = Vec::new();
    file_fields(&serde_json::to_value(&cfg).unwrap(), &mut fields);
    let mut schema_fields = BTreeSet::new();
    schema_file_fields(
        &serde_json::from_str(&configgen::schema::json_schema()).unwrap(),
        &mut schema_fields,
    );
    let covered: BTreeSet<String> = fields.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        covered, schema_fields,
        "the test config must set every kind of *_file field the schema has"
    );
    for (i, (_, path)) in fields.iter().enumerate() {
        assert!(path.contains(PATH_MARKER), "{path}");
        fs::write(path, format!("{CONTENT_MARKER}-{i}\n")).unwrap();
    }

    let out = tmp.path().join("out");
    let result = configgen(
        &[
            "render",
            "--config",
            config_path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(result.status.success(), "{}", stderr(&result));

    let config_dir = cfg.deploy.config_dir.trim_end_matches('/').to_string();
    let daemons = daemons(&Plan::new(&cfg));
    let mut named = BTreeSet::new();
    let mut checked_files = 0;
    for (rel, (_, contents)) in snapshot(&out) {
        let Some(contents) = contents else { continue };
        let text = String::from_utf8_lossy(&contents);
        assert!(
            !text.contains(CONTENT_MARKER),
            "{rel} holds a secret's contents"
        );
        let in_file: Vec<&String> = fields
            .iter()
            .map(|(_, p)| p)
            .filter(|p| text.contains(p.as_str()))
            .collect();
        if in_file.is_empty() {
            assert!(!text.contains(PATH_MARKER), "{rel} names an unknown secret");
            continue;
        }
        // compose.yaml and the units hand the secrets to the daemons (mounts,
        // LoadCredential=): each one they name must be some daemon's secret.
        if rel == "compose.yaml" || rel.starts_with("systemd/") {
            for path in &in_file {
                assert!(
                    daemons.iter().any(|d| d.secrets.contains(path)),
                    "{rel} hands over {path}, which no daemon's secrets list"
                );
            }
            named.extend(in_file.into_iter().cloned());
            continue;
        }
        checked_files += 1;
        let installed = format!("{config_dir}/{rel}");
        let readers: Vec<_> = daemons
            .iter()
            .filter(|d| d.config_files.iter().any(|f| installed.starts_with(f)))
            .collect();
        assert!(!readers.is_empty(), "no daemon reads {rel}");
        for d in readers {
            for path in &in_file {
                assert!(
                    d.secrets.contains(path),
                    "{rel} names {path}, missing from {}'s secrets {:?}",
                    d.name,
                    d.secrets
                );
            }
        }
        named.extend(in_file.into_iter().cloned());
    }
    let all: BTreeSet<String> = fields.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(named, all, "every secret is named by a rendered file");
    assert_eq!(
        checked_files, 4,
        "prometheus.yml, scrape/authentik.yml, alertmanager.yml, grafana.ini"
    );

    // And the other way: a daemon's secrets are only those its files name.
    let by_daemon: BTreeMap<&str, &Vec<String>> =
        daemons.iter().map(|d| (d.name, &d.secrets)).collect();
    let listed: BTreeSet<String> = by_daemon.values().flat_map(|s| s.iter().cloned()).collect();
    assert_eq!(listed, all);
    assert_eq!(by_daemon["grafana"].len(), 4, "{by_daemon:?}");
}
