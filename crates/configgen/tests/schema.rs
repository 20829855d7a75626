//! `configgen schema` describes what the loader accepts: the example (as
//! written, and fully expanded) is valid against it, and typical mistakes are
//! not. The validator below covers the JSON Schema subset schemars emits for
//! our model; it fails loudly on any keyword it does not know.

mod support;

use serde_json::{json, Value};

fn schema() -> Value {
    serde_json::from_str(&configgen::schema::json_schema()).unwrap()
}

fn example() -> Value {
    let text = std::fs::read_to_string(support::example()).unwrap();
    serde_json::to_value(toml::from_str::<toml::Value>(&text).unwrap()).unwrap()
}

/// Problems with `value` against `schema`, as "path: what" strings.
fn check(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    for key in obj.keys() {
        let known = [
            "$ref",
            "$schema",
            "$defs",
            "title",
            "description",
            "default",
            "type",
            "format",
            "properties",
            "additionalProperties",
            "required",
            "items",
            "oneOf",
            "anyOf",
            "const",
            "enum",
            "minimum",
            "maximum",
        ];
        assert!(
            known.contains(&key.as_str()),
            "validator lacks keyword {key}"
        );
    }
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("local ref");
        check(root, &root["$defs"][name], value, path, errors);
    }
    if let Some(types) = obj.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type"),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            errors.push(format!("{path}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(n) = value.as_f64() {
        if obj
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
            || obj
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
        {
            errors.push(format!("{path}: {n} out of range"));
        }
    }
    if let Some(c) = obj.get("const") {
        if c != value {
            errors.push(format!("{path}: {value} is not {c}"));
        }
    }
    if let Some(options) = obj.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!("{path}: {value} not in {options:?}"));
        }
    }
    if let (Some(items), Some(values)) = (obj.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            check(root, items, v, &format!("{path}[{i}]"), errors);
        }
    }
    if let Some(map) = value.as_object() {
        let props = obj.get("properties").and_then(Value::as_object);
        for (k, v) in map {
            match (
                props.and_then(|p| p.get(k)),
                obj.get("additionalProperties"),
            ) {
                (Some(s), _) => check(root, s, v, &format!("{path}.{k}"), errors),
                (None, Some(Value::Bool(false))) => errors.push(format!("{path}: unknown key {k}")),
                (None, Some(s)) => check(root, s, v, &format!("{path}.{k}"), errors),
                (None, None) => {}
            }
        }
        for r in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{path}: missing {r}"));
            }
        }
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(options) = obj.get(keyword).and_then(Value::as_array) {
            let fitting = options
                .iter()
                .filter(|o| {
                    let mut e = Vec::new();
                    check(root, o, value, path, &mut e);
                    e.is_empty()
                })
                .count();
            if fitting == 0 || (exactly_one && fitting > 1) {
                errors.push(format!("{path}: {fitting} of the {keyword} options fit"));
            }
        }
    }
}

fn errors(value: &Value) -> Vec<String> {
    let schema = schema();
    let mut errors = Vec::new();
    check(&schema, &schema, value, "", &mut errors);
    errors
}

#[test]
fn the_example_is_valid_as_written_and_expanded() {
    assert_eq!(errors(&example()), Vec::<String>::new());
    let cfg: configgen::model::Config = serde_json::from_value(example()).unwrap();
    assert_eq!(
        errors(&serde_json::to_value(&cfg).unwrap()),
        Vec::<String>::new()
    );
    let defaults = serde_json::to_value(configgen::model::Config::default()).unwrap();
    assert_eq!(errors(&defaults), Vec::<String>::new());
    assert_eq!(
        errors(&json!({"exporters": {"probe": {"listen_address": "0.0.0.0"}}})),
        Vec::<String>::new()
    );
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    let mut misspelled = example();
    misspelled["services"][0]["intervall"] = json!("15s");
    let mut wrong_type = example();
    wrong_type["prometheus"]["port"] = json!("9090");
    let mut out_of_range = example();
    out_of_range["prometheus"]["port"] = json!(70000);
    let mut bad_receiver = example();
    bad_receiver["alerting"]["receivers"][1]["type"] = json!("slack");
    let mut no_url = example();
    no_url["services"][0]["http"] = json!({});
    for (name, value) in [
        ("misspelled", misspelled),
        ("wrong type", wrong_type),
        ("out of range", out_of_range),
        ("bad receiver", bad_receiver),
        ("no url", no_url),
    ] {
        assert!(!errors(&value).is_empty(), "{name} passed the schema");
        assert!(
            serde_json::from_value::<configgen::model::Config>(value).is_err(),
            "{name} passed the loader"
        );
    }
}

/// Every `*_file` field, and every `*_files` list of strings, in the schema,
/// as `a.b[].c` paths.
fn file_fields(root: &Value, schema: &Value, path: &str, found: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("local ref");
        file_fields(root, &root["$defs"][name], path, found);
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let strings = sub["items"]["type"] == "string";
            if key.ends_with("_file") {
                found.push(at);
            } else if key.ends_with("_files") && strings {
                found.push(format!("{at}[]"));
            } else {
                file_fields(root, sub, &at, found);
            }
        }
    }
    if let Some(items) = schema.get("items") {
        file_fields(root, items, &format!("{path}[]"), found);
    }
    for key in ["anyOf", "oneOf"] {
        for sub in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            file_fields(root, sub, path, found);
        }
    }
}

/// `render` refuses an --out holding a file the config names, using
/// `Config::referenced_files`. A config setting every file field of the schema
/// to `/files/<its schema path>` must have each one returned: a new `*_file`
/// field fails here until this config sets it (and, if it is not a plain
/// serialized string, until `referenced_files` finds it).
#[test]
fn referenced_files_returns_every_file_field_of_the_schema() {
    let root = schema();
    let mut fields = Vec::new();
    file_fields(&root, &root, "", &mut fields);
    fields.sort();
    fields.dedup();
    assert!(fields.len() >= 6, "{fields:?}");
    let config: configgen::model::Config = toml::from_str(
        r#"
        [alerting]
        extra_rule_files = ["/files/alerting.extra_rule_files[]"]
        watchdog_url_file = "/files/alerting.watchdog_url_file"
        [[alerting.receivers]]
        type = "email"
        name = "mail"
        to = "a@example.org"
        from = "b@example.org"
        smarthost = "smtp.example.org:587"
        password_file = "/files/alerting.receivers[].password_file"
        [[alerting.receivers]]
        type = "ntfy"
        name = "phone"
        url = "https://ntfy.sh/topic"
        token_file = "/files/alerting.receivers[].token_file"
        [[alerting.receivers]]
        type = "webhook"
        name = "hook"
        url_file = "/files/alerting.receivers[].url_file"
        [[alerting.receivers]]
        type = "telegram"
        name = "chat"
        bot_token_file = "/files/alerting.receivers[].bot_token_file"
        chat_id = 42
        [[alerting.receivers]]
        type = "discord"
        name = "channel"
        webhook_url_file = "/files/alerting.receivers[].webhook_url_file"
        [[alerting.receivers]]
        type = "pushover"
        name = "push"
        user_key_file = "/files/alerting.receivers[].user_key_file"
        token_file = "/files/alerting.receivers[].token_file"
        [grafana]
        admin_password_file = "/files/grafana.admin_password_file"
        secret_key_file = "/files/grafana.secret_key_file"
        smtp = { host = "smtp.example.org:587", user = "u", from_address = "g@example.org", password_file = "/files/grafana.smtp.password_file" }
        [grafana.oidc]
        client_id = "grafana"
        client_secret_file = "/files/grafana.oidc.client_secret_file"
        auth_url = "https://auth.example.org/authorize"
        token_url = "https://auth.example.org/token"
        api_url = "https://auth.example.org/userinfo"
        [[prometheus.scrape_configs]]
        job_name = "a"
        targets = ["a:1"]
        basic_auth = { username = "u", password_file = "/files/prometheus.scrape_configs[].basic_auth.password_file" }
        tls_config = { ca_file = "/files/prometheus.scrape_configs[].tls_config.ca_file", cert_file = "/files/prometheus.scrape_configs[].tls_config.cert_file", key_file = "/files/prometheus.scrape_configs[].tls_config.key_file" }
        [[prometheus.scrape_configs]]
        job_name = "b"
        targets = ["b:1"]
        bearer_token_file = "/files/prometheus.scrape_configs[].bearer_token_file"
        [[prometheus.remote_write]]
        url = "http://vm:8428/api/v1/write"
        basic_auth = { username = "u", password_file = "/files/prometheus.remote_write[].basic_auth.password_file" }
        [[prometheus.remote_write]]
        url = "http://vm:8428/api/v1/write"
        bearer_token_file = "/files/prometheus.remote_write[].bearer_token_file"
        "#,
    )
    .unwrap();
    // ntfy and pushover share the field path `token_file`: one entry each.
    let returned: Vec<String> = config
        .referenced_files()
        .into_iter()
        .map(|f| f.path)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for field in &fields {
        let expected = format!("/files/{field}");
        assert!(
            returned.contains(&expected),
            "schema field {field} is not returned by Config::referenced_files (set it to \
             {expected:?} in this test's config); returned: {returned:?}"
        );
    }
    assert_eq!(returned.len(), fields.len(), "{returned:?}");
}
