use anyhow::Result;

use super::Tree;
use crate::plan::Plan;

pub fn render(_plan: &Plan, _tree: &mut Tree) -> Result<()> {
    Ok(())
}
