//! Every .nix file is formatted as alejandra formats it: the flake's
//! `formatter` is alejandra and `checks.formatting` runs `alejandra --check`.
//! Runs anywhere: alejandra's own library does the formatting.
//!
//! To reformat the files in place:
//!     NIX_FORMAT_WRITE=1 cargo test -p nix-checks --test formatting

mod common;

use alejandra::format::Status;

/// Formatted text of `text`, or alejandra's error, `name` naming it in messages.
fn formatted(name: &str, text: String) -> Result<(bool, String), String> {
    match alejandra::format::in_memory(name.to_string(), text) {
        (Status::Changed(changed), after) => Ok((changed, after)),
        (Status::Error(e), _) => Err(format!("{name}: {e}")),
    }
}

#[test]
fn every_nix_file_is_alejandra_formatted() {
    let root = common::repo_root();
    let write = std::env::var("NIX_FORMAT_WRITE").as_deref() == Ok("1");
    let files = common::nix_files(&root);
    assert!(!files.is_empty(), "no .nix file below {}", root.display());

    let (mut unformatted, mut errors) = (Vec::new(), Vec::new());
    for file in &files {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        match formatted(&name, text) {
            Ok((false, _)) => {}
            Ok((true, after)) => {
                if write {
                    std::fs::write(file, after).unwrap();
                }
                unformatted.push(name);
            }
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "alejandra cannot parse:\n{}",
        errors.join("\n")
    );
    if write {
        println!(
            "reformatted {} of {} .nix files",
            unformatted.len(),
            files.len()
        );
        return;
    }
    println!(
        "{} .nix files checked with alejandra {}",
        files.len(),
        alejandra::version::VERSION
    );
    assert!(
        unformatted.is_empty(),
        "not alejandra-formatted (run `nix fmt`, or NIX_FORMAT_WRITE=1 cargo test -p nix-checks --test formatting):\n{}",
        unformatted.join("\n")
    );
}

#[test]
fn an_unformatted_file_is_noticed() {
    let (changed, after) = formatted("bad.nix", "{a=1;}".into()).unwrap();
    assert!(changed);
    assert_eq!(after, "{a = 1;}\n");
    assert_eq!(
        formatted("good.nix", after.clone()).unwrap(),
        (false, after)
    );
}
