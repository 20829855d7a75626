//! A checker for the subset of TraceQL the dashboards use (Grafana Tempo docs,
//! "TraceQL > Construct a TraceQL query"). Tempo is not packaged for Debian, so
//! the queries cannot be sent to a real one here; this reads them by the
//! documented grammar instead:
//!
//! - spanset filters `{ condition }` (or `{}`), combined with `&&` and `||`;
//! - conditions `field op value`, joined by `&&` / `||`, in parentheses or not;
//! - fields: scoped attributes (`resource.service.name`, `span.http.route`),
//!   unscoped ones (`.http.route`) and the intrinsics `name`, `status`, `kind`,
//!   `duration`, `statusMessage`, `rootName`, `rootServiceName`, `traceDuration`;
//! - operators `=`, `!=`, `=~`, `!~`, `>`, `>=`, `<`, `<=`;
//! - values: double-quoted strings (regexes compiled as RE2 with the `regex`
//!   crate, as Go's regexp in Tempo), numbers, durations (`150ms`), `true`,
//!   `false`, and the status and kind keywords.

use std::ops::{Deref, DerefMut};

use crate::cursor::Cursor;
pub use crate::cursor::Error;

const INTRINSICS: &[&str] = &[
    "name",
    "status",
    "kind",
    "duration",
    "statusMessage",
    "rootName",
    "rootServiceName",
    "traceDuration",
];
const SCOPES: &[&str] = &["resource", "span"];
const KEYWORDS: &[&str] = &[
    "true",
    "false",
    "ok",
    "error",
    "unset",
    "server",
    "client",
    "producer",
    "consumer",
    "internal",
    "unspecified",
];
const OPERATORS: &[&str] = &["=~", "!~", "!=", ">=", "<=", "=", ">", "<"];

/// Check one query (Grafana variables already replaced by values).
pub fn check(query: &str) -> Result<(), Error> {
    let mut p = Parser(Cursor::new(query));
    p.spansets()?;
    p.ws();
    if p.i < p.s.len() {
        return p.err(format!("unexpected {:?}", p.rest()));
    }
    Ok(())
}

struct Parser(Cursor);

impl Deref for Parser {
    type Target = Cursor;
    fn deref(&self) -> &Cursor {
        &self.0
    }
}

impl DerefMut for Parser {
    fn deref_mut(&mut self) -> &mut Cursor {
        &mut self.0
    }
}

impl Parser {
    fn spansets(&mut self) -> Result<(), Error> {
        loop {
            self.expect("{")?;
            if !self.eat("}") {
                self.conditions()?;
                self.expect("}")?;
            }
            if !(self.eat("&&") || self.eat("||")) {
                return Ok(());
            }
        }
    }

    fn conditions(&mut self) -> Result<(), Error> {
        loop {
            if self.eat("(") {
                self.conditions()?;
                self.expect(")")?;
            } else {
                self.condition()?;
            }
            if !(self.eat("&&") || self.eat("||")) {
                return Ok(());
            }
        }
    }

    fn condition(&mut self) -> Result<(), Error> {
        self.field()?;
        let Some(op) = OPERATORS.iter().find(|op| self.eat(op)) else {
            return self.err(format!("expected an operator, found {:?}", self.rest()));
        };
        let regex = op.contains('~');
        self.ws();
        match self.s.get(self.i) {
            Some('"') => {
                let text = self.string()?;
                if regex {
                    if let Err(e) = regex::Regex::new(&text) {
                        return self.err(format!("bad regex {text:?}: {e}"));
                    }
                }
                Ok(())
            }
            _ if regex => self.err("a regex operator needs a string"),
            _ => self.value(),
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            self.i += 1;
        }
        self.s[start..self.i].iter().collect()
    }

    fn field(&mut self) -> Result<(), Error> {
        let start = self.i;
        let word = self.word();
        let ok = match word.split_once('.') {
            // `.http.route`: any scope.
            Some(("", attr)) => !attr.is_empty(),
            Some((scope, attr)) => SCOPES.contains(&scope) && !attr.is_empty(),
            None => INTRINSICS.contains(&word.as_str()),
        };
        if ok && !word.ends_with('.') {
            Ok(())
        } else {
            self.i = start;
            self.err(format!("not an attribute or intrinsic: {word:?}"))
        }
    }

    fn value(&mut self) -> Result<(), Error> {
        let start = self.i;
        let word = self.word();
        let number = word.trim_end_matches(['n', 'u', 'µ', 'm', 's', 'h']);
        if KEYWORDS.contains(&word.as_str())
            || (!number.is_empty() && number.parse::<f64>().is_ok())
        {
            return Ok(());
        }
        self.i = start;
        self.err(format!("expected a value, found {:?}", self.rest()))
    }

    fn string(&mut self) -> Result<String, Error> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.s.get(self.i) {
                None => return self.err("unterminated string"),
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    match self.s.get(self.i + 1) {
                        Some(c @ ('"' | '\\')) => out.push(*c),
                        other => {
                            return self.err(format!(
                                "unknown escape \\{}",
                                other.copied().unwrap_or(' ')
                            ))
                        }
                    }
                    self.i += 2;
                }
                Some(c) => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_subset() {
        for q in [
            "{}",
            r#"{ resource.service.name = "api" }"#,
            r#"{ resource.service.name =~ ".+" }"#,
            r#"{ .http.route = "/items/{id}" && span.http.response.status_code >= 500 }"#,
            r#"{ status = error || (duration > 150ms && kind = server) }"#,
            r#"{ name = "GET /" } && { resource.service.name != "db" }"#,
        ] {
            check(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn rejects_what_tempo_rejects() {
        for (q, needle) in [
            (r#"resource.service.name = "api""#, "expected \"{\""),
            (r#"{ resource.service.name = "api" "#, "expected \"}\""),
            (r#"{ service.name = "api" }"#, "not an attribute"),
            (r#"{ resource.service.name == "api" }"#, "expected a value"),
            (r#"{ resource.service.name =~ "(" }"#, "bad regex"),
            (r#"{ resource.service.name = api }"#, "expected a value"),
            (r#"{ .a = "x" } junk"#, "unexpected"),
        ] {
            let e = check(q).unwrap_err().to_string();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }
}
