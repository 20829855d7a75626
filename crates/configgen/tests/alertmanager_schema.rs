//! alertmanager.yml against the pinned Alertmanager's (0.34) documented
//! receiver schema ("Configuration" in the Alertmanager docs: webhook_config,
//! email_config, http_config), for what Debian's amtool 0.25 cannot check:
//! `url_file` and `http_config.http_headers`. Typed structs reject any key the
//! documentation does not list.

mod support;

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertmanagerYml {
    route: serde_yaml_ng::Value,
    receivers: Vec<Receiver>,
    inhibit_rules: serde_yaml_ng::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Receiver {
    name: String,
    #[serde(default)]
    email_configs: Vec<EmailConfig>,
    #[serde(default)]
    webhook_configs: Vec<WebhookConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EmailConfig {
    to: String,
    from: String,
    smarthost: String,
    auth_username: Option<String>,
    auth_password_file: Option<String>,
    require_tls: bool,
    send_resolved: bool,
    headers: Option<BTreeMap<String, String>>,
    text: Option<String>,
}

/// `url` and `url_file` are mutually exclusive; one is required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookConfig {
    url: Option<String>,
    url_file: Option<String>,
    #[allow(dead_code)]
    send_resolved: bool,
    http_config: Option<HttpConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpConfig {
    authorization: Option<Authorization>,
    http_headers: Option<BTreeMap<String, HeaderValues>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Authorization {
    #[serde(rename = "type")]
    kind: String,
    credentials_file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderValues {
    values: Vec<String>,
}

const URL_FILES: &str = r#"
[alerting]
default_receivers = ["hook", "phone"]
watchdog_url_file = "/run/secrets/heartbeat"
[[alerting.receivers]]
type = "webhook"
name = "hook"
url_file = "/run/secrets/hook"
[[alerting.receivers]]
type = "ntfy"
name = "phone"
url_file = "/run/secrets/topic"
token_file = "/run/secrets/ntfy-token"
"#;

#[test]
fn receivers_follow_the_pinned_releases_documented_schema() {
    let example = std::fs::read_to_string(support::example()).unwrap();
    let mut webhooks = 0;
    for text in [example.as_str(), URL_FILES] {
        let tree = support::render(&support::parse(text));
        let yml = tree.get("alertmanager/alertmanager.yml").unwrap();
        let doc: AlertmanagerYml =
            serde_yaml_ng::from_str(yml).unwrap_or_else(|e| panic!("{e}\n{yml}"));
        assert!(doc.route.is_mapping() && doc.inhibit_rules.is_sequence());
        for r in &doc.receivers {
            for w in &r.webhook_configs {
                webhooks += 1;
                assert!(
                    w.url.is_some() != w.url_file.is_some(),
                    "{}: exactly one of url and url_file",
                    r.name
                );
                if let Some(headers) = w.http_config.as_ref().and_then(|h| h.http_headers.as_ref())
                {
                    assert!(
                        w.url_file.is_some(),
                        "{}: headers only replace the query",
                        r.name
                    );
                    assert!(headers.values().all(|h| h.values.len() == 1));
                }
                if let Some(auth) = w
                    .http_config
                    .as_ref()
                    .and_then(|h| h.authorization.as_ref())
                {
                    assert_eq!(auth.kind, "Bearer");
                    assert!(auth.credentials_file.starts_with('/'));
                }
            }
            assert!(r.email_configs.len() <= 1);
        }
    }
    assert_eq!(
        webhooks,
        4 + 5,
        "example: watchdog and ntfy's three severity variants; URL_FILES: watchdog, hook and \
         ntfy's three variants"
    );
}
