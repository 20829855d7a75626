//! NixOS module evaluation: every case of tests/eval holds, and the JSON the
//! module hands to configgen renders. Needs NIXPKGS_LIB and `nix-instantiate`.

mod common;

use serde_json::Value;

#[test]
fn module_evaluation_cases_hold_and_render() {
    let Some(cases) = common::evaluate_cases("module_evaluation_cases_hold_and_render") else {
        return;
    };
    let mut failures = Vec::new();
    let (mut checks, mut rendered) = (0, 0);
    for (case, result) in &cases {
        for check in result["checks"].as_array().expect("checks list") {
            checks += 1;
            if check["ok"] != Value::Bool(true) {
                failures.push(format!(
                    "{case}: {}\n    actual:   {}\n    expected: {}",
                    check["name"].as_str().unwrap_or("?"),
                    check["actual"],
                    check["expected"]
                ));
            }
        }
        if result["render"] == Value::Bool(true) {
            let cfg = common::config_of(case, &result["config"]);
            let tree = configgen::render::render(&cfg).unwrap_or_else(|e| {
                panic!("{case}: configgen cannot render the module's config: {e:#}")
            });
            rendered += 1;
            println!("{case}: rendered {} files", tree.files().count());
        }
    }
    println!(
        "{} cases, {checks} checks, {rendered} configs rendered",
        cases.len()
    );
    assert!(
        cases.len() >= 10,
        "expected the cases of tests/eval/cases.nix"
    );
    assert!(
        failures.is_empty(),
        "failed checks:\n{}",
        failures.join("\n")
    );
}
