//! grafana/grafana.ini: where Grafana keeps its files, where it listens and
//! under which URL, who may log in and how (admin, SMTP, OpenID Connect),
//! with anonymous access, sign-up and phoning home off.
//!
//! Secrets are never written here: every one is `$__file{PATH}`, which
//! Grafana replaces at start with the file's contents (whitespace trimmed).

use anyhow::{bail, Result};
use url::Url;

use crate::model::{Config, Grafana};
use crate::plan::Plan;
use crate::render::generated_notice;

/// The root URL Grafana derives from protocol, domain and port when none is given.
pub const DERIVED_ROOT_URL: &str = "%(protocol)s://%(domain)s:%(http_port)s/";

/// `[paths]`: where Grafana keeps its state and finds its provisioning. The
/// same values go into the GF_PATHS_* environment, which the official image
/// sets to its own defaults and which would otherwise win over the file.
pub fn paths(cfg: &Config) -> [(&'static str, String); 4] {
    let data = cfg.grafana.data_dir.trim_end_matches('/');
    let config_dir = cfg.deploy.config_dir.trim_end_matches('/');
    [
        ("data", data.to_string()),
        ("logs", format!("{data}/log")),
        ("plugins", format!("{data}/plugins")),
        ("provisioning", format!("{config_dir}/grafana/provisioning")),
    ]
}

/// Every secret file grafana.ini names, with the key that reads it.
pub fn secret_files(g: &Grafana) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let Some(f) = &g.admin_password_file {
        out.push(("security.admin_password", f.as_str()));
    }
    if let Some(f) = &g.secret_key_file {
        out.push(("security.secret_key", f.as_str()));
    }
    if let Some(f) = g.smtp.as_ref().and_then(|s| s.password_file.as_ref()) {
        out.push(("smtp.password", f.as_str()));
    }
    if let Some(o) = &g.oidc {
        out.push((
            "auth.generic_oauth.client_secret",
            o.client_secret_file.as_str(),
        ));
    }
    out
}

pub fn render(plan: &Plan) -> Result<String> {
    let cfg = plan.cfg;
    let g = &cfg.grafana;
    let mut ini = Ini::new(&generated_notice(plan));
    let file = |path: &str| format!("$__file{{{path}}}");

    let mut section = ini.section("paths");
    for (key, value) in paths(cfg) {
        section.set(key, value);
    }

    // A configured root URL is checked by validation; its scheme decides the
    // cookies' Secure flag and its path whether Grafana serves from a sub-path.
    let root = g.root_url.as_deref().and_then(|u| Url::parse(u).ok());
    let sub_path = root.as_ref().is_some_and(|u| u.path() != "/");
    let https = root.as_ref().is_some_and(|u| u.scheme() == "https");
    let mut server = ini.section("server");
    server.set("protocol", "http");
    server.set("http_addr", &g.listen_address);
    server.set("http_port", g.port.to_string());
    server.set("domain", &g.domain);
    server.set(
        "root_url",
        g.root_url.as_deref().unwrap_or(DERIVED_ROOT_URL),
    );
    server.set("serve_from_sub_path", sub_path.to_string());

    let mut security = ini.section("security");
    security.set("admin_user", &g.admin_user);
    if let Some(f) = &g.admin_password_file {
        security.set("admin_password", file(f));
    }
    if let Some(f) = &g.secret_key_file {
        security.set("secret_key", file(f));
    }
    security.set("disable_gravatar", "true");
    security.set("cookie_secure", https.to_string());
    security.set("cookie_samesite", "lax");

    ini.section("users").set("allow_sign_up", "false");
    ini.section("auth.anonymous").set("enabled", "false");
    let mut analytics = ini.section("analytics");
    analytics.set("reporting_enabled", "false");
    analytics.set("check_for_updates", "false");
    analytics.set("check_for_plugin_updates", "false");
    // The service manager (journald, docker) keeps the log.
    ini.section("log").set("mode", "console");

    if let Some(s) = &g.smtp {
        let mut smtp = ini.section("smtp");
        smtp.set("enabled", "true");
        smtp.set("host", &s.host);
        if let Some(user) = &s.user {
            smtp.set("user", user);
        }
        if let Some(f) = &s.password_file {
            smtp.set("password", file(f));
        }
        smtp.set("from_address", &s.from_address);
    }

    if let Some(o) = &g.oidc {
        let mut oauth = ini.section("auth.generic_oauth");
        oauth.set("enabled", "true");
        oauth.set("name", &o.name);
        oauth.set("client_id", &o.client_id);
        oauth.set("client_secret", file(&o.client_secret_file));
        oauth.set("scopes", o.scopes.join(" "));
        oauth.set("auth_url", &o.auth_url);
        oauth.set("token_url", &o.token_url);
        oauth.set("api_url", &o.api_url);
        oauth.set("use_pkce", o.use_pkce.to_string());
        oauth.set("allow_sign_up", o.allow_sign_up.to_string());
        if let Some(path) = &o.role_attribute_path {
            oauth.set("role_attribute_path", path);
        }
    }
    ini.finish()
}

/// An INI document as Grafana's parser (go-ini) reads it: `key = value`
/// lines under `[section]` headers, `;` and `#` starting comments anywhere
/// in a line unless the value is wrapped in triple quotes.
struct Ini {
    header: String,
    sections: Vec<(String, Vec<(String, String)>)>,
}

struct Section<'a>(&'a mut Vec<(String, String)>);

impl Section<'_> {
    fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.push((key.into(), value.into()));
    }
}

impl Ini {
    fn new(notice: &str) -> Self {
        Ini {
            header: format!("; {notice}\n"),
            sections: Vec::new(),
        }
    }

    fn section(&mut self, name: &str) -> Section<'_> {
        let i = match self.sections.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.sections.push((name.into(), Vec::new()));
                self.sections.len() - 1
            }
        };
        Section(&mut self.sections[i].1)
    }

    fn finish(self) -> Result<String> {
        let mut out = self.header;
        for (name, keys) in &self.sections {
            out.push_str(&format!("\n[{name}]\n"));
            for (key, value) in keys {
                out.push_str(&format!(
                    "{key} = {}\n",
                    ini_value(value)
                        .map_err(|e| { anyhow::anyhow!("grafana.ini [{name}] {key}: {e}") })?
                ));
            }
        }
        Ok(out)
    }
}

/// A value as go-ini reads it back unchanged: as it is when nothing in it
/// has a meaning to the parser, else wrapped in triple quotes.
fn ini_value(value: &str) -> Result<String> {
    if value.contains(['\n', '\r']) {
        bail!("a value cannot span lines");
    }
    let needs_quotes =
        value.contains(['#', ';']) || value.starts_with(['"', '\'', '`']) || value.trim() != value;
    if !needs_quotes {
        return Ok(value.into());
    }
    if value.contains("\"\"\"") {
        bail!("a value cannot contain both a comment character and \"\"\"");
    }
    Ok(format!("\"\"\"{value}\"\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_as_they_are() {
        for v in [
            "%(protocol)s://%(domain)s:%(http_port)s/",
            "$__file{/run/secrets/grafana admin}",
            "contains(groups[*], 'admins') && 'Admin' || 'Viewer'",
            "a=b",
            "",
        ] {
            assert_eq!(ini_value(v).unwrap(), v);
        }
    }

    #[test]
    fn comment_characters_and_edge_quotes_are_triple_quoted() {
        assert_eq!(ini_value("a;b").unwrap(), "\"\"\"a;b\"\"\"");
        assert_eq!(ini_value("#x").unwrap(), "\"\"\"#x\"\"\"");
        assert_eq!(ini_value("'Viewer'").unwrap(), "\"\"\"'Viewer'\"\"\"");
        assert_eq!(ini_value(" padded").unwrap(), "\"\"\" padded\"\"\"");
    }

    #[test]
    fn values_go_ini_cannot_carry_are_refused() {
        assert!(ini_value("two\nlines").is_err());
        assert!(ini_value("#\"\"\"").is_err());
    }

    fn rendered(toml_text: &str) -> String {
        let cfg: Config = toml::from_str(toml_text).unwrap();
        render(&Plan::new(&cfg)).unwrap()
    }

    #[test]
    fn a_root_url_with_a_path_serves_from_that_sub_path_with_secure_cookies() {
        let ini = rendered("[grafana]\nroot_url = \"https://lab.example.org/grafana/\"\n");
        assert!(ini.contains("root_url = https://lab.example.org/grafana/\n"));
        assert!(ini.contains("serve_from_sub_path = true\n"));
        assert!(ini.contains("cookie_secure = true\n"));
        let plain = rendered("");
        assert!(plain.contains(&format!("root_url = {DERIVED_ROOT_URL}\n")));
        assert!(plain.contains("serve_from_sub_path = false\n"));
        assert!(plain.contains("cookie_secure = false\n"));
    }

    #[test]
    fn secrets_are_file_references() {
        let ini = rendered(
            r#"
            [grafana]
            admin_password_file = "/run/secrets/admin"
            secret_key_file = "/run/secrets/key"
            smtp = { host = "smtp.example.org:587", user = "lab", password_file = "/run/secrets/smtp", from_address = "lab@example.org" }
            oidc = { client_id = "grafana", client_secret_file = "/run/secrets/oidc", auth_url = "https://id.example.org/authorize", token_url = "https://id.example.org/token", api_url = "https://id.example.org/userinfo" }
            "#,
        );
        for (key, path) in [
            ("admin_password", "/run/secrets/admin"),
            ("secret_key", "/run/secrets/key"),
            ("password", "/run/secrets/smtp"),
            ("client_secret", "/run/secrets/oidc"),
        ] {
            assert!(
                ini.contains(&format!("\n{key} = $__file{{{path}}}\n")),
                "{key}\n{ini}"
            );
        }
        assert!(ini.contains("[auth.generic_oauth]\nenabled = true\nname = SSO\n"));
        assert!(ini.contains("scopes = openid profile email groups\n"));
    }
}
