//! JSON Schema of the config file (`configgen schema`), for editors and reference.

use crate::model::Config;

/// The schema, pretty-printed; the same bytes for the same model.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is plain JSON");
    text.push('\n');
    text
}
