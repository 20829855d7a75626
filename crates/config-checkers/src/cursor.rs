//! What the LogQL and TraceQL parsers share: a cursor over the query's characters and the
//! error it reports, located by column.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// 1-based character column in the query.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.col, self.message)
    }
}

impl std::error::Error for Error {}

pub(crate) struct Cursor {
    pub s: Vec<char>,
    pub i: usize,
}

impl Cursor {
    pub fn new(query: &str) -> Self {
        Cursor {
            s: query.chars().collect(),
            i: 0,
        }
    }

    pub fn err<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        Err(Error {
            col: self.i + 1,
            message: message.into(),
        })
    }

    /// The next characters, for error messages.
    pub fn rest(&self) -> String {
        self.s[self.i..].iter().take(20).collect()
    }

    pub fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
    }

    pub fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    /// Skips whitespace, then `token` if it comes next.
    pub fn eat(&mut self, token: &str) -> bool {
        self.ws();
        let t: Vec<char> = token.chars().collect();
        if self.s[self.i..].starts_with(&t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, token: &str) -> Result<(), Error> {
        if self.eat(token) {
            Ok(())
        } else {
            self.err(format!("expected {token:?}, found {:?}", self.rest()))
        }
    }
}
