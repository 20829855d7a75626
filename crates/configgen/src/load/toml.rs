//! TOML front end: toml_edit keeps the byte span of every key and value.

use serde_json::Value;
use toml_edit::{ImDocument, Item, Table, TableLike};

use super::tree::{Entry, Kind, LineIndex, Node, Pos};
use super::SyntaxError;

pub fn parse(text: &str) -> Result<(Value, Node), SyntaxError> {
    let lines = LineIndex::new(text);
    let doc = ImDocument::parse(text).map_err(|e| {
        let message = e
            .message()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join(", ");
        SyntaxError {
            pos: lines.pos(e.span().map_or(0, |s| s.start)),
            message: if message.is_empty() {
                "invalid TOML".into()
            } else {
                message
            },
        }
    })?;
    let conv = Converter { lines };
    Ok(conv.table(doc.as_table(), Pos::START))
}

struct Converter<'a> {
    lines: LineIndex<'a>,
}

impl Converter<'_> {
    fn pos(&self, span: Option<std::ops::Range<usize>>, fallback: Pos) -> Pos {
        span.map_or(fallback, |s| self.lines.pos(s.start))
    }

    fn table(&self, table: &Table, fallback: Pos) -> (Value, Node) {
        let pos = self.pos(table.span(), fallback);
        self.table_like(table, pos)
    }

    fn table_like(&self, table: &dyn TableLike, pos: Pos) -> (Value, Node) {
        let mut map = serde_json::Map::new();
        let mut entries = Vec::new();
        for (key, item) in table.iter() {
            let key_pos = table
                .get_key_value(key)
                .and_then(|(k, _)| k.span())
                .map_or(pos, |s| self.lines.pos(s.start));
            let (value, node) = self.item(item, key_pos);
            map.insert(key.to_string(), value);
            entries.push(Entry {
                key: key.to_string(),
                key_pos,
                value: node,
            });
        }
        (
            Value::Object(map),
            Node {
                pos,
                kind: Kind::Map(entries),
            },
        )
    }

    fn item(&self, item: &Item, fallback: Pos) -> (Value, Node) {
        match item {
            Item::None => (Value::Null, Node::scalar(fallback)),
            Item::Table(t) => self.table(t, fallback),
            Item::ArrayOfTables(tables) => {
                let pos = self.pos(tables.span(), fallback);
                let (values, nodes) = tables.iter().map(|t| self.table(t, pos)).unzip();
                (
                    Value::Array(values),
                    Node {
                        pos,
                        kind: Kind::Seq(nodes),
                    },
                )
            }
            Item::Value(v) => self.value(v, fallback),
        }
    }

    fn value(&self, v: &toml_edit::Value, fallback: Pos) -> (Value, Node) {
        use toml_edit::Value as T;
        let pos = self.pos(v.span(), fallback);
        let value = match v {
            T::String(s) => Value::String(s.value().clone()),
            T::Integer(i) => Value::from(*i.value()),
            T::Float(f) => serde_json::Number::from_f64(*f.value())
                .map_or_else(|| Value::String(f.value().to_string()), Value::Number),
            T::Boolean(b) => Value::Bool(*b.value()),
            T::Datetime(d) => Value::String(d.value().to_string()),
            T::Array(array) => {
                let (values, nodes) = array.iter().map(|v| self.value(v, pos)).unzip();
                return (
                    Value::Array(values),
                    Node {
                        pos,
                        kind: Kind::Seq(nodes),
                    },
                );
            }
            T::InlineTable(t) => return self.table_like(t, pos),
        };
        (value, Node::scalar(pos))
    }
}
