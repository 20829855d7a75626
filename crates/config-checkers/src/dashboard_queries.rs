//! Reading rendered Grafana dashboards back: every query they run, their
//! variables, and the structural rules a provisioned dashboard must follow.
//! Tests use it to send every expression to a real Prometheus and every LogQL
//! query through [`crate::logql`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One query a dashboard runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub dashboard: String,
    /// Panel title, or `variable <name>` for a variable's query.
    pub panel: String,
    /// Uid of the datasource the query goes to.
    pub datasource: String,
    /// As written in the dashboard, Grafana variables included: PromQL or
    /// LogQL (`expr`), TraceQL (`query` of a Tempo target), or empty for a
    /// query without text (Tempo's service map).
    pub expr: String,
    /// The target's `queryType`, if any (Tempo: `traceql`, `serviceMap`).
    pub query_type: Option<String>,
}

fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn variables(dashboard: &Value) -> impl Iterator<Item = &Value> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Every query: panel targets, and query variables (`label_values(selector,
/// label)` yields its selector, the part a server evaluates).
pub fn queries(dashboard: &Value) -> Vec<Query> {
    let title = text(&dashboard["title"]);
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let ds = if target["datasource"]["uid"].is_string() {
                &target["datasource"]["uid"]
            } else {
                &panel["datasource"]["uid"]
            };
            out.push(Query {
                dashboard: title.clone(),
                panel: text(&panel["title"]),
                datasource: text(ds),
                expr: text(target.get("expr").unwrap_or(&target["query"])),
                query_type: target["queryType"].as_str().map(str::to_string),
            });
        }
    }
    for var in variables(dashboard).filter(|v| v["type"] == "query") {
        let query = match &var["query"] {
            Value::String(s) => s.clone(),
            other => text(&other["query"]),
        };
        let expr = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _)| selector.trim().to_string())
            .unwrap_or(query);
        out.push(Query {
            dashboard: title.clone(),
            panel: format!("variable {}", text(&var["name"])),
            datasource: text(&var["datasource"]["uid"]),
            expr,
            query_type: None,
        });
    }
    out
}

/// Each variable's value when the user leaves every selection on "All":
/// constants give their value, query variables their `allValue`, text boxes
/// their current text.
pub fn all_values(dashboard: &Value) -> BTreeMap<String, String> {
    variables(dashboard)
        .map(|v| {
            let value = match v["type"].as_str() {
                Some("constant") => text(&v["query"]),
                Some("query") => text(&v["allValue"]),
                _ => text(&v["current"]["value"]),
            };
            (text(&v["name"]), value)
        })
        .collect()
}

/// Replace Grafana variables (`$name`, `${name}`, `${name:format}`,
/// `[[name]]`) by the given values. Unknown variables are an error.
pub fn substitute(expr: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (name, len) = if let Some(braced) = rest.strip_prefix("${") {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 3)
        } else if let Some(bracketed) = rest.strip_prefix("[[") {
            let end = bracketed
                .find("]]")
                .ok_or_else(|| format!("unclosed [[ in {expr:?}"))?;
            (&bracketed[..end], end + 4)
        } else if let Some(plain) = rest.strip_prefix('$') {
            if plain.starts_with(|c: char| c.is_ascii_digit()) {
                // `$1`: a label_replace() capture group, which Grafana leaves as is.
                out.push('$');
                rest = plain;
                continue;
            }
            let name_len = plain
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(plain.len());
            (&plain[..name_len], name_len + 1)
        } else {
            out.push('[');
            rest = &rest[1..];
            continue;
        };
        if name.is_empty() {
            return Err(format!("a lone '$' in {expr:?}"));
        }
        let value = values
            .get(name)
            .ok_or_else(|| format!("unknown variable ${name} in {expr:?}"))?;
        out.push_str(value);
        rest = &rest[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Problems that would break file provisioning or a panel: missing or
/// duplicate ids, datasources that are not provisioned, import placeholders,
/// panels outside the 24-column grid or overlapping.
pub fn check(dashboard: &Value, provisioned_uids: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let title = text(&dashboard["title"]);
    for key in ["uid", "title"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{title}: no {key}"));
        }
    }
    let raw = dashboard.to_string();
    if raw.contains("${DS_") || dashboard.get("__inputs").is_some() {
        problems.push(format!(
            "{title}: import placeholders (__inputs / ${{DS_...}})"
        ));
    }
    let mut ids = BTreeSet::new();
    // The top level, and each collapsed row's panels (laid out as if opened),
    // are separate layers: boxes only overlap within one.
    let mut boxes: Vec<(String, usize, [i64; 4])> = Vec::new();
    let mut layer = 0;
    for panel in panels(dashboard) {
        let name = format!("{title} / {}", text(&panel["title"]));
        match panel["id"].as_i64() {
            None => problems.push(format!("{name}: no numeric id")),
            Some(id) if !ids.insert(id) => problems.push(format!("{name}: duplicate id {id}")),
            Some(_) => {}
        }
        let g = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or(-1));
        if x < 0 || y < 0 || w < 1 || h < 1 || x + w > 24 {
            problems.push(format!("{name}: bad gridPos {g}"));
        }
        let nested = panel["panels"].as_array().is_some_and(|p| !p.is_empty());
        let top_level = dashboard["panels"]
            .as_array()
            .is_some_and(|top| top.iter().any(|p| std::ptr::eq(p, panel)));
        if top_level {
            layer = 0;
        }
        for (other, other_layer, [ox, oy, ow, oh]) in &boxes {
            if *other_layer == layer && x < ox + ow && ox < &(x + w) && y < oy + oh && oy < &(y + h)
            {
                problems.push(format!("{name}: overlaps {other}"));
            }
        }
        boxes.push((name.clone(), layer, [x, y, w, h]));
        if panel["type"] == "row" {
            if nested != (panel["collapsed"] == true) {
                problems.push(format!(
                    "{name}: a collapsed row holds its panels, an open row none"
                ));
            }
            if nested {
                layer = boxes.len();
            }
            continue;
        }
        let mut uids = vec![&panel["datasource"]["uid"]];
        uids.extend(
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| &t["datasource"]["uid"]),
        );
        if panel["targets"].as_array().is_none_or(|t| t.is_empty()) {
            problems.push(format!("{name}: no queries"));
        }
        for uid in uids {
            match uid.as_str() {
                Some(u) if provisioned_uids.contains(&u) => {}
                _ => problems.push(format!("{name}: datasource uid {uid} is not provisioned")),
            }
        }
    }
    for var in variables(dashboard).filter(|v| v["type"] == "query") {
        let uid = &var["datasource"]["uid"];
        if !uid.as_str().is_some_and(|u| provisioned_uids.contains(&u)) {
            problems.push(format!(
                "{title}: variable {}: datasource uid {uid} is not provisioned",
                var["name"]
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitutes_every_variable_form() {
        let values: BTreeMap<String, String> = [
            ("job_node", "node"),
            ("instance", ".+"),
            ("__rate_interval", "1m"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            substitute(r#"rate(x{job="$job_node", instance=~"${instance:regex}"}[$__rate_interval]) [[job_node]]"#, &values).unwrap(),
            r#"rate(x{job="node", instance=~".+"}[1m]) node"#
        );
        assert_eq!(
            substitute(
                r#"label_replace(up, "pool", "$1", "device", "(.+)")"#,
                &values
            )
            .unwrap(),
            r#"label_replace(up, "pool", "$1", "device", "(.+)")"#
        );
        assert!(substitute("up{job=\"$nope\"}", &values)
            .unwrap_err()
            .contains("unknown variable $nope"));
    }

    #[test]
    fn finds_structural_problems() {
        let d = json!({
            "uid": "u", "title": "T",
            "panels": [
                {"id": 1, "type": "stat", "title": "a", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 4},
                 "datasource": {"uid": "prometheus"}, "targets": [{"expr": "up"}]},
                {"id": 1, "type": "stat", "title": "b", "gridPos": {"x": 6, "y": 2, "w": 20, "h": 4},
                 "datasource": {"uid": "${DS_PROMETHEUS}"}, "targets": [{"expr": "up"}]}
            ]
        });
        let problems = check(&d, &["prometheus"]).join("\n");
        for needle in [
            "duplicate id 1",
            "bad gridPos",
            "overlaps T / a",
            "is not provisioned",
            "import placeholders",
        ] {
            assert!(problems.contains(needle), "{needle} not in {problems}");
        }
        assert_eq!(queries(&d).len(), 2);
    }

    #[test]
    fn collapsed_rows_lay_out_their_panels_apart() {
        let stat = |id, y| {
            json!({"id": id, "type": "stat", "title": format!("s{id}"),
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 4},
            "datasource": {"uid": "prometheus"},
            "targets": [{"expr": "up", "datasource": {"uid": "prometheus"}}]})
        };
        let row = |id, y, collapsed, panels| {
            json!({"id": id, "type": "row", "title": format!("r{id}"),
            "collapsed": collapsed, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": panels})
        };
        // Two closed rows whose panels, opened, would cover the next row.
        let d = json!({"uid": "u", "title": "T", "panels": [
            row(1, 0, true, json!([stat(2, 1), stat(3, 5)])),
            row(4, 1, true, json!([stat(5, 2)])),
        ]});
        assert_eq!(check(&d, &["prometheus"]), Vec::<String>::new());
        assert_eq!(queries(&d).len(), 3);
        let d = json!({"uid": "u", "title": "T", "panels": [
            row(1, 0, false, json!([stat(2, 1)])),
            row(3, 1, true, json!([stat(4, 2), stat(5, 3)])),
        ]});
        let problems = check(&d, &["prometheus"]).join("\n");
        assert!(
            problems.contains("T / r1: a collapsed row holds its panels"),
            "{problems}"
        );
        assert!(problems.contains("T / s5: overlaps T / s4"), "{problems}");
    }
}
