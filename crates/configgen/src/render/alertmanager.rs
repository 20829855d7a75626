//! alertmanager/alertmanager.yml: the route tree, receivers and inhibitions.
//!
//! Route tree, first match wins:
//! 1. `alertname="Watchdog"` goes to the heartbeat webhook (alerting.watchdog_url),
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
//! refuses it when alertmanager.version is older). docs/secrets.md says why.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

use super::{yaml, Tree};
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

#[derive(Serialize)]
struct ReceiverYml {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    email_configs: Vec<EmailConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhook_configs: Vec<WebhookConfig>,
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
    source_matchers: Vec<String>,
    target_matchers: Vec<String>,
    equal: Vec<String>,
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

    let has_watchdog = alerting.watchdog_url.is_some() || alerting.watchdog_url_file.is_some();
    let mut routes = vec![watchdog_route(has_watchdog)];
    for (severity, receivers) in &alerting.routes {
        let matchers = vec![format!("severity=\"{severity}\"")];
        routes.extend(fan_out(matchers, receivers));
    }
    let root_receiver = match alerting.default_receivers.as_slice() {
        [] => NULL_RECEIVER.to_string(),
        [only] => only.clone(),
        several => {
            routes.extend(fan_out(Vec::new(), several));
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
        email_configs: Vec::new(),
        webhook_configs: Vec::new(),
    }];
    if has_watchdog {
        receivers.push(ReceiverYml {
            name: WATCHDOG_RECEIVER.into(),
            email_configs: Vec::new(),
            webhook_configs: vec![WebhookConfig::to(
                &alerting.watchdog_url,
                &alerting.watchdog_url_file,
                false,
            )],
        });
    }
    receivers.extend(alerting.receivers.iter().map(receiver));

    let doc = AlertmanagerYml {
        route,
        receivers,
        inhibit_rules: vec![InhibitRule {
            source_matchers: vec!["severity=\"critical\"".into()],
            target_matchers: vec!["severity=\"warning\"".into()],
            equal: vec!["alertname".into(), "instance".into()],
        }],
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

/// One child route per receiver, all with the same matchers; every one but the
/// last continues so that each receiver is told. No receivers: a route to the
/// null receiver, so that the alerts stop there.
fn fan_out(matchers: Vec<String>, receivers: &[String]) -> Vec<Route> {
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
            ..Route::default()
        })
        .collect()
}

fn receiver(r: &Receiver) -> ReceiverYml {
    let mut out = ReceiverYml {
        name: r.name().into(),
        email_configs: Vec::new(),
        webhook_configs: Vec::new(),
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
        }),
        Receiver::Webhook(w) => {
            out.webhook_configs
                .push(WebhookConfig::to(&w.url, &w.url_file, w.send_resolved))
        }
        Receiver::Ntfy(n) => {
            let mut config = WebhookConfig::to(&n.url, &n.url_file, n.send_resolved);
            let mut http = HttpConfig {
                authorization: n.token_file.as_ref().map(|f| Authorization {
                    kind: "Bearer",
                    credentials_file: f.clone(),
                }),
                ..HttpConfig::default()
            };
            match &mut config.url {
                Some(url) => *url = ntfy_url(url),
                // The URL is only known at run time: the templates go in
                // headers, which ntfy reads like the query parameters.
                None => http.http_headers = ntfy_headers(),
            }
            if http.authorization.is_some() || !http.http_headers.is_empty() {
                config.http_config = Some(http);
            }
            out.webhook_configs.push(config)
        }
    }
    out
}

/// ntfy (2.10+) turns a JSON webhook body into a readable notification when
/// asked for templating (`tpl=1`) with Go templates for the title (`t`) and
/// message (`m`), evaluated against Alertmanager's webhook payload.
const NTFY_TEMPLATE: &str = "1";
const NTFY_TITLE: &str = "{{.status}}: {{.commonLabels.alertname}}";
/// One line per alert; `\n` is the newline escape ntfy also honours in headers.
const NTFY_MESSAGE: &str = "{{range .alerts}}[{{.status}}] {{.labels.alertname}} on {{.labels.instance}}: {{.annotations.summary}}\\n{{end}}";

/// The topic URL with the templates as query parameters.
fn ntfy_url(topic_url: &str) -> String {
    let message = NTFY_MESSAGE.replace("\\n", "\n");
    let params = [
        ("m", message.as_str()),
        ("t", NTFY_TITLE),
        ("tpl", NTFY_TEMPLATE),
    ];
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = if topic_url.contains('?') { '&' } else { '?' };
    format!("{topic_url}{sep}{query}")
}

/// The same templates as headers, for a topic URL read from a file.
fn ntfy_headers() -> BTreeMap<&'static str, HeaderValues> {
    [
        ("X-Message", NTFY_MESSAGE),
        ("X-Title", NTFY_TITLE),
        ("X-Template", NTFY_TEMPLATE),
    ]
    .into_iter()
    .map(|(name, value)| {
        (
            name,
            HeaderValues {
                values: vec![value.into()],
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

    #[test]
    fn ntfy_gets_templates_and_a_token_file() {
        let am = rendered(RECEIVERS);
        let phone = &am["receivers"][2]["webhook_configs"][0];
        let url = url::Url::parse(phone["url"].as_str().unwrap()).unwrap();
        assert_eq!(url.path(), "/topic");
        let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(query.len(), 3, "{query:?}");
        assert!(query["m"].starts_with("{{range .alerts}}[{{.status}}] "));
        assert_eq!(query["t"], "{{.status}}: {{.commonLabels.alertname}}");
        assert_eq!(query["tpl"], "1");
        let auth = &phone["http_config"]["authorization"];
        assert_eq!(auth["type"].as_str(), Some("Bearer"));
        assert_eq!(auth["credentials_file"].as_str(), Some("/run/secrets/ntfy"));
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
        assert!(
            message.ends_with("{{.annotations.summary}}\\n{{end}}"),
            "{message}"
        );
        assert!(config(3)["http_config"]["authorization"].is_null());
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
    fn critical_inhibits_warning_of_the_same_alert_and_instance() {
        let am = rendered("");
        let rule = &am["inhibit_rules"][0];
        assert_eq!(
            rule["source_matchers"][0].as_str(),
            Some("severity=\"critical\"")
        );
        assert_eq!(
            rule["target_matchers"][0].as_str(),
            Some("severity=\"warning\"")
        );
        assert_eq!(rule["equal"].as_sequence().unwrap().len(), 2);
    }

    #[test]
    fn undefined_receivers_are_an_error() {
        let cfg: Config = toml::from_str(r#"alerting.default_receivers = ["ghost"]"#).unwrap();
        let err = render(&Plan::new(&cfg), &mut Tree::default()).unwrap_err();
        assert!(err.to_string().contains("\"ghost\""), "{err}");
    }
}
