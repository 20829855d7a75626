//! Renderers: one per target format, each knowing only its own format.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::model::Config;
use crate::plan::Plan;

mod alertmanager;
mod alloy;
mod blackbox;
mod grafana;
mod lgtm;
mod loki;
mod probe;
mod prometheus;
mod rules;
mod tempo;
pub(crate) mod yaml;

/// The rendered tree: relative path -> file contents. Ordered, so that the
/// output is byte-identical for the same input.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tree {
    files: BTreeMap<String, String>,
}

impl Tree {
    pub fn add(&mut self, path: impl Into<String>, contents: impl Into<String>) -> Result<()> {
        let path = path.into();
        if self.files.contains_key(&path) {
            bail!("two renderers produced {path}");
        }
        self.files.insert(path, contents.into());
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(p, c)| (p.as_str(), c.as_str()))
    }
}

/// Render every file of the stack for an already validated config.
pub fn render(cfg: &Config) -> Result<Tree> {
    let plan = Plan::new(cfg);
    let mut tree = Tree::default();
    prometheus::render(&plan, &mut tree)?;
    rules::render(&plan, &mut tree)?;
    alertmanager::render(&plan, &mut tree)?;
    blackbox::render(&plan, &mut tree)?;
    probe::render(&plan, &mut tree)?;
    loki::render(&plan, &mut tree)?;
    alloy::render(&plan, &mut tree)?;
    tempo::render(&plan, &mut tree)?;
    grafana::render(&plan, &mut tree)?;
    Ok(tree)
}
