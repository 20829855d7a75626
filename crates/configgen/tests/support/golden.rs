//! Golden files: the rendered files a test owns compared byte for byte with
//! tests/golden/<name>/. `UPDATE_GOLDEN=1` rewrites the directory instead;
//! review the diff like code.

use std::fs;
use std::path::{Path, PathBuf};

use configgen::render::Tree;

/// Compares the files of `tree` that `owned` selects with the golden
/// directory `name`: same set of files, same bytes.
pub fn check(tree: &Tree, owned: impl Fn(&str) -> bool, name: &str) {
    let dir = super::crate_dir().join("tests/golden").join(name);
    let rendered: Vec<(&str, &str)> = tree.files().filter(|(p, _)| owned(p)).collect();
    assert!(!rendered.is_empty(), "no file of {name} rendered");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = fs::remove_dir_all(&dir);
        for (path, contents) in &rendered {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, contents).unwrap();
        }
        eprintln!("golden files rewritten in {}", dir.display());
        return;
    }
    let mut stale = Vec::new();
    for (path, contents) in &rendered {
        let file = dir.join(path);
        match fs::read_to_string(&file) {
            Ok(expected) if &expected == contents => {}
            Ok(_) => stale.push(format!("{path}: differs from {}", file.display())),
            Err(_) => stale.push(format!("{path}: no golden file {}", file.display())),
        }
    }
    for file in files_under(&dir) {
        let rel = file.strip_prefix(&dir).unwrap().to_string_lossy();
        if !rendered.iter().any(|(p, _)| *p == rel) {
            stale.push(format!("{rel}: golden file but no longer rendered"));
        }
    }
    assert!(
        stale.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to refresh):\n{}",
        stale.join("\n")
    );
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
