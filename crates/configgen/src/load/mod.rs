//! Reading a config file into the model, and turning every problem with it
//! into a located message: `FILE:LINE:COL: field.path: what is wrong`.
//!
//! Each format has a front end producing the same two things: a JSON value
//! (what serde deserializes the model from, so all formats behave alike) and a
//! [`tree::Node`] recording where each key and value sits in the source.

mod json;
pub(crate) mod suggest;
mod toml;
pub mod tree;
mod yaml;

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::diagnostic::ConfigIssue;
use crate::model::Config;
use tree::{parse_path, LineIndex, Node, PathDisplay, Pos, Segment};

/// Deeper nesting than any valid config needs; bounds recursion on hostile input.
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
struct SyntaxError {
    pos: Pos,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// One problem, located in the source when possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Option<Pos>,
    /// Field path such as `services[1].http.url`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", OneLine(&self.path))?;
        }
        write!(f, ": {}", OneLine(&self.message))
    }
}

/// Text quoted from the input (a key such as "a\nb") with its control
/// characters escaped, so that a diagnostic stays one line.
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// A config file's text, its display name and its format.
pub struct Source {
    pub name: String,
    pub text: String,
    pub format: Format,
}

impl Source {
    /// Reads `arg`: a file path whose extension gives the format, or `-` for JSON on stdin.
    pub fn read(arg: &str) -> Result<Source, Diagnostic> {
        let (name, format, bytes) = if arg == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| file_error("<stdin>", format!("cannot read: {e}")))?;
            ("<stdin>".to_string(), Format::Json, bytes)
        } else {
            let format = Format::from_path(Path::new(arg)).ok_or_else(|| {
                file_error(
                    arg,
                    "unknown config format: the file name must end in .toml, .yaml, .yml or .json",
                )
            })?;
            let bytes =
                std::fs::read(arg).map_err(|e| file_error(arg, format!("cannot read: {e}")))?;
            (arg.to_string(), format, bytes)
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let valid = std::str::from_utf8(valid).expect("checked prefix");
            Diagnostic {
                file: name.clone(),
                pos: Some(LineIndex::new(valid).pos(valid.len())),
                path: String::new(),
                message: "not valid UTF-8".into(),
            }
        })?;
        Ok(Source { name, text, format })
    }

    pub fn new(name: impl Into<String>, text: impl Into<String>, format: Format) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
            format,
        }
    }
}

fn file_error(file: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_string(),
        pos: None,
        path: String::new(),
        message: message.into(),
    }
}

/// A config that parsed and deserialized, with what is needed to locate later issues.
pub struct Parsed {
    pub config: Config,
    file: String,
    tree: Node,
    end: Pos,
}

impl Parsed {
    /// Locates validation issues in the source, sorted by position.
    pub fn locate(&self, issues: Vec<ConfigIssue>) -> Vec<Diagnostic> {
        let mut diagnostics: Vec<Diagnostic> = issues
            .into_iter()
            .map(|issue| Diagnostic {
                file: self.file.clone(),
                pos: Some(self.tree.locate(&parse_path(&issue.path)).within(self.end)),
                path: issue.path,
                message: issue.message,
            })
            .collect();
        sort(&mut diagnostics);
        diagnostics
    }
}

fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| (a.pos, &a.path, &a.message).cmp(&(b.pos, &b.path, &b.message)));
    diagnostics.dedup();
}

/// Parses and deserializes, without semantic validation.
pub fn parse(src: &Source) -> Result<Parsed, Vec<Diagnostic>> {
    let end = LineIndex::new(&src.text).pos(src.text.len());
    let front_end = match src.format {
        Format::Toml => toml::parse(&src.text),
        Format::Yaml => yaml::parse(&src.text),
        Format::Json => json::parse(&src.text),
    };
    let (value, tree) = front_end.map_err(|e| {
        vec![Diagnostic {
            file: src.name.clone(),
            pos: Some(e.pos.within(end)),
            path: String::new(),
            message: e.message,
        }]
    })?;
    if !value.is_object() {
        return Err(vec![Diagnostic {
            file: src.name.clone(),
            pos: Some(tree.pos.within(end)),
            path: String::new(),
            message: "the top level must be a table of sections (host, services, ...)".into(),
        }]);
    }
    match serde_path_to_error::deserialize::<_, Config>(value) {
        Ok(config) => Ok(Parsed {
            config,
            file: src.name.clone(),
            tree,
            end,
        }),
        Err(e) => {
            let mut path: Vec<Segment> = Vec::new();
            for seg in e.path().iter() {
                use serde_path_to_error::Segment as S;
                match seg {
                    S::Seq { index } => path.push(Segment::Index(*index)),
                    S::Map { key } => path.push(Segment::Key(key.clone())),
                    S::Enum { variant } => path.push(Segment::Key(variant.clone())),
                    S::Unknown => break,
                }
            }
            let (message, unknown_key) = suggest::improve(&e.inner().to_string());
            // serde_path_to_error ends the path of an unknown key with that
            // key; point at the key itself, not at its value.
            let pos = match unknown_key {
                Some(key) if path.last() == Some(&Segment::Key(key.clone())) => {
                    tree.locate_key(&path)
                }
                _ => tree.locate(&path),
            };
            Err(vec![Diagnostic {
                file: src.name.clone(),
                pos: Some(pos.within(end)),
                path: PathDisplay(&path).to_string(),
                message,
            }])
        }
    }
}

/// Parses, deserializes and validates: the config, or every problem found.
pub fn load(src: &Source) -> Result<Config, Vec<Diagnostic>> {
    let parsed = parse(src)?;
    let issues = crate::validate::validate(&parsed.config);
    if issues.is_empty() {
        Ok(parsed.config)
    } else {
        Err(parsed.locate(issues))
    }
}
