//! NixOS module evaluation: every case of tests/eval holds, and the JSON the
//! module hands to configgen passes configgen's loader and validation (as in
//! `configgen render`) and renders; a case marked `configgenRefuses` must be
//! refused with configgen's located message; a file the module builds in Nix
//! (`sameAsRendered`: tree path -> value) must equal configgen's rendering of
//! it. Needs NIXPKGS_LIB and `nix-instantiate`.

mod common;

use serde_json::Value;

#[test]
fn module_evaluation_cases_hold_and_render() {
    let Some(cases) = common::evaluate_cases("module_evaluation_cases_hold_and_render") else {
        return;
    };
    let mut failures = Vec::new();
    let (mut checks, mut rendered, mut refused, mut compared) = (0, 0, 0, 0);
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
        if let Some(needle) = result["configgenRefuses"].as_str() {
            refused += 1;
            match common::load_config(case, &result["config"]) {
                Ok(_) => failures.push(format!("{case}: configgen accepted the config")),
                Err(e) if located(case, needle, &e) => {
                    let prefix = format!("{case}/homelab-observability.json:");
                    for message in e.lines().filter(|l| l.starts_with(&prefix)) {
                        println!("refused: {message}");
                    }
                }
                Err(e) => failures.push(format!(
                    "{case}: no located message `{case}/homelab-observability.json:LINE:COL: ...{needle}...`:\n{e}"
                )),
            }
        }
        if result["render"] == Value::Bool(true) {
            let cfg = match common::load_config(case, &result["config"]) {
                Ok(cfg) => cfg,
                Err(e) => {
                    failures.push(format!(
                        "{case}: configgen refuses the module's config:\n{e}"
                    ));
                    continue;
                }
            };
            match configgen::render::render(&cfg) {
                Ok(tree) => {
                    rendered += 1;
                    println!("{case}: rendered {} files", tree.files().count());
                    let same = result["sameAsRendered"].as_object().into_iter().flatten();
                    for (path, built_in_nix) in same {
                        compared += 1;
                        let Some(text) = tree.get(path) else {
                            failures.push(format!("{case}: configgen renders no {path}"));
                            continue;
                        };
                        let rendered: Value = serde_yaml_ng::from_str(text)
                            .unwrap_or_else(|e| panic!("{case}: {path}: {e}"));
                        if &rendered != built_in_nix {
                            failures.push(format!(
                                "{case}: {path} differs from what the module builds in Nix\n    configgen: {rendered}\n    module:    {built_in_nix}"
                            ));
                        }
                    }
                }
                Err(e) => failures.push(format!("{case}: configgen cannot render: {e:#}")),
            }
        }
    }
    println!(
        "{} cases, {checks} checks, {rendered} configs loaded, validated and rendered by configgen, {refused} refused by configgen, {compared} files built in Nix equal to configgen's",
        cases.len()
    );
    assert!(
        cases.len() >= 10,
        "expected the cases of tests/eval/cases.nix"
    );
    assert!(refused >= 1, "expected a case refused by configgen");
    assert!(compared >= 1, "expected a file built in Nix to compare");
    assert!(
        failures.is_empty(),
        "failed checks:\n{}",
        failures.join("\n")
    );
}

/// Whether some line of configgen's messages is `CASE/homelab-observability.json:LINE:COL: ...`
/// and contains `needle`.
fn located(case: &str, needle: &str, messages: &str) -> bool {
    let prefix = format!("{case}/homelab-observability.json:");
    messages.lines().any(|line| {
        line.strip_prefix(&prefix).is_some_and(|rest| {
            let mut parts = rest.splitn(3, ':');
            let number = |p: Option<&str>| p.is_some_and(|p| p.parse::<u32>().is_ok());
            number(parts.next()) && number(parts.next()) && rest.contains(needle)
        })
    })
}
