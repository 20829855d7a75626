# The Cargo workspace, and nothing else, as the source of the Rust packages.
{lib}:
lib.fileset.toSource {
  root = ../.;
  fileset = lib.fileset.unions [
    ../Cargo.toml
    ../Cargo.lock
    ../crates
    # minijinja templates read by configgen at build time
    (lib.fileset.maybeMissing ../dashboards)
  ];
}
