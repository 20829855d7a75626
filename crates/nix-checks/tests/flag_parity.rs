//! The NixOS module runs each daemon with configgen's flags. For every
//! rendering case of tests/eval, the command lines nixpkgs' modules build from
//! the evaluated options (tests/eval/command-lines.nix) are compared with
//! configgen's runtime model (`runtime::daemons`) for the JSON config the
//! module hands to configgen: the same daemons run, every flag is equal, and
//! the few flags NixOS states differently by design (listed below, with the
//! reason) mean the same; listeners set through options, the data
//! directories nixpkgs fixes and the secret files the module states in Nix
//! agree too, and so do Alloy's container-socket mounts. The eBPF probe's
//! unit, the module's own, is compared with `runtime::probe_args` and
//! `runtime::probe_capabilities` the same way.
//! Needs NIXPKGS_LIB and `nix-instantiate`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use configgen::plan::Plan;
use configgen::runtime;
use serde_json::Value;

/// How a flag NixOS states differently still means the same.
enum Meaning {
    /// Both name the same file of the rendered tree: configgen's path is under
    /// `deploy.config_dir`, the unit's is a store path (or a copy of one).
    TreeFile,
    /// Both have the flag; its value is NixOS' own by design.
    Present,
    /// Only nixpkgs' module passes it, always, whatever configgen decides.
    NixpkgsOnly,
}

/// A flag NixOS states differently by design.
struct ByDesign {
    daemon: &'static str,
    flag: &'static str,
    meaning: Meaning,
    why: &'static str,
}

/// The probe's unit in tests/eval/command-lines.nix; configgen's runtime model
/// has it apart from `runtime::daemons` (a host unit on every target).
const PROBE: &str = "homelab-probe";

/// The command line's arguments (not flags), compared like a flag.
const ARGUMENTS: &str = "(arguments)";

const BY_DESIGN: &[ByDesign] = &[
    ByDesign {
        daemon: "prometheus",
        flag: "--config.file",
        meaning: Meaning::Present,
        why: "nixpkgs generates prometheus.yml from services.prometheus options; the module hands it the tree's scrape jobs (file_sd) and rules (ruleFiles), so a user's own merge",
    },
    ByDesign {
        daemon: "prometheus",
        flag: "--storage.tsdb.path",
        meaning: Meaning::Present,
        why: "NixOS keeps the TSDB in the unit's StateDirectory (services.prometheus.stateDir)",
    },
    ByDesign {
        daemon: "prometheus",
        flag: "--alertmanager.notification-queue-capacity",
        meaning: Meaning::NixpkgsOnly,
        why: "nixpkgs passes its option, whose default 10000 is Prometheus' own",
    },
    ByDesign {
        daemon: "alertmanager",
        flag: "--config.file",
        meaning: Meaning::TreeFile,
        why: "nixpkgs' unit reads /tmp/alert-manager-substituted.yaml, which the module's preStart fills with the tree's file",
    },
    ByDesign {
        daemon: "alertmanager",
        flag: "--storage.path",
        meaning: Meaning::Present,
        why: "nixpkgs runs Alertmanager with DynamicUser and StateDirectory=alertmanager",
    },
    ByDesign {
        daemon: "alertmanager",
        flag: "--log.level",
        meaning: Meaning::NixpkgsOnly,
        why: "nixpkgs' logLevel option (default warn): logging only",
    },
    ByDesign {
        daemon: "blackbox-exporter",
        flag: "--config.file",
        meaning: Meaning::TreeFile,
        why: "a store link to the tree's file, checked by nixpkgs' config check",
    },
    ByDesign {
        daemon: "cadvisor",
        flag: "--logtostderr",
        meaning: Meaning::NixpkgsOnly,
        why: "nixpkgs' script always passes it; it is klog's own default",
    },
    ByDesign {
        daemon: "loki",
        flag: "--config.file",
        meaning: Meaning::TreeFile,
        why: "the tree is in the Nix store, not at deploy.config_dir",
    },
    ByDesign {
        daemon: "tempo",
        flag: "--config.file",
        meaning: Meaning::TreeFile,
        why: "the tree is in the Nix store, not at deploy.config_dir",
    },
    ByDesign {
        daemon: PROBE,
        flag: "--config",
        meaning: Meaning::TreeFile,
        why: "the tree is in the Nix store, not at deploy.config_dir",
    },
    ByDesign {
        daemon: "alloy",
        flag: ARGUMENTS,
        meaning: Meaning::TreeFile,
        why: "Alloy's config directory: the tree is in the Nix store, not at deploy.config_dir",
    },
];

/// Where a case sets nixpkgs' options itself: the user's own values win on
/// NixOS (coexistence), so these flags may differ there.
const USERS_OWN: &[(&str, &str, &str)] = &[
    (
        "users-own-prometheus-settings",
        "prometheus",
        "--web.enable-admin-api",
    ),
    (
        "users-own-prometheus-settings",
        "prometheus",
        "--storage.tsdb.retention.time",
    ),
    // A cluster of the user's: gossip is theirs to place.
    (
        "alertmanager-cluster",
        "alertmanager",
        "--cluster.listen-address",
    ),
    ("alertmanager-cluster", "alertmanager", "--cluster.peer"),
];

/// Flags of the Prometheus family whose value nixpkgs passes as the next word.
const SEPARATE_VALUE: &[&str] = &[
    "--config.file",
    "--web.listen-address",
    "--log.level",
    "--log.format",
    "--storage.path",
    "--cluster.peer",
    "--web.external-url",
    "--config",
];

/// Programs using Go's `flag` package, for which `-name` and `--name` are one flag.
const GO_FLAG: &[&str] = &["cadvisor", "loki", "tempo"];

/// A command line as flag name -> values (a flag may repeat), and arguments.
#[derive(Default, Debug)]
struct Args {
    flags: BTreeMap<String, Vec<String>>,
    arguments: Vec<String>,
}

fn parse(daemon: &str, argv: &[String]) -> Args {
    let mut out = Args::default();
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        if !word.starts_with('-') {
            out.arguments.push(word.clone());
            continue;
        }
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None if SEPARATE_VALUE.contains(&word.as_str()) => (
                word.clone(),
                words
                    .next()
                    .unwrap_or_else(|| panic!("{daemon}: {word} without its value"))
                    .clone(),
            ),
            None => (word.clone(), String::new()),
        };
        let name = if GO_FLAG.contains(&daemon) && !name.starts_with("--") {
            format!("-{name}")
        } else {
            name
        };
        out.flags.entry(name).or_default().push(value);
    }
    out
}

fn by_design(daemon: &str, flag: &str) -> Option<&'static Meaning> {
    BY_DESIGN
        .iter()
        .find(|b| b.daemon == daemon && b.flag == flag)
        .map(|b| &b.meaning)
}

struct Tally {
    equal: usize,
    by_meaning: usize,
    users_own: usize,
}

/// Differences between configgen's and the unit's command line of one daemon.
fn compare(
    case: &str,
    name: &str,
    args: &[String],
    config_dir: &str,
    nix: &Value,
    tally: &mut Tally,
) -> Vec<String> {
    let mut failures = Vec::new();
    let argv: Vec<String> = serde_json::from_value(nix["argv"].clone()).unwrap();
    let files = &nix["files"];
    let ours = parse(name, args);
    let theirs = parse(name, &argv);
    let in_tree = |path: &str| {
        path.strip_prefix(config_dir)
            .map(|rel| rel.trim_start_matches('/').to_string())
    };
    let tree_file_of = |unit_path: &str| files[unit_path].as_str().map(str::to_string);

    let names: BTreeSet<&String> = ours.flags.keys().chain(theirs.flags.keys()).collect();
    for flag in names {
        let (mine, unit) = (ours.flags.get(flag), theirs.flags.get(flag));
        if USERS_OWN
            .iter()
            .any(|own| own == &(case, name, flag.as_str()))
        {
            tally.users_own += 1;
            continue;
        }
        match (by_design(name, flag), mine, unit) {
            (_, Some(mine), Some(unit)) if mine == unit => tally.equal += 1,
            (Some(Meaning::Present), Some(_), Some(_)) => tally.by_meaning += 1,
            (Some(Meaning::NixpkgsOnly), None, Some(_)) => tally.by_meaning += 1,
            (Some(Meaning::TreeFile), Some(mine), Some(unit)) => {
                let mine: Vec<Option<String>> = mine.iter().map(|p| in_tree(p)).collect();
                let unit: Vec<Option<String>> = unit.iter().map(|p| tree_file_of(p)).collect();
                if mine.iter().all(Option::is_some) && mine == unit {
                    tally.by_meaning += 1;
                } else {
                    failures.push(format!(
                        "{case}: {name} {flag}: configgen's file {mine:?} (tree-relative), the unit's {unit:?}"
                    ));
                }
            }
            (_, mine, unit) => failures.push(format!(
                "{case}: {name} {flag}: configgen {}, the NixOS unit {}",
                shown(mine),
                shown(unit)
            )),
        }
    }

    // Arguments (Alloy's subcommand and config directory).
    let argument_meaning = by_design(name, ARGUMENTS);
    let mine: Vec<Option<String>> = ours
        .arguments
        .iter()
        .map(|a| match argument_meaning {
            Some(Meaning::TreeFile) => in_tree(a).or_else(|| Some(a.clone())),
            _ => Some(a.clone()),
        })
        .collect();
    let unit: Vec<Option<String>> = theirs
        .arguments
        .iter()
        .map(|a| match argument_meaning {
            Some(Meaning::TreeFile) => tree_file_of(a).or_else(|| Some(a.clone())),
            _ => Some(a.clone()),
        })
        .collect();
    if mine != unit {
        failures.push(format!(
            "{case}: {name} arguments: configgen {mine:?}, the NixOS unit {unit:?}"
        ));
    } else {
        tally.equal += mine.len();
    }
    failures
}

fn shown(values: Option<&Vec<String>>) -> String {
    match values {
        None => "does not pass it".into(),
        Some(v) => format!("passes {v:?}"),
    }
}

#[test]
fn nixos_units_run_configgens_flags() {
    let Some(cases) = common::evaluate_cases("nixos_units_run_configgens_flags") else {
        return;
    };
    let mut failures = Vec::new();
    let mut tally = Tally {
        equal: 0,
        by_meaning: 0,
        users_own: 0,
    };
    let (mut compared_cases, mut compared_daemons) = (0, 0);
    for (case, result) in &cases {
        let Some(units) = result["commandLines"].as_object() else {
            continue;
        };
        compared_cases += 1;
        let cfg = common::config_of(case, &result["config"]);
        let plan = Plan::new(&cfg);
        let daemons = runtime::daemons(&plan);
        let config_dir = cfg.deploy.config_dir.trim_end_matches('/');

        let configgen_runs: BTreeSet<&str> = daemons.iter().map(|d| d.name).collect();
        let nixos_runs: BTreeSet<&str> = units
            .keys()
            .map(String::as_str)
            .filter(|name| *name != PROBE)
            .collect();
        if configgen_runs != nixos_runs {
            failures.push(format!(
                "{case}: configgen runs {configgen_runs:?}, the NixOS units are {nixos_runs:?}"
            ));
        }
        for daemon in &daemons {
            let Some(unit) = units.get(daemon.name) else {
                continue;
            };
            compared_daemons += 1;
            if unit.get("argv").is_some() {
                failures.extend(compare(
                    case,
                    daemon.name,
                    &daemon.args,
                    config_dir,
                    unit,
                    &mut tally,
                ));
            } else if !daemon.args.is_empty() {
                failures.push(format!(
                    "{case}: {} has flags in configgen's runtime model ({:?}) that the module does not pass",
                    daemon.name, daemon.args
                ));
            }
            // Listeners the module sets through options, not flags.
            if let Some(listeners) = unit["listeners"].as_array() {
                let unit_listeners: Vec<(String, String, u16)> = listeners
                    .iter()
                    .map(|l| {
                        (
                            l["purpose"].as_str().unwrap().to_string(),
                            l["address"].as_str().unwrap().to_string(),
                            l["port"].as_u64().unwrap() as u16,
                        )
                    })
                    .collect();
                let model: Vec<(String, String, u16)> = daemon
                    .listeners
                    .iter()
                    .map(|l| (l.purpose.to_string(), l.address.clone(), l.port))
                    .collect();
                if model == unit_listeners {
                    tally.equal += model.len();
                } else {
                    failures.push(format!(
                        "{case}: {} listeners: configgen {model:?}, the NixOS unit {unit_listeners:?}",
                        daemon.name
                    ));
                }
            }
            // Secret files configgen's model says the daemon reads, where the
            // module hands them over in Nix options (the rendered files carry
            // the others). The unit may read more (Grafana's secret_key).
            if let Some(secrets) = unit["secrets"].as_array() {
                let given: BTreeSet<&str> = secrets.iter().filter_map(Value::as_str).collect();
                for secret in &daemon.secrets {
                    if given.contains(secret.as_str()) {
                        tally.equal += 1;
                    } else {
                        failures.push(format!(
                            "{case}: {} reads the secret {secret} in configgen's model; the NixOS unit is given {given:?}",
                            daemon.name
                        ));
                    }
                }
            }
            // Container sockets, mounted where the rendered config names
            // them (systemd's `-src:dst`, a missing source skipped).
            if let Some(binds) = unit["bindReadOnly"].as_array() {
                let unit_binds: Vec<&str> = binds.iter().filter_map(Value::as_str).collect();
                let model: Vec<String> = daemon
                    .unit
                    .mounts
                    .iter()
                    .map(|m| format!("-{}:{}", m.source, m.target))
                    .collect();
                if model == unit_binds {
                    tally.equal += model.len();
                } else {
                    failures.push(format!(
                        "{case}: {} BindReadOnlyPaths: configgen {model:?}, the NixOS unit {unit_binds:?}",
                        daemon.name
                    ));
                }
            }
            // Where the unit may write, where nixpkgs fixes it. Prometheus'
            // and Alertmanager's are compared as flags above.
            if let (Some(dir), false) = (
                unit["dataDir"].as_str(),
                matches!(daemon.name, "prometheus" | "alertmanager"),
            ) {
                if daemon.data_dir.as_deref() != Some(dir) {
                    failures.push(format!(
                        "{case}: {} data dir: configgen {:?}, the NixOS unit writes to {dir}",
                        daemon.name, daemon.data_dir
                    ));
                }
            }
        }
        match (runtime::probe_args(&plan), units.get(PROBE)) {
            (Some(args), Some(unit)) => {
                compared_daemons += 1;
                failures.extend(compare(case, PROBE, &args, config_dir, unit, &mut tally));
                let caps: Vec<&str> = unit["capabilities"]
                    .as_array()
                    .expect("the probe unit's capabilities")
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                if caps == runtime::probe_capabilities(&plan) {
                    tally.equal += caps.len();
                } else {
                    failures.push(format!(
                        "{case}: {PROBE} capabilities: configgen {:?}, the NixOS unit {caps:?}",
                        runtime::probe_capabilities(&plan)
                    ));
                }
            }
            (None, None) => {}
            (ours, unit) => failures.push(format!(
                "{case}: {PROBE}: configgen runs it: {}, the NixOS unit exists: {}",
                ours.is_some(),
                unit.is_some()
            )),
        }
    }
    println!(
        "{compared_cases} cases, {compared_daemons} daemons: {} flags, listeners and secrets equal, {} equal in meaning (by design on NixOS), {} the user's own",
        tally.equal, tally.by_meaning, tally.users_own
    );
    for b in BY_DESIGN {
        println!("  by design: {} {}: {}", b.daemon, b.flag, b.why);
    }
    assert!(
        compared_cases >= 10,
        "expected the rendering cases of tests/eval"
    );
    assert!(
        failures.is_empty(),
        "the NixOS units and configgen's runtime model disagree:\n{}",
        failures.join("\n")
    );
}
