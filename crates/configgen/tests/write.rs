//! The atomic tree writer, with trees built here (independent of renderers).

mod support;

use std::fs;

use configgen::render::Tree;
use configgen::write::{write_tree, MARKER};
use support::cli::snapshot;

fn tree(files: &[(&str, &str)]) -> Tree {
    let mut tree = Tree::default();
    for (path, contents) in files {
        tree.add(*path, *contents).unwrap();
    }
    tree
}

/// Entries of `dir` other than `keep`: leftovers of a failed or finished write.
fn strays(dir: &std::path::Path, keep: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn writes_exactly_the_tree_with_fixed_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("deeper/out");
    let t = tree(&[
        ("prometheus/prometheus.yml", "global: {}\n"),
        ("prometheus/rules/node.yml", "groups: []\n"),
        ("blackbox/blackbox.yml", "modules: {}\n"),
        ("README", ""),
    ]);
    write_tree(&t, &out, &[]).unwrap();
    let snap = snapshot(&out);
    let listing: Vec<(&str, u32)> = snap.iter().map(|(p, (m, _))| (p.as_str(), *m)).collect();
    assert_eq!(
        listing,
        [
            (MARKER, 0o644),
            ("README", 0o644),
            ("blackbox", 0o755),
            ("blackbox/blackbox.yml", 0o644),
            ("prometheus", 0o755),
            ("prometheus/prometheus.yml", 0o644),
            ("prometheus/rules", 0o755),
            ("prometheus/rules/node.yml", 0o644),
        ]
    );
    for (path, contents) in t.files() {
        assert_eq!(fs::read_to_string(out.join(path)).unwrap(), contents);
    }
    assert_eq!(snapshot(tmp.path())["deeper/out"].0, 0o755);
    assert!(strays(out.parent().unwrap(), &["out"]).is_empty());
}

#[test]
fn replaces_a_previous_tree_completely() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    write_tree(
        &tree(&[("a/old.yml", "old"), ("keep.yml", "v1")]),
        &out,
        &[],
    )
    .unwrap();
    // A rendered file edited by hand is still configgen's: it is replaced.
    fs::write(out.join("keep.yml"), "hand-edited").unwrap();
    write_tree(
        &tree(&[("keep.yml", "v2"), ("b/new.yml", "new")]),
        &out,
        &[],
    )
    .unwrap();
    let names: Vec<String> = snapshot(&out).into_keys().collect();
    assert_eq!(names, [MARKER, "b", "b/new.yml", "keep.yml"]);
    assert_eq!(fs::read_to_string(out.join("keep.yml")).unwrap(), "v2");
    assert!(
        strays(tmp.path(), &["out"]).is_empty(),
        "temp dirs left behind"
    );
}

#[test]
fn a_failed_write_leaves_the_old_tree_and_no_temp_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    write_tree(&tree(&[("prometheus/prometheus.yml", "v1\n")]), &out, &[]).unwrap();
    let before = snapshot(tmp.path());
    // `a` is a file, so `a/b` cannot be created: the write fails half-way.
    let broken = tree(&[("0-first.yml", "x"), ("a", "file"), ("a/b", "under a file")]);
    assert!(write_tree(&broken, &out, &[]).is_err());
    let escaping = tree(&[("../escape.yml", "x")]);
    let err = write_tree(&escaping, &out, &[]).unwrap_err();
    assert!(err.to_string().contains("unsafe path"), "{err}");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn refuses_files_symlinks_and_root() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tree(&[("x.yml", "x")]);
    let file = tmp.path().join("file");
    fs::write(&file, "keep").unwrap();
    assert!(write_tree(&t, &file, &[]).is_err());
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(write_tree(&t, &link, &[]).is_err());
    assert!(write_tree(&t, std::path::Path::new("/"), &[]).is_err());
    assert!(write_tree(&t, std::path::Path::new(""), &[]).is_err());
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep");
    assert!(fs::read_dir(&target).unwrap().next().is_none());
}

#[test]
fn replaces_only_empty_or_own_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tree(&[("x.yml", "x")]);
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    write_tree(&t, &empty, &[]).unwrap();
    assert_eq!(fs::read_to_string(empty.join("x.yml")).unwrap(), "x");

    // Someone's directory (think `--out .` or `--out ~`) is never replaced.
    let foreign = tmp.path().join("home");
    fs::create_dir_all(foreign.join("Documents")).unwrap();
    fs::write(foreign.join("notes.txt"), "precious").unwrap();
    let before = snapshot(tmp.path());
    let err = write_tree(&t, &foreign, &[]).unwrap_err();
    assert!(
        err.to_string().contains("configgen did not write it"),
        "{err}"
    );
    assert_eq!(snapshot(tmp.path()), before);
}
