//! A format-independent view of a parsed config file: the same values as the
//! typed model will see, plus where each key and value sits in the source.
//! Every front end (TOML, YAML, JSON) builds one; errors are then located by
//! walking their field path through it.

use std::cell::Cell;
use std::fmt;

/// 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, col: 1 };

    /// Moved inside the text ending at `end`: YAML counts a lone `\r` as a
    /// line break and reports EOF one line past the end; we count `\n` only.
    pub fn within(self, end: Pos) -> Pos {
        if self.line > end.line {
            end
        } else {
            self
        }
    }
}

/// Turns byte offsets into [`Pos`] without rescanning the text each time.
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// The last answer: scans move forward, so the next column is counted
    /// from here, which keeps one-line (minified) JSON linear.
    last: Cell<(usize, Pos)>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            text,
            line_starts,
            last: Cell::new((0, Pos::START)),
        }
    }

    pub fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let (last_offset, last) = self.last.get();
        let (from, col) = if last.line == line && last_offset <= offset {
            (last_offset, last.col)
        } else {
            (self.line_starts[line - 1], 1)
        };
        let pos = Pos {
            line,
            col: col + self.text[from..offset].chars().count(),
        };
        self.last.set((offset, pos));
        pos
    }
}

/// A located node of the parsed document.
#[derive(Debug, Clone)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Scalar,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    pub fn scalar(pos: Pos) -> Node {
        Node {
            pos,
            kind: Kind::Scalar,
        }
    }

    fn child(&self, seg: &Segment) -> Option<(Pos, &Node)> {
        match (&self.kind, seg) {
            (Kind::Map(entries), Segment::Key(key)) => entries
                .iter()
                .find(|e| &e.key == key)
                .map(|e| (e.key_pos, &e.value)),
            (Kind::Seq(items), Segment::Index(i)) => items.get(*i).map(|n| (n.pos, n)),
            _ => None,
        }
    }

    /// Where the value at `path` is, or its nearest existing ancestor.
    pub fn locate(&self, path: &[Segment]) -> Pos {
        let mut node = self;
        for seg in path {
            match node.child(seg) {
                Some((_, child)) => node = child,
                None => break,
            }
        }
        node.pos
    }

    /// Where the key that ends `path` is written (for unknown keys), else as [`Node::locate`].
    pub fn locate_key(&self, path: &[Segment]) -> Pos {
        let Some((last, parent)) = path.split_last() else {
            return self.pos;
        };
        let mut node = self;
        for seg in parent {
            match node.child(seg) {
                Some((_, child)) => node = child,
                None => return node.pos,
            }
        }
        node.child(last).map_or(node.pos, |(key_pos, _)| key_pos)
    }
}

/// One step of a field path such as `services[1].http.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// The path as printed in messages: `services[1].http.url`; empty for the root.
pub struct PathDisplay<'a>(pub &'a [Segment]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Parse a printed path back into segments. Keys cannot contain `.` or `[`,
/// except inside brackets: `timer_max_age[backup.timer]` is a key with a dot.
pub fn parse_path(path: &str) -> Vec<Segment> {
    let mut parts = Vec::new();
    let (mut start, mut depth) = (0, 0);
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '.' if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    let mut segs = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            segs.push(Segment::Key(key.to_string()));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            match stripped[..end].parse() {
                Ok(i) => segs.push(Segment::Index(i)),
                Err(_) => segs.push(Segment::Key(stripped[..end].to_string())),
            }
            rest = &stripped[end + 1..];
        }
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for p in [
            "services[1].http.url",
            "alerting.routes.critical[0]",
            "a[2][3].b",
            "",
        ] {
            assert_eq!(PathDisplay(&parse_path(p)).to_string(), p);
        }
    }

    #[test]
    fn bracketed_keys_may_hold_dots() {
        assert_eq!(
            parse_path("alerting.timer_max_age[backup.timer]"),
            [
                Segment::Key("alerting".into()),
                Segment::Key("timer_max_age".into()),
                Segment::Key("backup.timer".into()),
            ]
        );
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let index = LineIndex::new("a = 1\nbé = 2\n");
        assert_eq!(index.pos(0), Pos { line: 1, col: 1 });
        assert_eq!(index.pos(6), Pos { line: 2, col: 1 });
        assert_eq!(index.pos(8), Pos { line: 2, col: 2 });
        assert_eq!(index.pos(10), Pos { line: 2, col: 4 });
        assert_eq!(index.pos(999), Pos { line: 3, col: 1 });
        assert_eq!(
            index.pos(8),
            Pos { line: 2, col: 2 },
            "backwards after the cache"
        );
    }
}
