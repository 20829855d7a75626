//! Reads grafana.ini the way Grafana's parser (go-ini) does, and checks it
//! against the keys Grafana 13 documents (conf/defaults.ini and "Configure
//! Grafana" in its docs) for the sections configgen writes, with the kind of
//! value each takes. Only for tests: configgen's own writer is in src.

use std::collections::BTreeMap;

pub type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// `[section]` -> key -> value. `;` and `#` start a comment anywhere in a
/// line unless the value is wrapped in triple quotes. Keys before the first
/// section, lines without `=` and repeated keys are errors.
pub fn parse(text: &str) -> Result<Sections, String> {
    let mut out = Sections::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let at = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with([';', '#']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or(format!("line {at}: unclosed section header"))?;
            if out.insert(name.to_string(), BTreeMap::new()).is_some() {
                return Err(format!("line {at}: section [{name}] appears twice"));
            }
            current = Some(name.to_string());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or(format!("line {at}: neither a section nor key = value"))?;
        let section = current
            .as_ref()
            .ok_or(format!("line {at}: key outside any section"))?;
        let value = value.trim();
        let value = match value
            .strip_prefix("\"\"\"")
            .and_then(|v| v.strip_suffix("\"\"\""))
        {
            Some(quoted) => quoted.to_string(),
            None => value
                .split(['#', ';'])
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        let keys = out.get_mut(section).unwrap();
        if keys.insert(key.trim().to_string(), value).is_some() {
            return Err(format!("line {at}: [{section}] {} set twice", key.trim()));
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Port,
    /// An absolute path.
    Path,
    /// `$__file{/absolute/path}`: a secret read at start.
    FileRef,
    /// http(s) URL, or the documented `%(...)s` interpolation of root_url.
    Url,
    Text,
    OneOf(&'static [&'static str]),
}

use Kind::*;

/// The documented keys of every section configgen writes.
pub const DOCUMENTED: &[(&str, &[(&str, Kind)])] = &[
    (
        "paths",
        &[
            ("data", Path),
            ("temp_data_lifetime", Text),
            ("logs", Path),
            ("plugins", Path),
            ("provisioning", Path),
        ],
    ),
    (
        "server",
        &[
            ("protocol", OneOf(&["http", "https", "h2", "socket"])),
            ("http_addr", Text),
            ("http_port", Port),
            ("domain", Text),
            ("enforce_domain", Bool),
            ("root_url", Url),
            ("serve_from_sub_path", Bool),
            ("router_logging", Bool),
            ("enable_gzip", Bool),
        ],
    ),
    (
        "security",
        &[
            ("disable_initial_admin_creation", Bool),
            ("admin_user", Text),
            ("admin_password", FileRef),
            ("admin_email", Text),
            ("secret_key", FileRef),
            ("disable_gravatar", Bool),
            ("cookie_secure", Bool),
            (
                "cookie_samesite",
                OneOf(&["lax", "strict", "none", "disabled"]),
            ),
            ("allow_embedding", Bool),
            ("strict_transport_security", Bool),
        ],
    ),
    (
        "users",
        &[
            ("allow_sign_up", Bool),
            ("allow_org_create", Bool),
            ("auto_assign_org", Bool),
            (
                "auto_assign_org_role",
                OneOf(&["Viewer", "Editor", "Admin"]),
            ),
        ],
    ),
    (
        "auth.anonymous",
        &[
            ("enabled", Bool),
            ("org_name", Text),
            ("org_role", OneOf(&["Viewer", "Editor", "Admin"])),
            ("hide_version", Bool),
        ],
    ),
    (
        "analytics",
        &[
            ("reporting_enabled", Bool),
            ("check_for_updates", Bool),
            ("check_for_plugin_updates", Bool),
            ("feedback_links_enabled", Bool),
        ],
    ),
    (
        "log",
        &[
            (
                "mode",
                OneOf(&["console", "file", "syslog", "console file"]),
            ),
            (
                "level",
                OneOf(&["debug", "info", "warn", "error", "critical"]),
            ),
        ],
    ),
    (
        "smtp",
        &[
            ("enabled", Bool),
            ("host", Text),
            ("user", Text),
            ("password", FileRef),
            ("skip_verify", Bool),
            ("from_address", Text),
            ("from_name", Text),
            ("startTLS_policy", Text),
        ],
    ),
    (
        "auth.generic_oauth",
        &[
            ("name", Text),
            ("icon", Text),
            ("enabled", Bool),
            ("allow_sign_up", Bool),
            ("client_id", Text),
            ("client_secret", FileRef),
            ("scopes", Text),
            ("email_attribute_path", Text),
            ("login_attribute_path", Text),
            ("name_attribute_path", Text),
            ("role_attribute_path", Text),
            ("role_attribute_strict", Bool),
            ("groups_attribute_path", Text),
            ("auth_url", Url),
            ("token_url", Url),
            ("api_url", Url),
            ("use_pkce", Bool),
            ("allow_assign_grafana_admin", Bool),
        ],
    ),
];

/// Every problem of `sections` against the documented keys and their kinds.
pub fn check(sections: &Sections) -> Vec<String> {
    let mut problems = Vec::new();
    for (section, keys) in sections {
        let Some((_, documented)) = DOCUMENTED.iter().find(|(s, _)| s == section) else {
            problems.push(format!("[{section}] is not a section configgen may write"));
            continue;
        };
        for (key, value) in keys {
            let Some((_, kind)) = documented.iter().find(|(k, _)| k == key) else {
                problems.push(format!("[{section}] {key} is not a documented key"));
                continue;
            };
            if let Err(why) = check_value(*kind, value) {
                problems.push(format!("[{section}] {key} = {value}: {why}"));
            }
        }
    }
    problems
}

fn check_value(kind: Kind, value: &str) -> Result<(), String> {
    let ok = match kind {
        Bool => value == "true" || value == "false",
        Port => value.parse::<u16>().is_ok_and(|p| p > 0),
        Path => value.starts_with('/'),
        FileRef => value
            .strip_prefix("$__file{/")
            .and_then(|v| v.strip_suffix('}'))
            .is_some_and(|p| !p.contains('}')),
        Url => {
            value == "%(protocol)s://%(domain)s:%(http_port)s/"
                || url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        }
        Text => !value.contains('$'),
        OneOf(allowed) => allowed.contains(&value),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("not a valid {kind:?}"))
    }
}
