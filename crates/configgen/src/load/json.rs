//! JSON front end: serde_json checks the syntax and builds the values; a small
//! scanner over the (then known valid) text records where each key and value is.

use serde_json::Value;

use super::tree::{Entry, Kind, LineIndex, Node, Pos};
use super::{SyntaxError, MAX_DEPTH};

pub fn parse(text: &str) -> Result<(Value, Node), SyntaxError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        SyntaxError {
            pos: Pos {
                line: e.line().max(1),
                col: e.column().max(1),
            },
            message: message
                .strip_suffix(&suffix)
                .unwrap_or(&message)
                .to_string(),
        }
    })?;
    let mut scanner = Scanner {
        text,
        lines: LineIndex::new(text),
        at: 0,
    };
    let node = scanner.node(0)?;
    Ok((value, node))
}

struct Scanner<'a> {
    text: &'a str,
    lines: LineIndex<'a>,
    at: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
    }

    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.at).copied().unwrap_or(0)
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == byte;
        if found {
            self.at += 1;
        }
        found
    }

    fn node(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        self.skip_ws();
        let pos = self.lines.pos(self.at);
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("nested more than {MAX_DEPTH} levels deep"),
            });
        }
        let kind = match self.peek() {
            b'{' => {
                self.at += 1;
                let mut entries: Vec<Entry> = Vec::new();
                while self.at < self.text.len() && !self.eat(b'}') {
                    self.eat(b',');
                    self.skip_ws();
                    let key_pos = self.lines.pos(self.at);
                    let key = self.string();
                    if entries.iter().any(|e| e.key == key) {
                        return Err(SyntaxError {
                            pos: key_pos,
                            message: format!("duplicate key `{key}`"),
                        });
                    }
                    self.eat(b':');
                    let value = self.node(depth + 1)?;
                    entries.push(Entry {
                        key,
                        key_pos,
                        value,
                    });
                }
                Kind::Map(entries)
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                while self.at < self.text.len() && !self.eat(b']') {
                    self.eat(b',');
                    items.push(self.node(depth + 1)?);
                }
                Kind::Seq(items)
            }
            b'"' => {
                self.string();
                Kind::Scalar
            }
            _ => {
                let rest = &self.text[self.at..];
                let len = rest
                    .find([',', '}', ']', ' ', '\t', '\n', '\r'])
                    .unwrap_or(rest.len());
                self.at += len.max(1).min(rest.len());
                Kind::Scalar
            }
        };
        Ok(Node { pos, kind })
    }

    /// Consumes a string literal at the cursor and returns its decoded text.
    fn string(&mut self) -> String {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        self.at = (i + 1).min(bytes.len());
        serde_json::from_str(&self.text[start..self.at]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::parse_path;
    use super::*;

    #[test]
    fn positions_of_compact_and_pretty_json() {
        let (_, node) = parse(r#"{"services":[{"name":"a","tcp":"x:1"}]}"#).unwrap();
        assert_eq!(
            node.locate(&parse_path("services[0].tcp")),
            Pos { line: 1, col: 32 }
        );
        let (_, node) = parse("{\n  \"host\": {\n    \"name\": \"n\\u00e9\"\n  }\n}").unwrap();
        assert_eq!(
            node.locate(&parse_path("host.name")),
            Pos { line: 3, col: 13 }
        );
        assert_eq!(
            node.locate_key(&parse_path("host.name")),
            Pos { line: 3, col: 5 }
        );
    }

    #[test]
    fn syntax_errors_and_duplicates() {
        let e = parse("{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 1 });
        assert_eq!(e.message, "trailing comma");
        assert!(parse(r#"{"a": 1, "a": 2}"#).is_err());
    }
}
