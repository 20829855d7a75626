//! alertmanager.yml against the pinned Alertmanager's (0.34) documented
//! receiver schema ("Configuration" in the Alertmanager docs: webhook_config,
//! email_config, telegram_config, discord_config, pushover_config,
//! http_config), for what Debian's amtool 0.25 cannot check: `url_file`,
//! `http_config.http_headers` and the receivers whose credentials 0.25
//! cannot read from files. Typed structs reject any key the
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
    #[serde(default)]
    telegram_configs: Vec<TelegramConfig>,
    #[serde(default)]
    discord_configs: Vec<DiscordConfig>,
    #[serde(default)]
    pushover_configs: Vec<PushoverConfig>,
}

/// `bot_token` and `bot_token_file` are mutually exclusive, and so are
/// `chat_id` and `chat_id_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TelegramConfig {
    send_resolved: Option<bool>,
    api_url: Option<String>,
    bot_token: Option<String>,
    bot_token_file: Option<String>,
    chat_id: Option<i64>,
    chat_id_file: Option<String>,
    message_thread_id: Option<i64>,
    message: Option<String>,
    disable_notifications: Option<bool>,
    parse_mode: Option<String>,
    http_config: Option<HttpConfig>,
}

/// `webhook_url` and `webhook_url_file` are mutually exclusive.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct DiscordConfig {
    send_resolved: Option<bool>,
    webhook_url: Option<String>,
    webhook_url_file: Option<String>,
    content: Option<String>,
    username: Option<String>,
    avatar_url: Option<String>,
    title: Option<String>,
    message: Option<String>,
    http_config: Option<HttpConfig>,
}

/// `user_key`/`user_key_file` and `token`/`token_file` are pairs of
/// mutually exclusive fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PushoverConfig {
    send_resolved: Option<bool>,
    user_key: Option<String>,
    user_key_file: Option<String>,
    token: Option<String>,
    token_file: Option<String>,
    title: Option<String>,
    message: Option<String>,
    url: Option<String>,
    url_title: Option<String>,
    device: Option<String>,
    sound: Option<String>,
    priority: Option<String>,
    retry: Option<String>,
    expire: Option<String>,
    ttl: Option<String>,
    html: Option<bool>,
    monospace: Option<bool>,
    http_config: Option<HttpConfig>,
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
[[alerting.receivers]]
type = "telegram"
name = "chat"
bot_token_file = "/run/secrets/telegram-bot-token"
chat_id = -1001234567890
[[alerting.receivers]]
type = "discord"
name = "channel"
webhook_url_file = "/run/secrets/discord-webhook-url"
[[alerting.receivers]]
type = "pushover"
name = "push"
user_key_file = "/run/secrets/pushover-user-key"
token_file = "/run/secrets/pushover-token"
"#;

#[test]
fn receivers_follow_the_pinned_releases_documented_schema() {
    let example = std::fs::read_to_string(support::example()).unwrap();
    let mut webhooks = 0;
    let mut others = 0;
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
            for t in &r.telegram_configs {
                others += 1;
                assert!(t.bot_token.is_none() && t.chat_id_file.is_none());
                assert!(t
                    .bot_token_file
                    .as_deref()
                    .is_some_and(|f| f.starts_with('/')));
                assert!(t.chat_id.is_some_and(|id| id != 0));
            }
            for d in &r.discord_configs {
                others += 1;
                assert!(d.webhook_url.is_none());
                assert!(d
                    .webhook_url_file
                    .as_deref()
                    .is_some_and(|f| f.starts_with('/')));
            }
            for p in &r.pushover_configs {
                others += 1;
                assert!(p.user_key.is_none() && p.token.is_none());
                assert!(p.user_key_file.is_some() && p.token_file.is_some());
            }
        }
    }
    assert_eq!(
        webhooks,
        4 + 5,
        "example: watchdog and ntfy's three severity variants; URL_FILES: watchdog, hook and \
         ntfy's three variants"
    );
    assert_eq!(
        others, 3,
        "URL_FILES: one telegram, discord and pushover each"
    );
}
