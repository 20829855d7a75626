//! This crate only holds tests (see `tests/`): the Nix files of the repository
//! are checked from `cargo test -p nix-checks`.
