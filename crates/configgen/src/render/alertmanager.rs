//! alertmanager/alertmanager.yml: the route tree, receivers and inhibitions.
//!
//! Route tree, first match wins:
//! 1. `alertname="Watchdog"` goes to the heartbeat webhook (alerting.watchdog_url
//!    or watchdog_url_file),
//!    or nowhere when there is none; it never reaches a human receiver.
//! 2. one child per (severity, receiver) of alerting.routes, with `continue`
//!    on all but the last receiver of a severity; a severity routed to an
//!    empty list goes nowhere.
//! 3. everything else goes to alerting.default_receivers (nowhere if empty).
//!
//! Secrets are referenced by file only: auth_password_file for SMTP (since
//! Alertmanager 0.25; before 0.27 the file is used byte for byte, so it must
//! not end with a newline), authorization.credentials_file for ntfy tokens,
//! url_file for webhook, ntfy and heartbeat URLs (since 0.26; validation
//! refuses it when alertmanager.version is older), bot_token_file for
//! Telegram, user_key_file and token_file for Pushover (0.26), and
//! webhook_url_file for Discord (0.27). docs/secrets.md says why.
//!
//! Email, Telegram, Discord and Pushover share one subject or title and one
//! plain-text body.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

use super::{yaml, Tree};
use crate::inhibitions;
use crate::model::Receiver;
use crate::plan::{job, Plan};

/// The receiver with no integration: alerts routed to it are only visible in
/// Alertmanager and Grafana.
pub const NULL_RECEIVER: &str = "null";
/// The receiver of the Watchdog heartbeat.
pub const WATCHDOG_RECEIVER: &str = "watchdog";
/// The always-firing alert that proves the pipeline works.
pub const WATCHDOG_ALERT: &str = "Watchdog";

#[derive(Serialize)]
struct AlertmanagerYml {
    route: Route,
    receivers: Vec<ReceiverYml>,
    inhibit_rules: Vec<InhibitRule>,
}

#[derive(Serialize, Default)]
struct Route {
    receiver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_interval: Option<String>,
    #[serde(rename = "continue", skip_serializing_if = "std::ops::Not::not")]
    continue_: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
}

#[derive(Serialize, Default)]
struct ReceiverYml {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    email_configs: Vec<EmailConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhook_configs: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    telegram_configs: Vec<TelegramConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    discord_configs: Vec<DiscordConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pushover_configs: Vec<PushoverConfig>,
}

/// Alertmanager's default parse_mode (HTML) escapes the template's values.
#[derive(Serialize)]
struct TelegramConfig {
    bot_token_file: String,
    chat_id: i64,
    send_resolved: bool,
    message: String,
}

#[derive(Serialize)]
struct DiscordConfig {
    webhook_url_file: String,
    send_resolved: bool,
    title: &'static str,
    message: &'static str,
}

#[derive(Serialize)]
struct PushoverConfig {
    user_key_file: String,
    token_file: String,
    send_resolved: bool,
    title: &'static str,
    message: &'static str,
    priority: &'static str,
}

#[derive(Serialize)]
struct EmailConfig {
    to: String,
    from: String,
    smarthost: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password_file: Option<String>,
    require_tls: bool,
    send_resolved: bool,
    headers: BTreeMap<String, String>,
    text: String,
}

#[derive(Serialize)]
struct WebhookConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url_file: Option<String>,
    send_resolved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_config: Option<HttpConfig>,
}

impl WebhookConfig {
    fn to(url: &Option<String>, url_file: &Option<String>, send_resolved: bool) -> Self {
        WebhookConfig {
            url: url.clone(),
            url_file: url_file.clone(),
            send_resolved,
            http_config: None,
        }
    }
}

#[derive(Serialize, Default)]
struct HttpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    http_headers: BTreeMap<&'static str, HeaderValues>,
}

#[derive(Serialize)]
struct HeaderValues {
    values: Vec<String>,
}

#[derive(Serialize)]
struct Authorization {
    #[serde(rename = "type")]
    kind: &'static str,
    credentials_file: String,
}

#[derive(Serialize)]
struct InhibitRule {
    source_matchers: &'static [&'static str],
    target_matchers: &'static [&'static str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    equal: &'static [&'static str],
}

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    if !plan.runs(job::ALERTMANAGER) {
        return Ok(());
    }
    let alerting = &plan.cfg.alerting;
    let defined: Vec<&str> = alerting.receivers.iter().map(Receiver::name).collect();
    let referenced = alerting
        .default_receivers
        .iter()
        .chain(alerting.routes.values().flatten());
    for name in referenced {
        if !defined.contains(&name.as_str()) {
            bail!("alerting: receiver {name:?} is routed to but not defined in alerting.receivers");
        }
    }

    let ntfy: Vec<&str> = alerting
        .receivers
        .iter()
        .filter(|r| matches!(r, Receiver::Ntfy(_)))
        .map(Receiver::name)
        .collect();
    let has_watchdog = alerting.watchdog_url.is_some() || alerting.watchdog_url_file.is_some();
    let mut routes = vec![watchdog_route(has_watchdog)];
    for (severity, receivers) in &alerting.routes {
        let matchers = vec![format!("severity=\"{severity}\"")];
        routes.extend(fan_out(matchers, receivers, &ntfy));
    }
    let root_receiver = match alerting.default_receivers.as_slice() {
        [] => NULL_RECEIVER.to_string(),
        [only] => {
            routes.extend(severity_variants(only, &ntfy));
            only.clone()
        }
        several => {
            routes.extend(fan_out(Vec::new(), several, &ntfy));
            NULL_RECEIVER.to_string()
        }
    };
    let route = Route {
        receiver: root_receiver,
        group_by: alerting.group_by.clone(),
        group_wait: Some(alerting.group_wait.clone()),
        group_interval: Some(alerting.group_interval.clone()),
        repeat_interval: Some(alerting.repeat_interval.clone()),
        routes,
        ..Route::default()
    };

    let mut receivers = vec![ReceiverYml {
        name: NULL_RECEIVER.into(),
        ..ReceiverYml::default()
    }];
    if has_watchdog {
        receivers.push(ReceiverYml {
            name: WATCHDOG_RECEIVER.into(),
            webhook_configs: vec![WebhookConfig::to(
                &alerting.watchdog_url,
                &alerting.watchdog_url_file,
                false,
            )],
            ..ReceiverYml::default()
        });
    }
    let links = Links::of(plan);
    for r in &alerting.receivers {
        receivers.push(receiver(r, None, &links));
        if let Receiver::Ntfy(_) = r {
            for severity in &NTFY_SEVERITIES {
                receivers.push(receiver(r, Some(severity), &links));
            }
        }
    }

    let doc = AlertmanagerYml {
        route,
        receivers,
        inhibit_rules: inhibitions::RULES
            .iter()
            .map(|r| InhibitRule {
                source_matchers: r.source,
                target_matchers: r.target,
                equal: r.equal,
            })
            .collect(),
    };
    tree.add(
        "alertmanager/alertmanager.yml",
        yaml::document(plan, "alertmanager.yml", &doc)?,
    )
}

/// The heartbeat: sent about once a minute while the stack is alive. The
/// repeat interval is just under the group interval because Alertmanager
/// only re-sends at group-interval ticks once the repeat interval has fully
/// elapsed; equal values would make it every other tick.
fn watchdog_route(has_url: bool) -> Route {
    Route {
        receiver: if has_url {
            WATCHDOG_RECEIVER
        } else {
            NULL_RECEIVER
        }
        .into(),
        matchers: vec![format!("alertname=\"{WATCHDOG_ALERT}\"")],
        group_by: vec!["alertname".into()],
        group_wait: Some("0s".into()),
        group_interval: Some("1m".into()),
        repeat_interval: Some("50s".into()),
        ..Route::default()
    }
}

/// ntfy has no per-message priority in a webhook body: each ntfy receiver is
/// rendered once more per severity with its priority and tags in the URL
/// (`<name>/critical`, ...), and child routes pick the variant.
const NTFY_SEVERITIES: [NtfyStyle; 2] = [
    NtfyStyle {
        severity: "critical",
        priority: "5",
        tags: "rotating_light",
    },
    NtfyStyle {
        severity: "warning",
        priority: "4",
        tags: "warning",
    },
];
/// Everything else (info, and severities a user's own rules invent).
const NTFY_DEFAULT: NtfyStyle = NtfyStyle {
    severity: "",
    priority: "3",
    tags: "information_source",
};

struct NtfyStyle {
    severity: &'static str,
    priority: &'static str,
    tags: &'static str,
}

fn ntfy_variant(name: &str, severity: &str) -> String {
    format!("{name}/{severity}")
}

/// For an ntfy receiver, the child routes sending critical and warning alerts
/// to its variants; nothing for other receivers.
fn severity_variants(receiver: &str, ntfy: &[&str]) -> Vec<Route> {
    if !ntfy.contains(&receiver) {
        return Vec::new();
    }
    NTFY_SEVERITIES
        .iter()
        .map(|s| Route {
            receiver: ntfy_variant(receiver, s.severity),
            matchers: vec![format!("severity=\"{}\"", s.severity)],
            ..Route::default()
        })
        .collect()
}

/// Where the links in notifications point: the daemons' external URLs.
struct Links {
    alertmanager: Option<String>,
}

impl Links {
    fn of(plan: &Plan) -> Links {
        Links {
            alertmanager: plan.external_url(job::ALERTMANAGER),
        }
    }
}

/// One child route per receiver, all with the same matchers; every one but the
/// last continues so that each receiver is told. No receivers: a route to the
/// null receiver, so that the alerts stop there.
fn fan_out(matchers: Vec<String>, receivers: &[String], ntfy: &[&str]) -> Vec<Route> {
    if receivers.is_empty() {
        return vec![Route {
            receiver: NULL_RECEIVER.into(),
            matchers,
            ..Route::default()
        }];
    }
    let last = receivers.len() - 1;
    receivers
        .iter()
        .enumerate()
        .map(|(i, r)| Route {
            receiver: r.clone(),
            matchers: matchers.clone(),
            continue_: i != last,
            routes: severity_variants(r, ntfy),
            ..Route::default()
        })
        .collect()
}

/// The email subject: the summary when the group shares one, else how many
/// alerts of which kind.
const EMAIL_SUBJECT: &str = "[{{ if eq .Status \"resolved\" }}RESOLVED{{ else }}{{ .CommonLabels.severity | toUpper }}{{ end }}] \
{{ if .CommonAnnotations.summary }}{{ .CommonAnnotations.summary }}{{ else }}{{ len .Alerts }} x {{ .CommonLabels.alertname }}{{ end }}";

/// The plain-text part next to Alertmanager's default HTML one.
const EMAIL_TEXT: &str = "{{ range .Alerts }}[{{ .Status | toUpper }}] {{ .Annotations.summary }}
{{ .Annotations.description }}
Since {{ .StartsAt.Format \"2006-01-02 15:04 MST\" }}{{ if .GeneratorURL }} - graph: {{ .GeneratorURL }}{{ end }}

{{ end }}Silence or see all alerts: {{ .ExternalURL }}
";

fn receiver(r: &Receiver, ntfy_style: Option<&NtfyStyle>, links: &Links) -> ReceiverYml {
    let name = match ntfy_style {
        Some(s) => ntfy_variant(r.name(), s.severity),
        None => r.name().into(),
    };
    let mut out = ReceiverYml {
        name,
        ..ReceiverYml::default()
    };
    match r {
        Receiver::Email(e) => out.email_configs.push(EmailConfig {
            to: e.to.clone(),
            from: e.from.clone(),
            smarthost: e.smarthost.clone(),
            auth_username: e.username.clone(),
            auth_password_file: e.password_file.clone(),
            require_tls: e.require_tls,
            send_resolved: e.send_resolved,
            headers: [("Subject".to_string(), EMAIL_SUBJECT.to_string())].into(),
            text: EMAIL_TEXT.into(),
        }),
        Receiver::Webhook(w) => {
            out.webhook_configs
                .push(WebhookConfig::to(&w.url, &w.url_file, w.send_resolved))
        }
        Receiver::Ntfy(n) => {
            let params = ntfy_params(ntfy_style.unwrap_or(&NTFY_DEFAULT), links);
            let mut config = WebhookConfig::to(&n.url, &n.url_file, n.send_resolved);
            let mut http = HttpConfig {
                authorization: n.token_file.as_ref().map(|f| Authorization {
                    kind: "Bearer",
                    credentials_file: f.clone(),
                }),
                ..HttpConfig::default()
            };
            match &mut config.url {
                Some(url) => *url = ntfy_url(url, &params),
                // The URL is only known at run time (Alertmanager 0.34+): the
                // same settings go in headers, which ntfy reads like the
                // query parameters.
                None => http.http_headers = ntfy_headers(&params),
            }
            if http.authorization.is_some() || !http.http_headers.is_empty() {
                config.http_config = Some(http);
            }
            out.webhook_configs.push(config)
        }
        Receiver::Telegram(t) => out.telegram_configs.push(TelegramConfig {
            bot_token_file: t.bot_token_file.clone(),
            chat_id: t.chat_id,
            send_resolved: t.send_resolved,
            message: format!("{EMAIL_SUBJECT}\n\n{EMAIL_TEXT}"),
        }),
        Receiver::Discord(d) => out.discord_configs.push(DiscordConfig {
            webhook_url_file: d.webhook_url_file.clone(),
            send_resolved: d.send_resolved,
            title: EMAIL_SUBJECT,
            message: EMAIL_TEXT,
        }),
        Receiver::Pushover(p) => out.pushover_configs.push(PushoverConfig {
            user_key_file: p.user_key_file.clone(),
            token_file: p.token_file.clone(),
            send_resolved: p.send_resolved,
            title: EMAIL_SUBJECT,
            message: EMAIL_TEXT,
            priority: PUSHOVER_PRIORITY,
        }),
    }
    out
}

/// Pushover's priority: high for critical alerts, normal otherwise.
/// (Alertmanager's default, 2, is an emergency that repeats until
/// acknowledged, for every firing alert.)
const PUSHOVER_PRIORITY: &str =
    "{{ if and (eq .Status \"firing\") (eq .CommonLabels.severity \"critical\") }}1{{ else }}0{{ end }}";

/// ntfy (2.10+) turns a JSON webhook body into a readable notification when
/// asked for templating (`tpl`) with Go templates for the title (`t`) and
/// message (`m`), evaluated against Alertmanager's webhook payload. Priority
/// (`p`), tags (`ta`) and the click link are plain settings.
const NTFY_TEMPLATE: &str = "1";
const NTFY_TITLE: &str = "{{if eq .status \"resolved\"}}Resolved: {{end}}{{if .commonAnnotations.summary}}{{.commonAnnotations.summary}}{{else}}{{len .alerts}} x {{.commonLabels.alertname}}{{end}}";
/// `\n` is the newline escape ntfy honours in the message, also in a header
/// (where a real newline cannot go); the query carries real newlines.
const NTFY_MESSAGE: &str = "{{range .alerts}}{{if eq .status \"resolved\"}}RESOLVED: {{end}}{{.annotations.summary}}\\n{{.annotations.description}}\\n\\n{{end}}";

/// One ntfy publish setting: ntfy takes it as a query parameter or a header.
struct NtfyParam {
    query: &'static str,
    header: &'static str,
    value: String,
}

/// The settings of one ntfy receiver variant, in the order of the query.
fn ntfy_params(style: &NtfyStyle, links: &Links) -> Vec<NtfyParam> {
    let param = |query, header, value: &str| NtfyParam {
        query,
        header,
        value: value.to_string(),
    };
    let mut params = vec![
        param("m", "X-Message", NTFY_MESSAGE),
        param("p", "X-Priority", style.priority),
        param("t", "X-Title", NTFY_TITLE),
        param("ta", "X-Tags", style.tags),
        param("tpl", "X-Template", NTFY_TEMPLATE),
    ];
    if let Some(url) = &links.alertmanager {
        params.push(param("click", "X-Click", url));
    }
    params
}

/// The topic URL with the settings as query parameters.
fn ntfy_url(topic_url: &str, params: &[NtfyParam]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            params
                .iter()
                .map(|p| (p.query, p.value.replace("\\n", "\n"))),
        )
        .finish();
    let sep = if topic_url.contains('?') { '&' } else { '?' };
    format!("{topic_url}{sep}{query}")
}

/// The same settings as headers, for a topic URL read from a file.
fn ntfy_headers(params: &[NtfyParam]) -> BTreeMap<&'static str, HeaderValues> {
    params
        .iter()
        .map(|p| {
            (
                p.header,
                HeaderValues {
                    values: vec![p.value.clone()],
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Config;
    use serde_yaml_ng::Value;

    fn rendered(toml: &str) -> Value {
        let cfg: Config = toml::from_str(toml).unwrap();
        let mut tree = Tree::default();
        render(&Plan::new(&cfg), &mut tree).unwrap();
        serde_yaml_ng::from_str(tree.get("alertmanager/alertmanager.yml").unwrap()).unwrap()
    }

    fn receivers_of(route: &Value) -> Vec<(String, bool)> {
        route["routes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["receiver"].as_str().unwrap().to_string(),
                    r["continue"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    const RECEIVERS: &str = r#"
        [[alerting.receivers]]
        type = "webhook"
        name = "hook"
        url = "http://127.0.0.1:1/"
        [[alerting.receivers]]
        type = "ntfy"
        name = "phone"
        url = "https://ntfy.sh/topic"
        token_file = "/run/secrets/ntfy"
    "#;

    #[test]
    fn no_receivers_means_alerts_stay_in_alertmanager() {
        let am = rendered("");
        let route = &am["route"];
        assert_eq!(route["receiver"].as_str(), Some("null"));
        assert_eq!(receivers_of(route), [("null".to_string(), false)]);
        assert_eq!(
            route["routes"][0]["matchers"][0].as_str(),
            Some("alertname=\"Watchdog\"")
        );
        assert_eq!(route["group_by"][0].as_str(), Some("alertname"));
        assert_eq!(route["repeat_interval"].as_str(), Some("3h"));
    }

    #[test]
    fn severities_fan_out_to_each_receiver() {
        let am = rendered(&format!(
            r#"
            alerting.default_receivers = ["hook", "phone"]
            alerting.routes = {{ critical = ["hook", "phone"], info = [] }}
            alerting.watchdog_url = "https://hc-ping.com/x"
            {RECEIVERS}
            "#
        ));
        let route = &am["route"];
        assert_eq!(
            receivers_of(route),
            [
                ("watchdog".to_string(), false),
                ("hook".to_string(), true),
                ("phone".to_string(), false),
                ("null".to_string(), false),
                ("hook".to_string(), true),
                ("phone".to_string(), false),
            ]
        );
        let routes = route["routes"].as_sequence().unwrap();
        assert_eq!(
            routes[1]["matchers"][0].as_str(),
            Some("severity=\"critical\"")
        );
        assert_eq!(routes[3]["matchers"][0].as_str(), Some("severity=\"info\""));
        assert!(
            routes[4]["matchers"].is_null(),
            "defaults catch everything left"
        );
        assert_eq!(route["receiver"].as_str(), Some("null"));
        let watchdog = &am["receivers"][1];
        assert_eq!(watchdog["name"].as_str(), Some("watchdog"));
        assert_eq!(
            watchdog["webhook_configs"][0]["url"].as_str(),
            Some("https://hc-ping.com/x")
        );
        assert_eq!(
            watchdog["webhook_configs"][0]["send_resolved"].as_bool(),
            Some(false)
        );
    }

    fn ntfy_query(receiver: &Value) -> BTreeMap<String, String> {
        let url = url::Url::parse(receiver["webhook_configs"][0]["url"].as_str().unwrap()).unwrap();
        assert_eq!(url.path(), "/topic");
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn ntfy_gets_templates_and_a_token_file() {
        let am = rendered(RECEIVERS);
        let phone = &am["receivers"][2];
        assert_eq!(phone["name"].as_str(), Some("phone"));
        let query = ntfy_query(phone);
        assert_eq!(
            query.keys().collect::<Vec<_>>(),
            ["m", "p", "t", "ta", "tpl"],
            "no click link without alerting.external_url"
        );
        assert!(query["m"].starts_with("{{range .alerts}}"));
        assert!(query["t"].contains("{{.commonAnnotations.summary}}"));
        assert_eq!(query["tpl"], "1");
        assert_eq!(
            (query["p"].as_str(), query["ta"].as_str()),
            ("3", "information_source")
        );
        let auth = &phone["webhook_configs"][0]["http_config"]["authorization"];
        assert_eq!(auth["type"].as_str(), Some("Bearer"));
        assert_eq!(auth["credentials_file"].as_str(), Some("/run/secrets/ntfy"));
    }

    #[test]
    fn ntfy_priority_and_tags_follow_the_severity() {
        let am = rendered(&format!(
            r#"
            alerting.default_receivers = ["phone"]
            alerting.external_url = "http://monitor.lan"
            {RECEIVERS}
            "#
        ));
        let by_name = |name: &str| {
            am["receivers"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|r| r["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("no receiver {name}"))
                .clone()
        };
        for (name, priority, tags) in [
            ("phone", "3", "information_source"),
            ("phone/critical", "5", "rotating_light"),
            ("phone/warning", "4", "warning"),
        ] {
            let q = ntfy_query(&by_name(name));
            assert_eq!(
                (q["p"].as_str(), q["ta"].as_str()),
                (priority, tags),
                "{name}"
            );
            assert_eq!(q["click"], "http://monitor.lan:9093/", "{name}");
        }
        let route = &am["route"];
        assert_eq!(route["receiver"].as_str(), Some("phone"));
        let children: Vec<(&str, &str)> = route["routes"]
            .as_sequence()
            .unwrap()
            .iter()
            .skip(1)
            .map(|r| {
                (
                    r["matchers"][0].as_str().unwrap(),
                    r["receiver"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            children,
            [
                ("severity=\"critical\"", "phone/critical"),
                ("severity=\"warning\"", "phone/warning")
            ]
        );
    }

    #[test]
    fn telegram_discord_and_pushover_name_their_credential_files() {
        let am = rendered(
            r#"
            alerting.default_receivers = ["push"]
            [[alerting.receivers]]
            type = "telegram"
            name = "chat"
            bot_token_file = "/run/secrets/bot"
            chat_id = -100123
            send_resolved = false
            [[alerting.receivers]]
            type = "discord"
            name = "channel"
            webhook_url_file = "/run/secrets/discord"
            [[alerting.receivers]]
            type = "pushover"
            name = "push"
            user_key_file = "/run/secrets/user"
            token_file = "/run/secrets/app"
            "#,
        );
        let r = am["receivers"].as_sequence().unwrap();
        let telegram = &r[1]["telegram_configs"][0];
        assert_eq!(
            telegram["bot_token_file"].as_str(),
            Some("/run/secrets/bot")
        );
        assert_eq!(telegram["chat_id"].as_i64(), Some(-100123));
        assert_eq!(telegram["send_resolved"].as_bool(), Some(false));
        assert!(telegram["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{EMAIL_SUBJECT}\n\n")));
        let discord = &r[2]["discord_configs"][0];
        assert_eq!(
            discord["webhook_url_file"].as_str(),
            Some("/run/secrets/discord")
        );
        assert_eq!(discord["title"].as_str(), Some(EMAIL_SUBJECT));
        assert_eq!(discord["send_resolved"].as_bool(), Some(true));
        let pushover = &r[3]["pushover_configs"][0];
        assert_eq!(
            pushover["user_key_file"].as_str(),
            Some("/run/secrets/user")
        );
        assert_eq!(pushover["token_file"].as_str(), Some("/run/secrets/app"));
        assert_eq!(pushover["message"].as_str(), Some(EMAIL_TEXT));
        assert_eq!(pushover["priority"].as_str(), Some(PUSHOVER_PRIORITY));
        assert_eq!(am["route"]["receiver"].as_str(), Some("push"));
        let text = serde_yaml_ng::to_string(&am).unwrap();
        assert!(!text.contains("bot_token:") && !text.contains("user_key:"));
    }

    #[test]
    fn urls_from_files_are_named_not_inlined() {
        let am = rendered(
            r#"
            alerting.watchdog_url_file = "/run/secrets/heartbeat"
            [[alerting.receivers]]
            type = "webhook"
            name = "hook"
            url_file = "/run/secrets/hook"
            [[alerting.receivers]]
            type = "ntfy"
            name = "phone"
            url_file = "/run/secrets/topic"
            "#,
        );
        let receivers = am["receivers"].as_sequence().unwrap();
        let config = |i: usize| &receivers[i]["webhook_configs"][0];
        for (i, file) in [
            (1, "/run/secrets/heartbeat"),
            (2, "/run/secrets/hook"),
            (3, "/run/secrets/topic"),
        ] {
            assert_eq!(config(i)["url_file"].as_str(), Some(file));
            assert!(config(i)["url"].is_null());
        }
        assert_eq!(
            am["route"]["routes"][0]["receiver"].as_str(),
            Some("watchdog")
        );
        // ntfy's templates travel as headers, the same text as the query.
        let headers = &config(3)["http_config"]["http_headers"];
        assert_eq!(headers["X-Template"]["values"][0].as_str(), Some("1"));
        assert_eq!(headers["X-Title"]["values"][0].as_str(), Some(NTFY_TITLE));
        let message = headers["X-Message"]["values"][0].as_str().unwrap();
        assert_eq!(message, NTFY_MESSAGE);
        assert!(
            message.ends_with("{{.annotations.description}}\\n\\n{{end}}"),
            "{message}"
        );
        assert!(!message.contains('\n'), "no raw newline in a header");
        assert!(config(3)["http_config"]["authorization"].is_null());
    }

    /// With the topic URL in a file, each severity variant carries the same
    /// settings as the inline URL's query, as ntfy headers.
    #[test]
    fn ntfy_url_file_variants_carry_the_query_settings_as_headers() {
        let inline = rendered(&format!(
            r#"
            alerting.default_receivers = ["phone"]
            alerting.external_url = "http://monitor.lan"
            {RECEIVERS}
            "#
        ));
        let from_file = rendered(
            r#"
            alerting.default_receivers = ["phone"]
            alerting.external_url = "http://monitor.lan"
            [[alerting.receivers]]
            type = "ntfy"
            name = "phone"
            url_file = "/run/secrets/topic"
            token_file = "/run/secrets/ntfy"
            "#,
        );
        let by_name = |am: &Value, name: &str| {
            am["receivers"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|r| r["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("no receiver {name}"))
                .clone()
        };
        let header_of = |query: &str| match query {
            "m" => "X-Message",
            "p" => "X-Priority",
            "t" => "X-Title",
            "ta" => "X-Tags",
            "tpl" => "X-Template",
            "click" => "X-Click",
            other => panic!("unexpected ntfy parameter {other}"),
        };
        for name in ["phone", "phone/critical", "phone/warning"] {
            let query = ntfy_query(&by_name(&inline, name));
            let config = &by_name(&from_file, name)["webhook_configs"][0];
            assert_eq!(config["url_file"].as_str(), Some("/run/secrets/topic"));
            assert!(config["url"].is_null());
            let http = &config["http_config"];
            assert_eq!(
                http["authorization"]["credentials_file"].as_str(),
                Some("/run/secrets/ntfy")
            );
            let headers: BTreeMap<String, String> = http["http_headers"]
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    assert_eq!(v["values"].as_sequence().unwrap().len(), 1);
                    (
                        k.as_str().unwrap().to_string(),
                        v["values"][0].as_str().unwrap().replace("\\n", "\n"),
                    )
                })
                .collect();
            let expected: BTreeMap<String, String> = query
                .iter()
                .map(|(k, v)| (header_of(k).to_string(), v.clone()))
                .collect();
            assert_eq!(headers, expected, "{name}");
            assert_eq!(expected.len(), 6, "{name}: {expected:?}");
        }
        assert_eq!(
            by_name(&from_file, "phone/critical")["webhook_configs"][0]["http_config"]
                ["http_headers"]["X-Priority"]["values"][0]
                .as_str(),
            Some("5")
        );
    }

    #[test]
    fn email_password_stays_in_a_file() {
        let am = rendered(
            r#"
            alerting.default_receivers = ["mail"]
            [[alerting.receivers]]
            type = "email"
            name = "mail"
            to = "me@example.org"
            from = "lab@example.org"
            smarthost = "smtp.example.org:587"
            username = "lab"
            password_file = "/run/secrets/smtp"
            "#,
        );
        assert_eq!(am["route"]["receiver"].as_str(), Some("mail"));
        let email = &am["receivers"][1]["email_configs"][0];
        assert_eq!(
            email["auth_password_file"].as_str(),
            Some("/run/secrets/smtp")
        );
        assert!(email["auth_password"].is_null());
        assert_eq!(email["require_tls"].as_bool(), Some(true));
    }

    #[test]
    fn every_inhibition_rule_is_rendered_in_order() {
        let am = rendered("");
        let rules = am["inhibit_rules"].as_sequence().unwrap();
        assert_eq!(rules.len(), inhibitions::RULES.len());
        let strings = |v: &Value| -> Vec<String> {
            v.as_sequence()
                .map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        for (got, want) in rules.iter().zip(inhibitions::RULES) {
            assert_eq!(
                strings(&got["source_matchers"]),
                want.source,
                "{}",
                want.name
            );
            assert_eq!(
                strings(&got["target_matchers"]),
                want.target,
                "{}",
                want.name
            );
            assert_eq!(strings(&got["equal"]), want.equal, "{}", want.name);
        }
    }

    #[test]
    fn undefined_receivers_are_an_error() {
        let cfg: Config = toml::from_str(r#"alerting.default_receivers = ["ghost"]"#).unwrap();
        let err = render(&Plan::new(&cfg), &mut Tree::default()).unwrap_err();
        assert!(err.to_string().contains("\"ghost\""), "{err}");
    }
}
