//! A checker for the subset of LogQL the dashboards use (Grafana Loki docs,
//! "Query > Log queries" and "Query > Metric queries"):
//!
//! - stream selectors `{label="v", other=~"re"}` with `=`, `!=`, `=~`, `!~`,
//!   at least one matcher that cannot match the empty string (Loki rejects the
//!   query otherwise);
//! - line filters `|=`, `!=`, `|~`, `!~` with double-quoted or backtick strings;
//! - parsers `| json`, `| logfmt`; label filters `| level=~"err.*"`,
//!   `| __error__=""`, numeric comparisons;
//! - range aggregations `count_over_time`, `rate`, `bytes_over_time`,
//!   `bytes_rate` over `[duration]`;
//! - vector aggregations `sum|avg|min|max|count [by|without (labels)] (...)`,
//!   with the grouping before or after the parenthesis;
//! - a metric query compared with a number (`... > 0`), as alerting rules of
//!   the Loki ruler write them.
//!
//! Regular expressions are compiled with the `regex` crate, whose syntax is
//! RE2's, like Go's `regexp` used by Loki.

use std::ops::{Deref, DerefMut};

use crate::cursor::Cursor;
pub use crate::cursor::Error;

/// What a valid query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Log lines.
    Log,
    /// Samples (a metric query).
    Metric,
}

/// Check one query (Grafana variables already replaced by values).
pub fn check(query: &str) -> Result<Kind, Error> {
    parse(query).map(|(kind, _)| kind)
}

/// A line filter: `|=`, `!=`, `|~` or `!~` with its (unescaped) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFilter {
    pub op: &'static str,
    pub text: String,
}

impl LineFilter {
    /// Whether a log line passes this filter, as Loki decides it.
    pub fn keeps(&self, line: &str) -> bool {
        match self.op {
            "|=" => line.contains(&self.text),
            "!=" => !line.contains(&self.text),
            // Loki's regex filters match anywhere in the line.
            "|~" => regex::Regex::new(&self.text).is_ok_and(|re| re.is_match(line)),
            _ => regex::Regex::new(&self.text).is_ok_and(|re| !re.is_match(line)),
        }
    }
}

/// The line filters of a valid query, in order.
pub fn line_filters(query: &str) -> Result<Vec<LineFilter>, Error> {
    parse(query).map(|(_, filters)| filters)
}

fn parse(query: &str) -> Result<(Kind, Vec<LineFilter>), Error> {
    let mut p = Parser {
        cursor: Cursor::new(query),
        filters: Vec::new(),
    };
    let kind = p.query()?;
    if kind == Kind::Metric {
        p.comparison()?;
    }
    p.ws();
    if p.i < p.s.len() {
        return p.err(format!("unexpected {:?}", p.rest()));
    }
    Ok((kind, p.filters))
}

const RANGE_FUNCTIONS: &[&str] = &["count_over_time", "rate", "bytes_over_time", "bytes_rate"];
const AGGREGATIONS: &[&str] = &["sum", "avg", "min", "max", "count"];

struct Parser {
    cursor: Cursor,
    filters: Vec<LineFilter>,
}

impl Deref for Parser {
    type Target = Cursor;
    fn deref(&self) -> &Cursor {
        &self.cursor
    }
}

impl DerefMut for Parser {
    fn deref_mut(&mut self) -> &mut Cursor {
        &mut self.cursor
    }
}

impl Parser {
    /// An optional `> 0`-style comparison with a number.
    fn comparison(&mut self) -> Result<(), Error> {
        let Some(op) = [">=", "<=", "==", "!=", ">", "<"]
            .into_iter()
            .find(|op| self.eat(op))
        else {
            return Ok(());
        };
        self.number(op)
    }

    fn number(&mut self, after: &str) -> Result<(), Error> {
        self.ws();
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.i += 1;
        }
        let n: String = self.s[start..self.i].iter().collect();
        if n.parse::<f64>().is_err() {
            return self.err(format!("expected a number after {after}"));
        }
        Ok(())
    }

    fn ident(&mut self) -> Result<String, Error> {
        self.ws();
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.i += 1;
        }
        let id: String = self.s[start..self.i].iter().collect();
        if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
            self.i = start;
            return self.err(format!("expected a name, found {:?}", self.rest()));
        }
        Ok(id)
    }

    fn peek_ident(&mut self) -> Option<String> {
        let save = self.i;
        let id = self.ident().ok();
        self.i = save;
        id
    }

    fn string(&mut self) -> Result<String, Error> {
        self.ws();
        match self.peek() {
            Some('`') => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|c| c != '`') {
                    self.i += 1;
                }
                if self.peek().is_none() {
                    return self.err("unterminated raw string");
                }
                let s = self.s[start..self.i].iter().collect();
                self.i += 1;
                Ok(s)
            }
            Some('"') => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return self.err("unterminated string"),
                        Some('"') => {
                            self.i += 1;
                            return Ok(out);
                        }
                        Some('\\') => {
                            self.i += 1;
                            match self.peek() {
                                Some(c @ ('"' | '\\')) => out.push(c),
                                Some('n') => out.push('\n'),
                                Some('t') => out.push('\t'),
                                other => {
                                    return self.err(format!(
                                        "unknown escape \\{} (write \\\\ for a backslash, or use a `raw` string)",
                                        other.unwrap_or(' ')
                                    ))
                                }
                            }
                            self.i += 1;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            _ => self.err(format!("expected a string, found {:?}", self.rest())),
        }
    }

    fn regex(&self, re: &str) -> Result<regex::Regex, Error> {
        regex::Regex::new(&format!("^(?:{re})$"))
            .or_else(|e| self.err(format!("bad regex {re:?}: {e}")))
    }

    fn query(&mut self) -> Result<Kind, Error> {
        self.ws();
        if self.peek() == Some('{') {
            self.log_query()?;
            return Ok(Kind::Log);
        }
        let name = self.ident()?;
        if RANGE_FUNCTIONS.contains(&name.as_str()) {
            self.expect("(")?;
            self.log_query()?;
            self.expect("[")?;
            self.duration()?;
            self.expect("]")?;
            self.expect(")")?;
            Ok(Kind::Metric)
        } else if AGGREGATIONS.contains(&name.as_str()) {
            let grouped = self.grouping()?;
            self.expect("(")?;
            if self.query()? != Kind::Metric {
                return self.err(format!("{name}() needs a metric query, not log lines"));
            }
            self.expect(")")?;
            if !grouped {
                self.grouping()?;
            }
            Ok(Kind::Metric)
        } else {
            self.err(format!("unknown function {name:?}"))
        }
    }

    /// `by (a, b)` or `without (a)`; false when absent.
    fn grouping(&mut self) -> Result<bool, Error> {
        let Some(word) = self.peek_ident() else {
            return Ok(false);
        };
        if word != "by" && word != "without" {
            return Ok(false);
        }
        self.ident()?;
        self.expect("(")?;
        if !self.eat(")") {
            loop {
                self.ident()?;
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        Ok(true)
    }

    fn duration(&mut self) -> Result<(), Error> {
        self.ws();
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.i += 1;
        }
        let text: String = self.s[start..self.i].iter().collect();
        let ok = !text.is_empty()
            && text
                .split_inclusive(|c: char| c.is_ascii_alphabetic())
                .all(|part| {
                    let unit_at = part.find(|c: char| c.is_ascii_alphabetic());
                    matches!(unit_at, Some(n) if n > 0 && part[..n].chars().all(|c| c.is_ascii_digit()))
                        && ["ms", "s", "m", "h", "d", "w", "y"]
                            .iter()
                            .any(|u| part.ends_with(u))
                });
        if !ok {
            self.i = start;
            return self.err(format!("bad duration {text:?}"));
        }
        Ok(())
    }

    fn log_query(&mut self) -> Result<(), Error> {
        self.selector()?;
        loop {
            self.ws();
            if let Some(op) = ["|=", "!=", "|~", "!~"].into_iter().find(|op| self.eat(op)) {
                let text = self.string()?;
                if op.contains('~') {
                    self.regex(&text)?;
                }
                self.filters.push(LineFilter { op, text });
            } else if self.eat("|") {
                self.stage()?;
            } else {
                return Ok(());
            }
        }
    }

    fn selector(&mut self) -> Result<(), Error> {
        self.expect("{")?;
        let mut selective = false;
        loop {
            let _label = self.ident()?;
            self.ws();
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| self.eat(op))
                .ok_or(())
                .or_else(|_| {
                    self.err(format!(
                        "expected a matcher operator, found {:?}",
                        self.rest()
                    ))
                })?;
            let value = self.string()?;
            selective |= match op {
                "=" => !value.is_empty(),
                "=~" => !self.regex(&value)?.is_match(""),
                _ => {
                    self.regex(&value)?;
                    false
                }
            };
            if self.eat("}") {
                break;
            }
            self.expect(",")?;
        }
        if !selective {
            return self.err(
                "the stream selector needs a matcher that cannot match an empty value (e.g. label=~\".+\")",
            );
        }
        Ok(())
    }

    fn stage(&mut self) -> Result<(), Error> {
        let name = self.ident()?;
        match name.as_str() {
            "json" | "logfmt" => Ok(()),
            _ => {
                // A label filter.
                self.ws();
                let op = ["=~", "!~", "!=", "==", ">=", "<=", "=", ">", "<"]
                    .into_iter()
                    .find(|op| self.eat(op))
                    .ok_or(())
                    .or_else(|_| {
                        self.err(format!(
                            "unknown stage {name:?} (expected json, logfmt or a label filter)"
                        ))
                    })?;
                self.ws();
                if matches!(op, ">=" | "<=" | ">" | "<" | "==") {
                    self.number(op)?;
                } else {
                    let value = self.string()?;
                    if op.contains('~') {
                        self.regex(&value)?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_subset() {
        for (q, kind) in [
            (r#"{job="systemd-journal"}"#, Kind::Log),
            (r#"{host=~".+"} |~ "" |= "GET" != "health""#, Kind::Log),
            (
                r#"{job="containers"} | json | __error__="" | level=~"(?i)(error|fatal)""#,
                Kind::Log,
            ),
            (r#"{job="x"} | logfmt | duration > 1.5"#, Kind::Log),
            (r#"{job="x"} |~ `\d+ ms`"#, Kind::Log),
            (
                r#"sum by (unit) (count_over_time({job="systemd-journal"} [1m]))"#,
                Kind::Metric,
            ),
            (
                r#"sum(rate({job="x"} |= "error" [5m])) by (host)"#,
                Kind::Metric,
            ),
            (
                r#"sum by (host) (count_over_time({job="x"} |= "oom" [10m])) > 0"#,
                Kind::Metric,
            ),
        ] {
            assert_eq!(check(q), Ok(kind), "{q}");
        }
    }

    #[test]
    fn rejects_what_loki_rejects() {
        for (q, msg) in [
            (r#"{host=~".*"}"#, "cannot match an empty value"),
            (r#"{job="x""#, "expected \",\""),
            (r#"{job="x"} |~ "(unclosed""#, "bad regex"),
            (r#"{job="x"} | jsn"#, "unknown stage"),
            (r#"count_over_time({job="x"} [5 minutes])"#, "bad duration"),
            (r#"sum(count_over_time({job="x"}[1m])"#, "expected \")\""),
            (r#"sum({job="x"})"#, "needs a metric query"),
            (r#"{job="x"} |~ "\d""#, "unknown escape"),
            (r#"avg_over_time({job="x"}[1m])"#, "unknown function"),
            (r#"count_over_time({job="x"}[1m]) > x"#, "expected a number"),
            (r#"{job="x"} > 0"#, "unexpected"),
        ] {
            let err = check(q).unwrap_err();
            assert!(err.message.contains(msg), "{q}: {err}");
        }
    }

    #[test]
    fn line_filters_decide_as_loki_does() {
        let filters =
            line_filters(r#"count_over_time({job="x"} |= "Killed" != "test" |~ `pid \d+` [5m])"#)
                .unwrap();
        assert_eq!(filters.len(), 3);
        let keeps = |line: &str| filters.iter().all(|f| f.keeps(line));
        assert!(keeps("Out of memory: Killed process pid 12"));
        assert!(!keeps("Killed process pid 12 in a test"));
        assert!(!keeps("Killed process java"));
    }
}
