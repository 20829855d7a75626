//! YAML front end on saphyr-parser's event stream, which carries a position
//! for every scalar and collection. Plain scalars are typed by the YAML 1.2
//! core schema; quoted scalars are always strings.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Value};

use super::tree::{Entry, Kind, Node, Pos};
use super::{SyntaxError, MAX_DEPTH};

/// Aliases are copied; this bounds the copies (against "billion laughs" documents).
const MAX_ALIASED_VALUES: usize = 10_000;

pub fn parse(text: &str) -> Result<(Value, Node), SyntaxError> {
    let mut builder = Builder::default();
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "only one YAML document is allowed".into(),
                    });
                }
            }
            event => builder.event(event, span, pos)?,
        }
    }
    Ok(builder.root.unwrap_or_else(|| {
        (
            Value::Object(Map::new()),
            Node {
                pos: Pos::START,
                kind: Kind::Map(Vec::new()),
            },
        )
    }))
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<(Value, Node)>,
    anchors: HashMap<usize, Value>,
    aliased: usize,
}

struct Frame {
    pos: Pos,
    anchor: usize,
    body: Body,
}

enum Body {
    Map {
        map: Map<String, Value>,
        entries: Vec<Entry>,
        key: Option<(String, Pos)>,
    },
    Seq {
        values: Vec<Value>,
        nodes: Vec<Node>,
    },
}

impl Builder {
    fn event(&mut self, event: Event, _span: Span, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(Frame {
                    body:
                        Body::Map {
                            key: key @ None, ..
                        },
                    ..
                }) = self.stack.last_mut()
                {
                    *key = Some((text.into_owned(), pos));
                    return Ok(());
                }
                let value = scalar(&text, style, tag.as_deref());
                self.complete(value, Node::scalar(pos), anchor)
            }
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    pos,
                    message: "alias to an unknown anchor".into(),
                })?;
                self.aliased += count(&value);
                if self.aliased > MAX_ALIASED_VALUES {
                    return Err(SyntaxError {
                        pos,
                        message: "too many values copied through aliases".into(),
                    });
                }
                self.complete(value, Node::scalar(pos), 0)
            }
            Event::MappingStart(anchor, _) => self.open(
                pos,
                anchor,
                Body::Map {
                    map: Map::new(),
                    entries: Vec::new(),
                    key: None,
                },
            ),
            Event::SequenceStart(anchor, _) => self.open(
                pos,
                anchor,
                Body::Seq {
                    values: Vec::new(),
                    nodes: Vec::new(),
                },
            ),
            Event::MappingEnd | Event::SequenceEnd => {
                let frame = self.stack.pop().expect("parser balances collections");
                let (value, kind) = match frame.body {
                    Body::Map { map, entries, .. } => (Value::Object(map), Kind::Map(entries)),
                    Body::Seq { values, nodes } => (Value::Array(values), Kind::Seq(nodes)),
                };
                let node = Node {
                    pos: frame.pos,
                    kind,
                };
                self.complete(value, node, frame.anchor)
            }
            _ => Ok(()),
        }
    }

    fn open(&mut self, pos: Pos, anchor: usize, body: Body) -> Result<(), SyntaxError> {
        if let Some(Frame {
            body: Body::Map { key: None, .. },
            ..
        }) = self.stack.last()
        {
            return Err(SyntaxError {
                pos,
                message: "mapping keys must be plain strings".into(),
            });
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("nested more than {MAX_DEPTH} levels deep"),
            });
        }
        self.stack.push(Frame { pos, anchor, body });
        Ok(())
    }

    fn complete(&mut self, value: Value, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.aliased += count(&value);
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some((value, node)),
            Some(Frame {
                body: Body::Seq { values, nodes },
                ..
            }) => {
                values.push(value);
                nodes.push(node);
            }
            Some(Frame {
                body: Body::Map { map, entries, key },
                ..
            }) => {
                let (key, key_pos) = key.take().expect("a value follows its key");
                if map.contains_key(&key) {
                    return Err(SyntaxError {
                        pos: key_pos,
                        message: format!("duplicate key `{key}`"),
                    });
                }
                map.insert(key.clone(), value);
                entries.push(Entry {
                    key,
                    key_pos,
                    value: node,
                });
            }
        }
        Ok(())
    }
}

fn count(value: &Value) -> usize {
    match value {
        Value::Array(a) => 1 + a.iter().map(count).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(count).sum::<usize>(),
        _ => 1,
    }
}

/// Types a scalar the way YAML 1.2's core schema does.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if style != ScalarStyle::Plain || tag.is_some_and(|t| t.suffix == "str") {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = integer(text) {
        return n;
    }
    if is_float(text) {
        if let Some(n) = text.parse().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

fn integer(text: &str) -> Option<Value> {
    let (radix, digits) = if let Some(hex) = text.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = text.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, text)
    };
    let unsigned = digits.strip_prefix(['-', '+']).unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix != 10 && unsigned.len() != digits.len() {
        return None;
    }
    i64::from_str_radix(digits, radix)
        .map(Value::from)
        .ok()
        .or_else(|| u64::from_str_radix(digits, radix).map(Value::from).ok())
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_scalars() {
        let plain = |t| scalar(t, ScalarStyle::Plain, None);
        assert_eq!(plain("9100"), Value::from(9100));
        assert_eq!(plain("-3"), Value::from(-3));
        assert_eq!(plain("0x1F"), Value::from(31));
        assert_eq!(plain("2.5"), Value::from(2.5));
        assert_eq!(plain("1e3"), Value::from(1000.0));
        assert_eq!(plain("true"), Value::Bool(true));
        assert_eq!(plain("yes"), Value::from("yes"));
        assert_eq!(plain("~"), Value::Null);
        assert_eq!(plain("30s"), Value::from("30s"));
        assert_eq!(plain("1.2.3.4"), Value::from("1.2.3.4"));
        assert_eq!(plain("."), Value::from("."));
        assert_eq!(
            scalar("9100", ScalarStyle::DoubleQuoted, None),
            Value::from("9100")
        );
    }

    #[test]
    fn positions_and_values() {
        let (value, node) =
            parse("host:\n  name: nas\nservices:\n  - name: a\n    tcp: \"x:1\"\n").unwrap();
        assert_eq!(value["services"][0]["tcp"], "x:1");
        use super::super::tree::parse_path;
        assert_eq!(
            node.locate(&parse_path("services[0].tcp")),
            Pos { line: 5, col: 10 }
        );
        assert_eq!(
            node.locate_key(&parse_path("host.name")),
            Pos { line: 2, col: 3 }
        );
    }

    #[test]
    fn duplicate_keys_and_alias_bombs_are_errors() {
        assert!(parse("a: 1\na: 2\n").is_err());
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        assert!(parse(&bomb).is_err());
    }
}
