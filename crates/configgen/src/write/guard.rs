//! What a render must never replace. DIR is replaced as a whole, so before
//! anything is written the render is refused when DIR holds a file of the
//! user's: the config file, a file the config names (secrets, rule files), or
//! anything configgen did not write there itself.
//!
//! "Written by configgen" is what DIR's [`MARKER`] lists: every render records
//! there each file and directory it wrote. A marker from before that list
//! existed (one line of text) is trusted only for the paths the current render
//! writes; anything else in such a DIR is refused like a user's file, since
//! configgen cannot tell an old output from a user's file there.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::referenced_files::ReferencedFile;
use crate::render::Tree;

/// Written into every output: the list of paths configgen wrote there.
pub const MARKER: &str = ".configgen-output";
/// First line of a marker that lists its paths (after the first empty line).
const MARKER_HEADER: &str = "configgen-output 2";
/// How many offending paths an error names before "and N more".
const SHOWN: usize = 10;

/// A file of the user's that the output directory must not hold.
#[derive(Debug, Clone)]
pub struct UserFile {
    /// How the error names it, e.g. "the config file /etc/x/homelab.toml".
    pub description: String,
    pub path: PathBuf,
}

impl UserFile {
    pub fn config(path: &Path) -> UserFile {
        UserFile {
            description: format!("the config file {}", path.display()),
            path: path.to_path_buf(),
        }
    }

    pub fn referenced(file: &ReferencedFile) -> UserFile {
        UserFile {
            description: format!("{} (the config's {})", file.path, file.field),
            path: PathBuf::from(&file.path),
        }
    }
}

/// The marker's text for `tree`.
pub(super) fn marker_text(tree: &Tree) -> String {
    let mut text = format!(
        "{MARKER_HEADER}\n\
         Written by `configgen render`, which replaces this whole directory on every render \
         and refuses to while it holds anything not listed below.\n\n"
    );
    for path in written_paths(tree) {
        text.push_str(&path);
        text.push('\n');
    }
    text
}

/// Every path `tree` writes, directories with a trailing '/', the marker aside.
fn written_paths(tree: &Tree) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (file, _) in tree.files() {
        for (slash, _) in file.match_indices('/') {
            paths.insert(file[..=slash].to_string());
        }
        paths.insert(file.to_string());
    }
    paths
}

/// `path` made absolute with `.` and `..` resolved lexically (no symlink is followed).
pub(super) fn absolute_normal(path: &Path) -> Result<PathBuf> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    Ok(absolute.components().fold(PathBuf::new(), |mut p, c| {
        match c {
            Component::ParentDir => {
                p.pop();
            }
            Component::CurDir => {}
            c => p.push(c),
        }
        p
    }))
}

/// Refuses, before anything is written, an `out` (absolute, normal, not a
/// symlink) that holds a user's file; `Ok` means replacing it loses nothing
/// but configgen's own earlier output.
pub(super) fn check(out: &Path, tree: &Tree, user_files: &[UserFile]) -> Result<()> {
    let real_out = real_path(out);
    let mut held = Vec::new();
    for file in user_files {
        let lexical = absolute_normal(&file.path)?;
        let real = real_path(&lexical);
        let inside = |p: &Path| p.starts_with(out) || p.starts_with(&real_out);
        if inside(&lexical) {
            held.push(file.description.clone());
        } else if inside(&real) {
            held.push(format!("{}, which is {}", file.description, real.display()));
        }
    }
    if !held.is_empty() {
        bail!(
            "refusing to render into {}: it holds {}, and every render replaces the whole \
             directory. Keep {} outside {} or choose another --out; nothing was changed",
            out.display(),
            held.join("; "),
            if held.len() == 1 {
                "that file"
            } else {
                "those files"
            },
            out.display()
        );
    }

    let entries = match fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", out.display())),
    };
    if entries.count() == 0 {
        return Ok(());
    }
    let marker = out.join(MARKER);
    let text = match fs::symlink_metadata(&marker) {
        Ok(m) if m.is_file() => fs::read_to_string(&marker)
            .with_context(|| format!("cannot read {}", marker.display()))?,
        Ok(_) => bail!(
            "refusing to replace {}: its {MARKER} is not a regular file, so configgen did not \
             write it; nothing was changed",
            out.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "refusing to replace {}: it is not empty and has no {MARKER}, so configgen did not \
             write it; remove it or choose another --out",
            out.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", marker.display())),
    };
    let (recorded, legacy) = match parse_marker(&text) {
        Some(paths) => (paths, false),
        None => (written_paths(tree), true),
    };
    let mut foreign = Vec::new();
    find_foreign(out, "", &recorded, &mut foreign)?;
    if foreign.is_empty() {
        return Ok(());
    }
    let mut list = foreign
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if foreign.len() > SHOWN {
        list.push_str(&format!(" (and {} more)", foreign.len() - SHOWN));
    }
    if legacy {
        bail!(
            "refusing to render into {}: its {MARKER} comes from an older configgen that did not \
             list the files it wrote, and it holds files this render does not write: {list}. \
             Move them out of {} (or delete the whole directory if they are leftovers of an \
             earlier render); nothing was changed",
            out.display(),
            out.display()
        );
    }
    bail!(
        "refusing to render into {}: it holds files configgen did not write: {list}. Every \
         render replaces the whole directory, so they would be lost: move them out of {} or \
         choose another --out; nothing was changed",
        out.display(),
        out.display()
    )
}

/// The paths a listing marker records; None for a marker without a list.
fn parse_marker(text: &str) -> Option<BTreeSet<String>> {
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_HEADER) {
        return None;
    }
    let paths = lines
        .skip_while(|l| !l.is_empty())
        .filter(|l| !l.is_empty());
    Some(paths.map(str::to_string).collect())
}

/// Entries under `dir` that `recorded` does not list as what they are now (a
/// directory as `name/`, a regular file as `name`); symlinks never count as
/// recorded, so nothing is ever followed through one. A foreign directory is
/// reported, not entered.
fn find_foreign(
    dir: &Path,
    prefix: &str,
    recorded: &BTreeSet<String>,
    foreign: &mut Vec<String>,
) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .and_then(|it| it.collect::<io::Result<Vec<_>>>())
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefix.is_empty() && name == MARKER {
            continue;
        }
        let rel = format!("{prefix}{name}");
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot inspect {}", entry.path().display()))?;
        if kind.is_dir() {
            let key = format!("{rel}/");
            if recorded.contains(&key) {
                find_foreign(&entry.path(), &key, recorded, foreign)?;
            } else {
                foreign.push(key);
            }
        } else if kind.is_symlink() {
            foreign.push(format!("{rel} (a symbolic link)"));
        } else if !(kind.is_file() && recorded.contains(&rel)) {
            foreign.push(rel);
        }
    }
    Ok(())
}

/// `path` with every symlink of its longest existing prefix resolved.
fn real_path(path: &Path) -> PathBuf {
    for base in path.ancestors() {
        if let Ok(real) = fs::canonicalize(base) {
            let rest = path.strip_prefix(base).expect("an ancestor is a prefix");
            return real.join(rest);
        }
    }
    path.to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_lists_every_written_file_and_directory() {
        let mut tree = Tree::default();
        tree.add("a/b/c.yml", "x").unwrap();
        tree.add("top.yml", "y").unwrap();
        let text = marker_text(&tree);
        assert_eq!(
            parse_marker(&text).unwrap(),
            BTreeSet::from(["a/", "a/b/", "a/b/c.yml", "top.yml"].map(String::from))
        );
        let legacy =
            "Written by `configgen render`; the whole directory is replaced on every render.\n";
        assert_eq!(parse_marker(legacy), None);
    }
}
