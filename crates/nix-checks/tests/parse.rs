//! Every .nix file of the repository must parse. Runs anywhere: needs only cargo.

mod common;

use std::path::Path;

use rnix::ParseError;

/// Byte offset of the error, when rnix gives one.
fn offset(err: &ParseError) -> Option<usize> {
    match err {
        ParseError::Unexpected(r)
        | ParseError::UnexpectedExtra(r)
        | ParseError::UnexpectedWanted(_, r, _)
        | ParseError::UnexpectedDoubleBind(r)
        | ParseError::DuplicatedArgs(r, _) => Some(usize::from(r.start())),
        _ => None,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// `file:line:col: message` for every syntax error of one file.
fn syntax_errors(path: &Path, text: &str) -> Vec<String> {
    rnix::Root::parse(text)
        .errors()
        .iter()
        .map(|err| {
            let (line, col) = offset(err).map_or((text.lines().count(), 1), |o| line_col(text, o));
            format!("{}:{line}:{col}: {err}", path.display())
        })
        .collect()
}

#[test]
fn every_nix_file_parses() {
    let root = common::repo_root();
    let files = common::nix_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("flake.nix")),
        "flake.nix not found below {}",
        root.display()
    );
    let errors: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            syntax_errors(f.strip_prefix(&root).unwrap(), &text)
        })
        .collect();
    println!("parsed {} .nix files", files.len());
    assert!(errors.is_empty(), "syntax errors:\n{}", errors.join("\n"));
}

#[test]
fn a_syntax_error_is_reported_with_its_line() {
    let errors = syntax_errors(Path::new("bad.nix"), "{\n  a = 1;\n  b = ;\n}\n");
    assert!(!errors.is_empty());
    assert!(errors[0].starts_with("bad.nix:3:"), "{errors:?}");
}
