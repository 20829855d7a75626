//! A parser and checker for the subset of the Alloy configuration syntax that
//! configgen writes (Grafana Alloy docs, "Get started > Configuration syntax"):
//! blocks with an optional string label, attributes, strings, numbers, bools,
//! null, lists, objects, and references to component exports such as
//! `loki.write.default.receiver`. Function calls, operators and raw strings are
//! not part of the subset and are reported as errors.
//!
//! [`check`] parses a set of files loaded together (Alloy loads every `*.alloy`
//! file of a directory as one module) and verifies component names, argument
//! and block names against a table of the components used, label uniqueness,
//! and that every reference names an existing component and one of its exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A position in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Number(String),
    Bool(bool),
    Null,
    List(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    /// Dotted identifiers, e.g. `loki.write.default.receiver`.
    Ref(Vec<String>, Pos),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Attr {
        name: String,
        value: Expr,
        pos: Pos,
    },
    Block {
        name: String,
        label: Option<String>,
        body: Vec<Stmt>,
        pos: Pos,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

impl std::error::Error for Error {}

/// Parse one file.
pub fn parse(file: &str, text: &str) -> Result<Vec<Stmt>, Error> {
    let mut p = Parser {
        file,
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    let body = p.body(false)?;
    Ok(body)
}

struct Parser<'a> {
    file: &'a str,
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        Err(Error {
            file: self.file.to_string(),
            pos: self.pos(),
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Skips blanks and comments; with `newlines` false, stops at a newline.
    fn skip(&mut self, newlines: bool) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\n') if newlines => {
                    self.bump();
                }
                Some('/') if self.chars.get(self.i + 1) == Some(&'/') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                Some('/') if self.chars.get(self.i + 1) == Some(&'*') => {
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return self.err("unterminated block comment"),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> Result<String, Error> {
        let mut s = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            Some(c) => return self.err(format!("expected an identifier, found {c:?}")),
            None => return self.err("expected an identifier, found end of file"),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        Ok(s)
    }

    /// Statements until `}` (nested) or end of file (top level).
    fn body(&mut self, nested: bool) -> Result<Vec<Stmt>, Error> {
        let mut out = Vec::new();
        loop {
            self.skip(true)?;
            match self.peek() {
                None if nested => return self.err("missing '}' at end of file"),
                None => return Ok(out),
                Some('}') if nested => {
                    self.bump();
                    return Ok(out);
                }
                Some(_) => out.push(self.stmt()?),
            }
        }
    }

    fn stmt(&mut self) -> Result<Stmt, Error> {
        let pos = self.pos();
        let mut name = self.ident()?;
        while self.peek() == Some('.') {
            self.bump();
            name.push('.');
            name.push_str(&self.ident()?);
        }
        self.skip(false)?;
        match self.peek() {
            Some('=') if !name.contains('.') => {
                self.bump();
                self.skip(false)?;
                let value = self.expr()?;
                self.end_of_statement()?;
                Ok(Stmt::Attr { name, value, pos })
            }
            Some('=') => self.err(format!("attribute name {name:?} must not contain '.'")),
            Some('"') | Some('{') => {
                let label = if self.peek() == Some('"') {
                    let label_pos = self.pos();
                    let label = self.string()?;
                    if !is_ident(&label) {
                        return Err(Error {
                            file: self.file.to_string(),
                            pos: label_pos,
                            message: format!("block label {label:?} is not a valid identifier"),
                        });
                    }
                    self.skip(false)?;
                    Some(label)
                } else {
                    None
                };
                if self.bump() != Some('{') {
                    return self.err("expected '{' after block name");
                }
                let body = self.body(true)?;
                self.end_of_statement()?;
                Ok(Stmt::Block {
                    name,
                    label,
                    body,
                    pos,
                })
            }
            _ => self.err(format!("expected '=' or a block after {name:?}")),
        }
    }

    /// A statement ends at a newline, a comment, '}' or end of file.
    fn end_of_statement(&mut self) -> Result<(), Error> {
        self.skip(false)?;
        match self.peek() {
            None | Some('\n') | Some('}') => Ok(()),
            Some(c) => self.err(format!("expected a newline, found {c:?}")),
        }
    }

    fn string(&mut self) -> Result<String, Error> {
        let start = self.pos();
        self.bump(); // opening quote
        let mut s = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Err(Error {
                        file: self.file.to_string(),
                        pos: start,
                        message: "unterminated string".into(),
                    })
                }
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(c) => s.push(c),
                            None => return self.err(format!("bad \\u escape {hex:?}")),
                        }
                    }
                    other => return self.err(format!("unknown escape \\{}", other.unwrap_or(' '))),
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        let pos = self.pos();
        match self.peek() {
            Some('"') => Ok(Expr::Str(self.string()?)),
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let mut n = String::new();
                n.push(self.bump().unwrap_or('0'));
                while let Some(c) = self.peek() {
                    if c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' {
                        n.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                if n.parse::<f64>().is_err() {
                    return self.err(format!("bad number {n:?}"));
                }
                Ok(Expr::Number(n))
            }
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip(true)?;
                    if self.peek() == Some(']') {
                        self.bump();
                        return Ok(Expr::List(items));
                    }
                    items.push(self.expr()?);
                    self.skip(true)?;
                    match self.bump() {
                        Some(',') => {}
                        Some(']') => return Ok(Expr::List(items)),
                        _ => return self.err("expected ',' or ']' in list"),
                    }
                }
            }
            Some('{') => {
                self.bump();
                let mut fields = Vec::new();
                loop {
                    self.skip(true)?;
                    if self.peek() == Some('}') {
                        self.bump();
                        return Ok(Expr::Object(fields));
                    }
                    let key = if self.peek() == Some('"') {
                        self.string()?
                    } else {
                        self.ident()?
                    };
                    if fields.iter().any(|(k, _)| *k == key) {
                        return self.err(format!("duplicate object key {key:?}"));
                    }
                    self.skip(false)?;
                    if self.bump() != Some('=') {
                        return self.err(format!("expected '=' after object key {key:?}"));
                    }
                    self.skip(false)?;
                    fields.push((key, self.expr()?));
                    self.skip(true)?;
                    match self.bump() {
                        Some(',') => {}
                        Some('}') => return Ok(Expr::Object(fields)),
                        _ => return self.err("expected ',' or '}' in object"),
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut parts = vec![self.ident()?];
                while self.peek() == Some('.') {
                    self.bump();
                    parts.push(self.ident()?);
                }
                if self.peek() == Some('(') {
                    return self.err("function calls are not part of the checked subset");
                }
                Ok(match (parts.len(), parts[0].as_str()) {
                    (1, "true") => Expr::Bool(true),
                    (1, "false") => Expr::Bool(false),
                    (1, "null") => Expr::Null,
                    _ => Expr::Ref(parts, pos),
                })
            }
            Some(c) => self.err(format!("expected an expression, found {c:?}")),
            None => self.err("expected an expression, found end of file"),
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a component accepts and exports, from its reference page in the Alloy docs
/// ("Reference > Components"), cross-checked against the argument structs of
/// grafana/alloy (Aug 2026). Only the components configgen writes are listed,
/// and for each only the arguments and blocks of the checked subset.
struct Spec {
    name: &'static str,
    attrs: &'static [&'static str],
    required: &'static [&'static str],
    blocks: &'static [&'static str],
    required_blocks: &'static [&'static str],
    exports: &'static [&'static str],
}

const RELABEL_RULE: &[&str] = &[
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
];

const COMPONENTS: &[Spec] = &[
    Spec {
        name: "loki.source.journal",
        attrs: &[
            "forward_to",
            "format_as_json",
            "labels",
            "matches",
            "max_age",
            "path",
            "relabel_rules",
        ],
        required: &["forward_to"],
        blocks: &["legacy_position"],
        required_blocks: &[],
        exports: &[],
    },
    Spec {
        name: "loki.relabel",
        attrs: &["forward_to", "max_cache_size"],
        required: &["forward_to"],
        blocks: &["rule"],
        required_blocks: &[],
        exports: &["receiver", "rules"],
    },
    Spec {
        name: "discovery.docker",
        attrs: &[
            "host",
            "port",
            "host_networking_host",
            "match_first_network",
            "refresh_interval",
        ],
        required: &["host"],
        blocks: &[
            "filter",
            "basic_auth",
            "authorization",
            "oauth2",
            "tls_config",
        ],
        required_blocks: &[],
        exports: &["targets"],
    },
    Spec {
        name: "discovery.relabel",
        attrs: &["targets"],
        required: &["targets"],
        blocks: &["rule"],
        required_blocks: &[],
        exports: &["output", "rules"],
    },
    Spec {
        name: "loki.source.docker",
        attrs: &[
            "host",
            "targets",
            "forward_to",
            "labels",
            "relabel_rules",
            "refresh_interval",
        ],
        required: &["host", "targets", "forward_to"],
        blocks: &["http_client_config"],
        required_blocks: &[],
        exports: &[],
    },
    Spec {
        name: "local.file_match",
        attrs: &["path_targets", "sync_period", "ignore_older_than"],
        required: &["path_targets"],
        blocks: &[],
        required_blocks: &[],
        exports: &["targets"],
    },
    Spec {
        name: "loki.source.file",
        attrs: &[
            "targets",
            "forward_to",
            "encoding",
            "tail_from_end",
            "legacy_positions_file",
        ],
        required: &["targets", "forward_to"],
        blocks: &["decompression", "file_watch"],
        required_blocks: &[],
        exports: &[],
    },
    Spec {
        name: "loki.write",
        attrs: &["external_labels", "max_streams"],
        required: &[],
        blocks: &["endpoint", "wal"],
        required_blocks: &[],
        exports: &["receiver"],
    },
    Spec {
        name: "otelcol.receiver.otlp",
        attrs: &[],
        required: &[],
        blocks: &["grpc", "http", "output", "debug_metrics"],
        required_blocks: &["output"],
        exports: &[],
    },
    Spec {
        name: "otelcol.processor.batch",
        attrs: &[
            "timeout",
            "send_batch_size",
            "send_batch_max_size",
            "metadata_keys",
            "metadata_cardinality_limit",
        ],
        required: &[],
        blocks: &["output", "debug_metrics"],
        required_blocks: &["output"],
        exports: &["input"],
    },
    Spec {
        name: "otelcol.exporter.otlp",
        attrs: &["timeout"],
        required: &[],
        blocks: &[
            "client",
            "sending_queue",
            "retry_on_failure",
            "debug_metrics",
        ],
        required_blocks: &["client"],
        exports: &["input"],
    },
    Spec {
        name: "prometheus.scrape",
        attrs: &[
            "targets",
            "forward_to",
            "job_name",
            "scrape_interval",
            "scrape_timeout",
            "metrics_path",
            "scheme",
            "honor_labels",
            "honor_timestamps",
            "params",
            "sample_limit",
        ],
        required: &["targets", "forward_to"],
        blocks: &[
            "basic_auth",
            "authorization",
            "oauth2",
            "tls_config",
            "clustering",
        ],
        required_blocks: &[],
        exports: &[],
    },
    Spec {
        name: "prometheus.remote_write",
        attrs: &["external_labels"],
        required: &[],
        blocks: &["endpoint", "wal"],
        required_blocks: &[],
        exports: &["receiver"],
    },
];

/// Arguments of the nested blocks configgen writes, by block name.
const BLOCKS: &[(&str, &[&str])] = &[
    ("rule", RELABEL_RULE),
    (
        "endpoint",
        &[
            "url",
            "name",
            "remote_timeout",
            "headers",
            "bearer_token_file",
            "tenant_id",
            "batch_wait",
            "batch_size",
        ],
    ),
    (
        "grpc",
        &[
            "endpoint",
            "max_recv_msg_size",
            "transport",
            "include_metadata",
        ],
    ),
    (
        "http",
        &[
            "endpoint",
            "traces_url_path",
            "metrics_url_path",
            "logs_url_path",
            "include_metadata",
        ],
    ),
    ("output", &["traces", "metrics", "logs"]),
    ("basic_auth", &["username", "password", "password_file"]),
    (
        "authorization",
        &["type", "credentials", "credentials_file"],
    ),
    (
        "tls_config",
        &[
            "ca_file",
            "cert_file",
            "key_file",
            "server_name",
            "insecure_skip_verify",
            "min_version",
        ],
    ),
    (
        "client",
        &[
            "endpoint",
            "compression",
            "headers",
            "balancer_name",
            "authority",
            "auth",
        ],
    ),
    (
        "tls",
        &[
            "insecure",
            "insecure_skip_verify",
            "server_name",
            "ca_file",
            "cert_file",
            "key_file",
        ],
    ),
];

/// Parse and check files that Alloy loads together. Returns every problem found.
pub fn check(files: &[(&str, &str)]) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut components: BTreeMap<String, (&'static Spec, String, Pos)> = BTreeMap::new();
    let mut refs: Vec<(String, Vec<String>, Pos)> = Vec::new();
    for (file, text) in files {
        let stmts = match parse(file, text) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let err = |pos: Pos, message: String| Error {
            file: file.to_string(),
            pos,
            message,
        };
        for stmt in &stmts {
            let Stmt::Block {
                name,
                label,
                body,
                pos,
            } = stmt
            else {
                if let Stmt::Attr { name, pos, .. } = stmt {
                    errors.push(err(
                        *pos,
                        format!("attribute {name:?} outside of any block"),
                    ));
                }
                continue;
            };
            let Some(spec) = COMPONENTS.iter().find(|s| s.name == name) else {
                errors.push(err(*pos, format!("unknown component {name:?}")));
                continue;
            };
            let Some(label) = label else {
                errors.push(err(*pos, format!("component {name} needs a label")));
                continue;
            };
            let id = format!("{name}.{label}");
            if let Some((_, other, at)) = components.get(&id) {
                errors.push(err(
                    *pos,
                    format!(
                        "component {id} already defined at {other}:{}:{}",
                        at.line, at.col
                    ),
                ));
                continue;
            }
            components.insert(id.clone(), (spec, file.to_string(), *pos));
            for req in spec.required {
                let present = body
                    .iter()
                    .any(|s| matches!(s, Stmt::Attr { name, .. } if name == req));
                if !present {
                    errors.push(err(
                        *pos,
                        format!("{id}: missing required argument {req:?}"),
                    ));
                }
            }
            for req in spec.required_blocks {
                let present = body
                    .iter()
                    .any(|s| matches!(s, Stmt::Block { name, .. } if name == req));
                if !present {
                    errors.push(err(*pos, format!("{id}: missing required block {req:?}")));
                }
            }
            check_body(
                &id,
                body,
                spec.attrs,
                spec.blocks,
                &err,
                &mut errors,
                &mut refs,
                file,
            );
        }
    }
    for (file, parts, pos) in refs {
        if let Some(message) = resolve(&components, &parts) {
            errors.push(Error { file, pos, message });
        }
    }
    errors
}

#[allow(clippy::too_many_arguments)]
fn check_body(
    path: &str,
    body: &[Stmt],
    attrs: &[&str],
    blocks: &[&str],
    err: &dyn Fn(Pos, String) -> Error,
    errors: &mut Vec<Error>,
    refs: &mut Vec<(String, Vec<String>, Pos)>,
    file: &str,
) {
    let mut seen = BTreeSet::new();
    for stmt in body {
        match stmt {
            Stmt::Attr { name, value, pos } => {
                if !attrs.contains(&name.as_str()) {
                    errors.push(err(*pos, format!("{path}: unknown argument {name:?}")));
                }
                if !seen.insert(name.clone()) {
                    errors.push(err(*pos, format!("{path}: argument {name:?} set twice")));
                }
                collect_refs(value, file, refs);
            }
            Stmt::Block {
                name,
                label,
                body,
                pos,
            } => {
                if !blocks.contains(&name.as_str()) {
                    errors.push(err(*pos, format!("{path}: unknown block {name:?}")));
                    continue;
                }
                if label.is_some() {
                    errors.push(err(*pos, format!("{path}: block {name} takes no label")));
                }
                let inner = format!("{path} > {name}");
                match BLOCKS.iter().find(|(b, _)| b == name) {
                    Some((_, inner_attrs)) => {
                        // Only `client` nests a block (tls) in the subset.
                        let nested: &[&str] = if name == "client" { &["tls"] } else { &[] };
                        check_body(&inner, body, inner_attrs, nested, err, errors, refs, file);
                    }
                    None => errors.push(err(
                        *pos,
                        format!("{inner}: block not in the checked subset"),
                    )),
                }
            }
        }
    }
}

fn collect_refs(expr: &Expr, file: &str, refs: &mut Vec<(String, Vec<String>, Pos)>) {
    match expr {
        Expr::Ref(parts, pos) => refs.push((file.to_string(), parts.clone(), *pos)),
        Expr::List(items) => items.iter().for_each(|e| collect_refs(e, file, refs)),
        Expr::Object(fields) => fields.iter().for_each(|(_, e)| collect_refs(e, file, refs)),
        _ => {}
    }
}

/// None when `parts` is `<component>.<label>.<export>` of a defined component.
fn resolve(
    components: &BTreeMap<String, (&'static Spec, String, Pos)>,
    parts: &[String],
) -> Option<String> {
    let dotted = parts.join(".");
    if parts.len() < 3 {
        return Some(format!("{dotted}: not a component export reference"));
    }
    let (id, export) = (parts[..parts.len() - 1].join("."), &parts[parts.len() - 1]);
    match components.get(&id) {
        None => Some(format!("{dotted}: no component {id} is defined")),
        Some((spec, _, _)) if !spec.exports.contains(&export.as_str()) => Some(format!(
            "{dotted}: {} exports {:?}, not {export:?}",
            spec.name, spec.exports
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
// a comment
loki.write "default" {
  endpoint { url = "http://127.0.0.1:3100/loki/api/v1/push" }
  external_labels = { host = "nas", "weird key" = "x\"y", }
}
loki.source.journal "system" {
  forward_to = [loki.write.default.receiver]
  labels = {
    job = "systemd-journal",
  }
  max_age = "12h" /* trailing */
}
"#;

    #[test]
    fn accepts_the_subset() {
        assert_eq!(check(&[("a.alloy", GOOD)]), vec![]);
        let stmts = parse("a.alloy", GOOD).unwrap();
        assert_eq!(stmts.len(), 2);
    }

    fn first_error(text: &str) -> String {
        check(&[("a.alloy", text)])
            .first()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn reports_syntax_errors_with_positions() {
        assert_eq!(
            first_error("loki.write \"x\" {\n  endpoint { url = \"http://a }\n}\n"),
            "a.alloy:2:20: unterminated string"
        );
        assert!(first_error("loki.write \"x\" {\n").contains("missing '}'"));
        assert!(first_error("loki.write \"x\" { external_labels = [1 2] }")
            .contains("expected ',' or ']'"));
        assert!(first_error("loki.write \"a-b\" {}").contains("not a valid identifier"));
        assert!(
            first_error("loki.write \"x\" { external_labels = env(\"A\") }")
                .contains("function calls")
        );
    }

    #[test]
    fn reports_unknown_components_arguments_and_references() {
        assert!(first_error("loki.wirte \"x\" {}").contains("unknown component \"loki.wirte\""));
        assert!(first_error("loki.write \"x\" { max_stream = 1 }")
            .contains("unknown argument \"max_stream\""));
        let dangling = "loki.source.journal \"j\" { forward_to = [loki.write.other.receiver] }";
        assert!(first_error(dangling).contains("no component loki.write.other is defined"));
        let bad_export = format!(
            "{GOOD}\nloki.source.journal \"k\" {{ forward_to = [loki.write.default.input] }}"
        );
        assert!(first_error(&bad_export).contains("exports [\"receiver\"], not \"input\""));
        assert!(first_error("otelcol.exporter.otlp \"t\" {}")
            .contains("missing required block \"client\""));
        assert!(first_error("loki.source.journal \"j\" { labels = {} }")
            .contains("missing required argument \"forward_to\""));
        let twice = format!("{GOOD}\n{GOOD}");
        assert!(first_error(&twice).contains("already defined at a.alloy:3:1"));
    }
}
