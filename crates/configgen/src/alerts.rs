//! The alert catalogue: which alerts exist, their thresholds and `for`
//! durations, and the user's overrides of them.

use crate::diagnostic::ConfigIssue;
use crate::model::Config;

/// Overrides naming an alert that does not exist, or with values that do not fit it.
pub fn check_overrides(_cfg: &Config) -> Vec<ConfigIssue> {
    Vec::new()
}
