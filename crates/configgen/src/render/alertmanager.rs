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
//! not end with a newline), authorization.credentials_file for ntfy tokens.

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
    url: String,
    send_resolved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_config: Option<HttpConfig>,
}

#[derive(Serialize)]
struct HttpConfig {
    authorization: Authorization,
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

    let mut routes = vec![watchdog_route(alerting.watchdog_url.is_some())];
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
    if let Some(url) = &alerting.watchdog_url {
        receivers.push(ReceiverYml {
            name: WATCHDOG_RECEIVER.into(),
            email_configs: Vec::new(),
            webhook_configs: vec![WebhookConfig {
                url: url.clone(),
                send_resolved: false,
                http_config: None,
            }],
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
        Receiver::Webhook(w) => out.webhook_configs.push(WebhookConfig {
            url: w.url.clone(),
            send_resolved: w.send_resolved,
            http_config: None,
        }),
        Receiver::Ntfy(n) => out.webhook_configs.push(WebhookConfig {
            url: ntfy_url(&n.url),
            send_resolved: n.send_resolved,
            http_config: n.token_file.as_ref().map(|f| HttpConfig {
                authorization: Authorization {
                    kind: "Bearer",
                    credentials_file: f.clone(),
                },
            }),
        }),
    }
    out
}

/// ntfy (2.10+) turns a JSON webhook body into a readable notification when
/// the publish URL carries `tpl=1` and Go templates for the title (`t`) and
/// message (`m`), evaluated against Alertmanager's webhook payload.
fn ntfy_url(topic_url: &str) -> String {
    const PARAMS: [(&str, &str); 3] = [
        (
            "m",
            "{{range .alerts}}[{{.status}}] {{.labels.alertname}} on {{.labels.instance}}: {{.annotations.summary}}\n{{end}}",
        ),
        ("t", "{{.status}}: {{.commonLabels.alertname}}"),
        ("tpl", "1"),
    ];
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(PARAMS)
        .finish();
    let sep = if topic_url.contains('?') { '&' } else { '?' };
    format!("{topic_url}{sep}{query}")
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
