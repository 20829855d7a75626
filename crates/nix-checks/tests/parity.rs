//! examples/homelab.toml and its NixOS equivalent (tests/eval/homelab.nix)
//! give configgen the same config and therefore the same rendered tree.

mod common;

use configgen::model::Config;

/// The module orders services by name (they are an attribute set in Nix).
fn by_service_name(mut cfg: Config) -> Config {
    cfg.services.sort_by(|a, b| a.name.cmp(&b.name));
    cfg
}

#[test]
fn toml_example_and_nixos_module_render_the_same_tree() {
    let Some(cases) = common::evaluate_cases("toml_example_and_nixos_module_render_the_same_tree")
    else {
        return;
    };
    let from_toml = common::load_file(&common::repo_root().join("examples/homelab.toml"));
    let from_nix = common::config_of("homelab", &cases["homelab"]["config"]);

    let (from_toml, from_nix) = (by_service_name(from_toml), by_service_name(from_nix));
    assert_eq!(
        from_nix, from_toml,
        "tests/eval/homelab.nix differs from examples/homelab.toml"
    );

    let toml_tree = configgen::render::render(&from_toml).expect("render the TOML example");
    let nix_tree = configgen::render::render(&from_nix).expect("render the NixOS equivalent");
    for ((toml_file, toml_text), (nix_file, nix_text)) in toml_tree.files().zip(nix_tree.files()) {
        assert_eq!(nix_file, toml_file, "different file sets");
        assert_eq!(nix_text, toml_text, "{nix_file} differs");
    }
    assert_eq!(nix_tree, toml_tree);
    println!(
        "same config, same tree ({} files, {} services)",
        nix_tree.files().count(),
        from_nix.services.len()
    );
}
