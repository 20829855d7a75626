//! Running the real `configgen` binary, and snapshots of what it wrote.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs the real `configgen` binary from the crate directory.
pub fn configgen(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_configgen"))
        .args(args)
        .current_dir(super::crate_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("configgen runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every entry under `dir`: relative path -> (mode, contents; None for
/// directories, the target for symbolic links, which are not followed).
pub type Snapshot = BTreeMap<String, (u32, Option<Vec<u8>>)>;

pub fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            out.insert(rel, (mode, None));
            walk(root, &path, out);
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            let text = format!("symlink to {}", target.display());
            out.insert(rel, (mode, Some(text.into_bytes())));
        } else {
            out.insert(rel, (mode, Some(std::fs::read(&path).unwrap())));
        }
    }
}
