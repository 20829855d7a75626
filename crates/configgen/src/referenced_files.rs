//! The user's own files a config points to: every `*_file` field (secrets read
//! at run time) and every `*_files` list (e.g. extra rule files). `render`
//! refuses an output directory that holds one of them, since it replaces that
//! directory as a whole.
//!
//! The fields are found by name in the serialized config rather than listed by
//! hand, so a `*_file` field added to the model is covered without touching
//! this module (tests/schema.rs checks that against the JSON schema).

use serde_json::Value;

use crate::model::Config;

/// A file the config names, with the field that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencedFile {
    /// Where it is set, e.g. `prometheus.remote_write[0].basic_auth.password_file`.
    pub field: String,
    pub path: String,
}

impl Config {
    /// Every file named by a `*_file` or `*_files` field, in a stable order.
    pub fn referenced_files(&self) -> Vec<ReferencedFile> {
        let value = serde_json::to_value(self).expect("the config model serializes to JSON");
        let mut found = Vec::new();
        collect(&value, "", &mut found);
        found
    }
}

fn collect(value: &Value, at: &str, found: &mut Vec<ReferencedFile>) {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let field = join(key);
                match v {
                    Value::String(path) if key.ends_with("_file") => found.push(ReferencedFile {
                        field,
                        path: path.clone(),
                    }),
                    Value::Array(items) if key.ends_with("_files") => {
                        for (i, item) in items.iter().enumerate() {
                            if let Value::String(path) = item {
                                found.push(ReferencedFile {
                                    field: format!("{field}[{i}]"),
                                    path: path.clone(),
                                });
                            } else {
                                collect(item, &format!("{field}[{i}]"), found);
                            }
                        }
                    }
                    _ => collect(v, &field, found),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}
