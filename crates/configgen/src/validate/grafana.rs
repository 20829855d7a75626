//! `[grafana]`: the URL it is served under, its secret files, SMTP and
//! OpenID Connect login. Values end up in grafana.ini, whose parser would
//! cut a line at a newline and expand `$` references.

use super::Checker;
use crate::model::Grafana;

impl Checker {
    pub(super) fn grafana(&mut self, g: &Grafana) {
        self.ini_text("grafana.domain", &g.domain);
        if g.domain.trim().is_empty() || g.domain.contains(['/', ' ', ':']) {
            self.issue(
                "grafana.domain",
                format!(
                    "`{}` is not a domain name (no scheme, port or path)",
                    g.domain
                ),
            );
        }
        if let Some(root) = &g.root_url {
            self.ini_text("grafana.root_url", root);
            if let Some(url) = self.http_url("grafana.root_url", root) {
                if !url.path().ends_with('/') {
                    self.issue(
                        "grafana.root_url",
                        format!("`{root}` must end with '/' (Grafana builds its links from it)"),
                    );
                }
                if url.query().is_some() || url.fragment().is_some() {
                    self.issue("grafana.root_url", "must have no query or fragment");
                }
            }
        }
        if g.admin_user.trim().is_empty() {
            self.issue("grafana.admin_user", "must not be empty");
        }
        self.ini_text("grafana.admin_user", &g.admin_user);
        for (field, file) in [
            ("grafana.admin_password_file", &g.admin_password_file),
            ("grafana.secret_key_file", &g.secret_key_file),
        ] {
            if let Some(file) = file {
                self.grafana_secret(field, file);
            }
        }
        if let Some(s) = &g.smtp {
            self.host_port("grafana.smtp.host", &s.host);
            if !s.from_address.contains('@') {
                self.issue(
                    "grafana.smtp.from_address",
                    format!("`{}` is not an email address", s.from_address),
                );
            }
            self.ini_text("grafana.smtp.from_address", &s.from_address);
            if let Some(user) = &s.user {
                self.ini_text("grafana.smtp.user", user);
            }
            if let Some(file) = &s.password_file {
                self.grafana_secret("grafana.smtp.password_file", file);
            }
        }
        if let Some(o) = &g.oidc {
            for (field, value) in [("name", &o.name), ("client_id", &o.client_id)] {
                if value.trim().is_empty() {
                    self.issue(format!("grafana.oidc.{field}"), "must not be empty");
                }
                self.ini_text(&format!("grafana.oidc.{field}"), value);
            }
            self.grafana_secret("grafana.oidc.client_secret_file", &o.client_secret_file);
            for (field, value) in [
                ("auth_url", &o.auth_url),
                ("token_url", &o.token_url),
                ("api_url", &o.api_url),
            ] {
                self.ini_text(&format!("grafana.oidc.{field}"), value);
                self.http_url(&format!("grafana.oidc.{field}"), value);
            }
            if !o.scopes.iter().any(|s| s == "openid") {
                self.issue(
                    "grafana.oidc.scopes",
                    "OpenID Connect needs the `openid` scope",
                );
            }
            for (i, scope) in o.scopes.iter().enumerate() {
                if scope.is_empty() || scope.contains(char::is_whitespace) {
                    self.issue(
                        format!("grafana.oidc.scopes[{i}]"),
                        format!("`{scope}` is not a scope (one word each)"),
                    );
                }
            }
            if let Some(path) = &o.role_attribute_path {
                self.ini_text("grafana.oidc.role_attribute_path", path);
            }
            if g.secret_key_file.is_none() {
                self.issue(
                    "grafana.oidc",
                    "OIDC login stores users' tokens encrypted with Grafana's secret key: set grafana.secret_key_file (Grafana's built-in key is public)",
                );
            }
        }
    }

    /// A secret file for `$__file{...}`: the usual rules, and nothing that
    /// would end the reference or the line early.
    fn grafana_secret(&mut self, path: &str, value: &str) {
        self.secret_file(path, value);
        if value.contains(['}', '#', ';', '\n']) || value.trim() != value {
            self.issue(
                path,
                format!("`{value}`: a secret path for grafana.ini cannot contain '}}', '#', ';', a newline or surrounding spaces"),
            );
        }
    }

    /// Text copied into grafana.ini: one line, no `$` (Grafana would expand it).
    fn ini_text(&mut self, path: &str, value: &str) {
        if value.contains(['\n', '\r']) {
            self.issue(path, "must be a single line");
        } else if value.contains('$') {
            self.issue(
                path,
                "must not contain '$': Grafana expands $NAME, ${NAME} and $__file{...} in grafana.ini",
            );
        }
    }
}
