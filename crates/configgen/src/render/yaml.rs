//! YAML output shared by the YAML renderers: one header, deterministic bytes.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::plan::Plan;

/// The first line of every generated file (after any format-required preamble).
pub fn header(plan: &Plan) -> String {
    format!("# {}\n", super::generated_notice(plan))
}

/// `value` as YAML under the generated-file header. Field order is the struct
/// order and maps are BTreeMaps, so the same input gives the same bytes.
pub fn document<T: Serialize>(plan: &Plan, what: &str, value: &T) -> Result<String> {
    let body = serde_yaml_ng::to_string(value).with_context(|| format!("serializing {what}"))?;
    Ok(header(plan) + &body)
}
