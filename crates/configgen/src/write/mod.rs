//! Writes a rendered [`Tree`] to disk so that DIR is either fully replaced or
//! left untouched: everything goes into a temp dir next to DIR (same
//! filesystem), is fsynced, then swapped in with one rename. [`guard`] first
//! refuses a DIR that holds anything but configgen's own earlier output.
//!
//! On Linux the swap is `renameat2(RENAME_EXCHANGE)`, atomic even when DIR
//! exists. Where the filesystem refuses it, DIR is renamed aside first and the
//! temp dir renamed in; between those two renames DIR briefly does not exist.
//! A process killed mid-write leaves only a `.DIR.new-*` directory beside DIR.

mod guard;

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use guard::{UserFile, MARKER};

use crate::render::Tree;

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Replaces `out` with exactly the files of `tree` (plus [`MARKER`]), unless
/// `out` holds one of `user_files` or anything configgen did not write there.
pub fn write_tree(tree: &Tree, out: &Path, user_files: &[UserFile]) -> Result<()> {
    let out = check_out(out)?;
    for (rel, _) in tree.files() {
        safe_relative(rel)?;
    }
    guard::check(&out, tree, user_files)?;
    let parent = out
        .parent()
        .expect("check_out returns a path with a parent");
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = out.file_name().expect("checked").to_string_lossy();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.new-"))
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a temp dir in {}", parent.display()))?;
    fill(staging.path(), tree)?;
    swap(staging.path(), &out)?;
    sync_dir(parent)?;
    // After an exchange the staging path holds the previous tree; dropping
    // `staging` removes it (or nothing, if DIR did not exist before).
    drop(staging);
    Ok(())
}

/// Rejects outputs that are not a directory below / (or a place for one).
fn check_out(out: &Path) -> Result<PathBuf> {
    if out.as_os_str().is_empty() {
        bail!("--out must not be empty");
    }
    let normal = guard::absolute_normal(out)?;
    if normal.parent().is_none() || normal.file_name().is_none() {
        bail!(
            "refusing to replace {} (--out must be a directory below /)",
            out.display()
        );
    }
    match fs::symlink_metadata(&normal) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!(
                "--out {} is a symbolic link; give the real directory",
                out.display()
            )
        }
        Ok(m) if !m.is_dir() => bail!("--out {} exists and is not a directory", out.display()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", out.display())),
    }
    Ok(normal)
}

fn fill(root: &Path, tree: &Tree) -> Result<()> {
    fs::set_permissions(root, fs::Permissions::from_mode(DIR_MODE))?;
    let mut dirs = BTreeSet::from([root.to_path_buf()]);
    // Tree iterates in sorted path order, so the writes are deterministic too.
    for (rel, contents) in tree.files() {
        let rel = safe_relative(rel)?;
        let path = root.join(rel);
        let mut dir = root.to_path_buf();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            dir.push(c);
            if !dirs.contains(&dir) {
                DirBuilder::new()
                    .mode(DIR_MODE)
                    .create(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(DIR_MODE))?;
                dirs.insert(dir.clone());
            }
        }
        write_file(&path, contents)?;
    }
    write_file(&root.join(MARKER), &guard::marker_text(tree))?;
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A tree path must stay inside the output directory and fit on one line of
/// the marker.
fn safe_relative(rel: &str) -> Result<&Path> {
    let path = Path::new(rel);
    if rel.is_empty()
        || rel.contains(['\n', '\r'])
        || !path.components().all(|c| matches!(c, Component::Normal(_)))
    {
        bail!("renderer produced an unsafe path `{rel}`");
    }
    Ok(path)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

fn swap(staging: &Path, out: &Path) -> Result<()> {
    if !out.exists() {
        return fs::rename(staging, out)
            .with_context(|| format!("cannot move the new tree to {}", out.display()));
    }
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, staging, CWD, out, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        // EINVAL/ENOSYS: no RENAME_EXCHANGE here; EXDEV: overlayfs refusing it.
        Err(e) if [Errno::INVAL, Errno::NOSYS, Errno::XDEV].contains(&e) => {
            swap_by_two_renames(staging, out)
        }
        Err(e) => Err(io::Error::from(e))
            .with_context(|| format!("cannot swap the new tree into {}", out.display())),
    }
}

/// Fallback: old DIR -> aside, staging -> DIR, aside -> staging (removed by the caller).
fn swap_by_two_renames(staging: &Path, out: &Path) -> Result<()> {
    let mut aside = staging.as_os_str().to_owned();
    aside.push("-old");
    let aside = PathBuf::from(aside);
    fs::rename(out, &aside).with_context(|| format!("cannot move {} aside", out.display()))?;
    if let Err(e) = fs::rename(staging, out) {
        let _ = fs::rename(&aside, out);
        return Err(e).with_context(|| format!("cannot move the new tree to {}", out.display()));
    }
    fs::rename(&aside, staging).context("cannot move the old tree away for removal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_swap_replaces_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (staging, out) = (tmp.path().join("staging"), tmp.path().join("out"));
        fs::create_dir(&staging).unwrap();
        fs::write(staging.join("new"), "new").unwrap();
        fs::create_dir(&out).unwrap();
        fs::write(out.join("old"), "old").unwrap();
        swap_by_two_renames(&staging, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("new")).unwrap(), "new");
        assert!(!out.join("old").exists());
        assert_eq!(fs::read_to_string(staging.join("old")).unwrap(), "old");
    }

    #[test]
    fn unsafe_tree_paths_are_rejected() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "./a", "a\nb"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        assert!(safe_relative("prometheus/rules/a.yml").is_ok());
    }
}
