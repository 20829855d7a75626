//! `configgen apply`: from an edited config to the running stack. The new tree
//! is compared with the one installed at `--out`, and only what the change
//! needs happens: a daemon whose config files changed is reloaded (SIGHUP
//! where it re-reads them, else restarted), one whose command line changed is
//! restarted, units that appeared or went away are linked or unlinked.
//!
//! Units are installed as symbolic links from the unit directory into the
//! rendered tree: the installed units are then always the rendered ones (the
//! tree is swapped atomically), links only change when a unit appears or goes
//! away, and `rm` of a link undoes the install.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::plan::Plan;
use crate::render::systemd::{DROP_IN, PROBE_UNIT};
use crate::render::Tree;
use crate::runtime;
use crate::write::MARKER;

/// Where the daemons are run from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Debian packages and the rendered systemd units.
    Systemd,
    /// compose.yaml, run by `docker compose` or `podman compose`.
    Compose { engine: Engine },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

/// One thing apply does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create (or replace) a symbolic link.
    Link {
        link: PathBuf,
        target: PathBuf,
    },
    Unlink {
        link: PathBuf,
    },
    Run(Vec<String>),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Link { link, target } => {
                write!(f, "ln -sfn {} {}", target.display(), link.display())
            }
            Step::Unlink { link } => write!(f, "rm -f {}", link.display()),
            Step::Run(words) => f.write_str(&words.join(" ")),
        }
    }
}

/// Paths (relative to the tree) that were added, removed or changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub added: BTreeSet<String>,
    pub removed: BTreeSet<String>,
    pub modified: BTreeSet<String>,
}

impl Change {
    pub fn between(old: &BTreeMap<String, String>, new: &Tree) -> Change {
        let mut c = Change::default();
        for (path, contents) in new.files() {
            match old.get(path) {
                None => {
                    c.added.insert(path.to_string());
                }
                Some(before) if before != contents => {
                    c.modified.insert(path.to_string());
                }
                Some(_) => {}
            }
        }
        for path in old.keys() {
            if new.get(path).is_none() {
                c.removed.insert(path.clone());
            }
        }
        c
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        self.added.iter().chain(&self.removed).chain(&self.modified)
    }
}

/// The files of an earlier output (none if `dir` is missing or empty).
pub fn read_tree(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let empty = fs::read_dir(dir).map(|mut d| d.next().is_none());
    if !dir.exists() || matches!(empty, Ok(true)) {
        return Ok(out);
    }
    if !dir.join(MARKER).is_file() {
        bail!(
            "{} has no {MARKER}: configgen did not write it, so there is nothing to compare with",
            dir.display()
        );
    }
    read_into(dir, dir, &mut out)?;
    out.remove(MARKER);
    Ok(out)
}

fn read_into(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            read_into(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("below root");
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            out.insert(rel.to_string_lossy().into_owned(), text);
        }
    }
    Ok(())
}

/// A unit and the rendered files (or directories) its daemon reads.
struct Reader {
    unit: String,
    compose_service: Option<&'static str>,
    files: Vec<String>,
    reloads_on_sighup: bool,
}

fn readers(plan: &Plan) -> Vec<Reader> {
    let dir = format!("{}/", plan.cfg.deploy.config_dir.trim_end_matches('/'));
    let relative = |files: &[String]| -> Vec<String> {
        files
            .iter()
            .filter_map(|f| f.strip_prefix(&dir).map(str::to_string))
            .collect()
    };
    let mut out: Vec<Reader> = runtime::daemons(plan)
        .iter()
        .map(|d| Reader {
            unit: d.package.unit.to_string(),
            compose_service: Some(d.name),
            files: relative(&d.config_files),
            reloads_on_sighup: d.reloads_on_sighup,
        })
        .collect();
    if runtime::probe_args(plan).is_some() {
        out.push(Reader {
            unit: PROBE_UNIT.into(),
            compose_service: None,
            files: vec!["probe/probe.toml".into()],
            reloads_on_sighup: false,
        });
    }
    out
}

impl Reader {
    fn reads(&self, change: &Change) -> bool {
        change.all().any(|p| {
            self.files.iter().any(|f| {
                p == f
                    || p.strip_prefix(f.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
        })
    }
}

/// The unit a rendered path under systemd/ installs, and its file name in the
/// unit directory.
fn unit_of(path: &str) -> Option<(String, String)> {
    let rel = path.strip_prefix("systemd/")?;
    match rel.split_once('/') {
        Some((dir, file)) if file == DROP_IN => {
            let unit = dir.strip_suffix(".d")?;
            Some((unit.to_string(), rel.to_string()))
        }
        Some(_) => None,
        None => Some((rel.to_string(), rel.to_string())),
    }
}

/// What the change needs, for the rendered tree at `out` (an absolute path,
/// equal to `deploy.config_dir`).
pub fn steps(
    target: Target,
    change: &Change,
    plan: &Plan,
    new: &Tree,
    out: &Path,
    unit_dir: &Path,
) -> Result<Vec<Step>> {
    let readers = readers(plan);
    let mut steps = systemd_unit_steps(change, &readers, out, unit_dir, target);
    match target {
        Target::Systemd => {}
        Target::Compose { engine } => {
            if new.get("compose.yaml").is_none() {
                bail!("the rendered tree has no compose.yaml");
            }
            let compose = |args: &[&str]| -> Step {
                let mut words = match engine {
                    Engine::Docker => vec!["docker".to_string()],
                    Engine::Podman => vec!["podman".to_string()],
                };
                words.push("compose".into());
                words.push("-f".into());
                words.push(out.join("compose.yaml").display().to_string());
                words.extend(args.iter().map(|a| a.to_string()));
                Step::Run(words)
            };
            // `up -d` recreates the services whose definition changed and
            // starts new ones; the configs they mount are re-read below.
            steps.push(compose(&["up", "-d", "--remove-orphans"]));
            for r in &readers {
                let Some(service) = r.compose_service else {
                    continue;
                };
                if r.reads(change) {
                    steps.push(if r.reloads_on_sighup {
                        compose(&["kill", "-s", "HUP", service])
                    } else {
                        compose(&["restart", service])
                    });
                }
            }
        }
    }
    Ok(steps)
}

/// Links, daemon-reload and (re)starts for the units under systemd/. On the
/// compose target only the probe's unit is a host unit.
fn systemd_unit_steps(
    change: &Change,
    readers: &[Reader],
    out: &Path,
    unit_dir: &Path,
    target: Target,
) -> Vec<Step> {
    let host_unit = |unit: &str| target == Target::Systemd || unit == PROBE_UNIT;
    let mut steps = Vec::new();
    let mut reload_daemon = false;
    // Units whose own file changed: their command line may differ.
    let mut restart = BTreeSet::new();
    let mut enable = BTreeSet::new();
    let mut stop = BTreeSet::new();
    for path in change.all() {
        let Some((unit, file)) = unit_of(path) else {
            continue;
        };
        if !host_unit(&unit) {
            continue;
        }
        reload_daemon = true;
        let link = unit_dir.join(&file);
        if change.removed.contains(path) {
            steps.push(Step::Unlink { link });
            stop.insert(unit);
            continue;
        }
        if change.added.contains(path) {
            steps.push(Step::Link {
                link,
                target: out.join(path),
            });
            // A whole unit is ours to enable; a package enables its own.
            if !path.ends_with(DROP_IN) {
                enable.insert(unit.clone());
            }
        }
        restart.insert(unit);
    }
    let reload: Vec<&Reader> = readers
        .iter()
        .filter(|r| host_unit(&r.unit) && !restart.contains(&r.unit) && r.reads(change))
        .collect();
    // Writing the tree replaces every installed unit file (new inodes, new
    // mtimes): systemd counts them as changed on disk, and says so, until
    // a daemon-reload, even when their contents are the same.
    if reload_daemon || !reload.is_empty() {
        steps.push(Step::Run(vec!["systemctl".into(), "daemon-reload".into()]));
    }
    let systemctl = |verb: &[&str], unit: &str| {
        Step::Run(
            ["systemctl"]
                .iter()
                .chain(verb)
                .map(|w| w.to_string())
                .chain([unit.to_string()])
                .collect(),
        )
    };
    for unit in &stop {
        if !restart.contains(unit) {
            steps.push(systemctl(&["disable", "--now"], unit));
        }
    }
    for unit in &enable {
        steps.push(systemctl(&["enable"], unit));
    }
    for unit in &restart {
        steps.push(systemctl(&["restart"], unit));
    }
    for r in reload {
        // ExecReload= sends SIGHUP where the daemon re-reads its files;
        // without one, reload-or-restart restarts.
        steps.push(systemctl(&["reload-or-restart"], &r.unit));
    }
    steps
}

/// Carries out the steps, stopping at the first that fails.
pub fn execute(steps: &[Step]) -> Result<()> {
    for step in steps {
        println!("{step}");
        match step {
            Step::Link { link, target } => {
                if let Some(parent) = link.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create {}", parent.display()))?;
                }
                match fs::symlink_metadata(link) {
                    Ok(m) if m.file_type().is_symlink() => fs::remove_file(link)?,
                    Ok(_) => bail!(
                        "{} exists and is not a link configgen made; move it away first",
                        link.display()
                    ),
                    Err(_) => {}
                }
                std::os::unix::fs::symlink(target, link)
                    .with_context(|| format!("cannot link {}", link.display()))?;
            }
            Step::Unlink { link } => {
                if fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
                    fs::remove_file(link)
                        .with_context(|| format!("cannot remove {}", link.display()))?;
                }
            }
            Step::Run(words) => {
                let status = Command::new(&words[0])
                    .args(&words[1..])
                    .status()
                    .with_context(|| format!("cannot run {}", words[0]))?;
                if !status.success() {
                    bail!("`{step}` failed ({status})");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertOverride, Config};

    const OUT: &str = "/etc/homelab-observability";
    const UNITS: &str = "/etc/systemd/system";

    fn tree(cfg: &Config) -> Tree {
        crate::render::render(cfg).unwrap()
    }

    fn files(t: &Tree) -> BTreeMap<String, String> {
        t.files()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect()
    }

    fn plan_steps(target: Target, before: &Config, after: &Config) -> Vec<String> {
        let (old, new) = (tree(before), tree(after));
        let change = Change::between(&files(&old), &new);
        let plan = Plan::new(after);
        steps(
            target,
            &change,
            &plan,
            &new,
            Path::new(OUT),
            Path::new(UNITS),
        )
        .unwrap()
        .iter()
        .map(Step::to_string)
        .collect()
    }

    fn example() -> Config {
        let text = include_str!("../../../examples/homelab.toml");
        toml::from_str(text).unwrap()
    }

    #[test]
    fn nothing_changed_nothing_runs() {
        let cfg = example();
        assert!(plan_steps(Target::Systemd, &cfg, &cfg).is_empty());
    }

    #[test]
    fn an_alert_rule_edit_reloads_prometheus_only() {
        let before = example();
        let mut after = before.clone();
        after.alerting.overrides.insert(
            "HostDiskAlmostFull".into(),
            AlertOverride {
                for_: Some("17m".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            plan_steps(Target::Systemd, &before, &after),
            [
                "systemctl daemon-reload",
                "systemctl reload-or-restart prometheus.service"
            ]
        );
    }

    #[test]
    fn a_flag_change_restarts_the_unit_after_daemon_reload() {
        let before = example();
        let mut after = before.clone();
        after.prometheus.retention = "91d".into();
        assert_eq!(
            plan_steps(Target::Systemd, &before, &after),
            [
                "systemctl daemon-reload",
                "systemctl restart prometheus.service"
            ]
        );
    }

    #[test]
    fn a_first_apply_links_every_unit_and_starts_it() {
        let cfg = example();
        let new = tree(&cfg);
        let change = Change::between(&BTreeMap::new(), &new);
        let plan = Plan::new(&cfg);
        let steps = steps(
            Target::Systemd,
            &change,
            &plan,
            &new,
            Path::new(OUT),
            Path::new(UNITS),
        )
        .unwrap();
        let text: Vec<String> = steps.iter().map(Step::to_string).collect();
        assert!(text.contains(&format!(
            "ln -sfn {OUT}/systemd/prometheus.service.d/{DROP_IN} {UNITS}/prometheus.service.d/{DROP_IN}"
        )));
        assert!(text.contains(&format!(
            "ln -sfn {OUT}/systemd/cadvisor.service {UNITS}/cadvisor.service"
        )));
        assert!(text.contains(&"systemctl enable cadvisor.service".to_string()));
        assert!(!text.contains(&"systemctl enable prometheus.service".to_string()));
        assert!(text.contains(&"systemctl restart grafana-server.service".to_string()));
        assert!(
            !text.iter().any(|s| s.contains("reload-or-restart")),
            "{text:#?}"
        );
        let daemon_reload = text
            .iter()
            .position(|s| s == "systemctl daemon-reload")
            .unwrap();
        assert!(text[..daemon_reload].iter().all(|s| s.starts_with("ln ")));
    }

    #[test]
    fn a_disabled_daemon_is_unlinked_and_stopped() {
        let before = example();
        let mut after = before.clone();
        after.exporters.cadvisor.enable = false;
        let text = plan_steps(Target::Systemd, &before, &after);
        assert!(
            text.contains(&format!("rm -f {UNITS}/cadvisor.service")),
            "{text:?}"
        );
        assert!(text.contains(&"systemctl disable --now cadvisor.service".to_string()));
    }

    #[test]
    fn compose_reloads_by_signal_or_restart() {
        // compose.yaml is not rendered on this branch; the decision only
        // needs the tree to have one.
        let before = example();
        let mut after = before.clone();
        after.alerting.overrides.insert(
            "HostDiskAlmostFull".into(),
            AlertOverride {
                for_: Some("17m".into()),
                ..Default::default()
            },
        );
        after.loki.retention = "60d".into();
        let (old, mut new) = (tree(&before), tree(&after));
        let mut old_files = files(&old);
        if new.get("compose.yaml").is_none() {
            new.add("compose.yaml", "services: {}\n").unwrap();
            old_files.insert("compose.yaml".into(), "services: {}\n".into());
        }
        let change = Change::between(&old_files, &new);
        let plan = Plan::new(&after);
        let target = Target::Compose {
            engine: Engine::Podman,
        };
        let text: Vec<String> = steps(
            target,
            &change,
            &plan,
            &new,
            Path::new(OUT),
            Path::new(UNITS),
        )
        .unwrap()
        .iter()
        .map(Step::to_string)
        .collect();
        let compose = format!("podman compose -f {OUT}/compose.yaml");
        assert_eq!(
            text,
            [
                format!("{compose} up -d --remove-orphans"),
                format!("{compose} kill -s HUP prometheus"),
                format!("{compose} restart loki"),
            ]
        );
    }

    #[test]
    fn unit_paths_name_their_unit() {
        assert_eq!(
            unit_of(&format!("systemd/loki.service.d/{DROP_IN}")),
            Some(("loki.service".into(), format!("loki.service.d/{DROP_IN}")))
        );
        assert_eq!(
            unit_of("systemd/cadvisor.service"),
            Some(("cadvisor.service".into(), "cadvisor.service".into()))
        );
        assert_eq!(unit_of("prometheus/prometheus.yml"), None);
    }
}
