//! Shared by configgen's integration tests: paths, rendering helpers, external
//! tool lookup (skip loudly, or fail under CI=true), the configgen binary, and
//! the live stack harness.
#![allow(dead_code)]

pub mod alertmanager;
pub mod cli;
pub mod golden;
pub mod grafana_ini;
pub mod http;
pub mod smtp;
pub mod stack;
pub mod unit_file;
pub mod webhook;

use std::fs;
use std::path::{Path, PathBuf};

use configgen::model::Config;
use configgen::render::Tree;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn repo_root() -> PathBuf {
    crate_dir().join("../..")
}

/// examples/homelab.toml, the annotated example.
pub fn example() -> PathBuf {
    repo_root().join("examples/homelab.toml")
}

pub fn parse(toml_text: &str) -> Config {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("test config does not parse: {e}"))
}

pub fn render(cfg: &Config) -> Tree {
    configgen::render::render(cfg).unwrap_or_else(|e| panic!("render failed: {e:#}"))
}

pub fn render_file(path: &Path) -> Tree {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    render(&parse(&text))
}

/// Writes every file of the tree under `dir`.
pub fn write_tree(tree: &Tree, dir: &Path) {
    for (rel, contents) in tree.files() {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The path of an external program, or None after printing SKIPPED. Under
/// CI=true a missing program fails the test instead.
pub fn require_tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if in_ci() {
            panic!("{test}: `{name}` is not installed, and CI=true requires it");
        }
        eprintln!("SKIPPED {test}: `{name}` is not installed (CI=true makes this a failure)");
    }
    found
}
