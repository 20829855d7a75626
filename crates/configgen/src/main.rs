//! `configgen`: render, check or describe a homelab-observability config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use configgen::apply;
use configgen::load::{self, Diagnostic, Source};
use configgen::write::UserFile;

/// Compiles one declarative homelab config (TOML, YAML or JSON) into every
/// config file of the monitoring stack: Prometheus, Alertmanager, blackbox,
/// Loki, Alloy, Tempo, Grafana and the eBPF RED probe.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config and write the rendered tree to DIR.
    ///
    /// DIR is replaced as a whole, atomically: it ends up holding exactly the
    /// rendered files, or (on any error) stays as it was. DIR must be new,
    /// empty, or an earlier output holding nothing else (its .configgen-output
    /// marker lists what configgen wrote); it must not hold the config file or
    /// any file the config names (secrets, rule files).
    Render {
        /// Config file: .toml, .yaml, .yml or .json; `-` reads JSON from stdin.
        #[arg(long, value_name = "FILE")]
        config: String,
        /// Output directory (created if missing, replaced if an earlier output).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Render like `render`, then reload or restart only what the change needs.
    ///
    /// Compares the new tree with the one at DIR (which must be the config's
    /// deploy.config_dir, where the daemons read it). systemd: links new units
    /// and drop-ins into the unit directory (symbolic links into DIR), runs
    /// daemon-reload when one changed, restarts units whose command line
    /// changed and runs reload-or-restart for units whose config files changed
    /// (SIGHUP for Prometheus, Alertmanager, blackbox_exporter, Alloy).
    /// compose: `docker compose up -d`, then `kill -s HUP` or `restart` for
    /// services whose mounted config changed. Each step is printed as it runs.
    Apply {
        /// Config file: .toml, .yaml, .yml or .json; `-` reads JSON from stdin.
        #[arg(long, value_name = "FILE")]
        config: String,
        /// The installed tree: the config's deploy.config_dir.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Target::Systemd)]
        target: Target,
        /// Container engine for --target compose.
        #[arg(long, value_enum, default_value_t = Engine::Docker)]
        engine: Engine,
        /// Where units are linked for --target systemd.
        #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
        /// Print the changed files and the steps; write and run nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config and report every problem as FILE:LINE:COL: field.path: message.
    Check {
        /// Config file: .toml, .yaml, .yml or .json; `-` reads JSON from stdin.
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// Print the JSON Schema of the config file.
    Schema,
    /// Print the services this host's reverse proxies and containers declare,
    /// as `[[services]]` blocks to review and keep in the config.
    ///
    /// With no option, reads /etc/caddy/Caddyfile, /etc/nginx (its
    /// sites-enabled/* and conf.d/*.conf) and the Docker and Podman sockets
    /// that exist; with any option, only what the options name.
    Discover {
        /// A Caddyfile (repeatable).
        #[arg(long, value_name = "FILE")]
        caddyfile: Vec<PathBuf>,
        /// nginx's directory (its sites-enabled/* and conf.d/*.conf) or one site file (repeatable).
        #[arg(long, value_name = "PATH")]
        nginx: Vec<PathBuf>,
        /// A Docker or Podman API socket (repeatable).
        #[arg(long, value_name = "SOCKET")]
        socket: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    Systemd,
    Compose,
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    Docker,
    Podman,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Render { config, out } => {
            let cfg = match load_config(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let keep = user_files(&cfg, &config);
            let result = configgen::render::render_here(&cfg)
                .and_then(|tree| configgen::write::write_tree(&tree, &out, &keep).map(|()| tree));
            match result {
                Ok(tree) => {
                    println!("wrote {} files to {}", tree.files().count(), out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("configgen: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Apply {
            config,
            out,
            target,
            engine,
            unit_dir,
            dry_run,
        } => {
            let cfg = match load_config(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let target = match target {
                Target::Systemd => apply::Target::Systemd,
                Target::Compose => apply::Target::Compose {
                    engine: match engine {
                        Engine::Docker => apply::Engine::Docker,
                        Engine::Podman => apply::Engine::Podman,
                    },
                },
            };
            let keep = user_files(&cfg, &config);
            match run_apply(&cfg, &keep, &out, target, &unit_dir, dry_run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("configgen: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => {
            let parsed = match Source::read(&config)
                .map_err(|d| vec![d])
                .and_then(|src| load::parse(&src))
            {
                Ok(parsed) => parsed,
                Err(diagnostics) => {
                    report(&diagnostics);
                    return ExitCode::FAILURE;
                }
            };
            let issues = configgen::validate::validate(&parsed.config);
            if !issues.is_empty() {
                report(&parsed.locate(issues));
                return ExitCode::FAILURE;
            }
            // Only here, on the host that runs the daemons: render never reads secrets.
            let mut warnings = configgen::secret_files::check(&parsed.config);
            warnings.extend(configgen::plan::containers::check_sockets(&parsed.config));
            for mut w in parsed.locate(warnings) {
                w.message = format!("warning: {}", w.message);
                eprintln!("{w}");
            }
            println!("{config}: ok ({} services)", parsed.config.services.len());
            ExitCode::SUCCESS
        }
        Command::Discover {
            caddyfile,
            nginx,
            socket,
        } => {
            let sources = configgen::discover::Sources {
                caddyfiles: caddyfile,
                nginx,
                sockets: socket,
            };
            match configgen::discover::run(sources) {
                Ok(toml) => {
                    print!("{toml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("configgen: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Schema => {
            print!("{}", configgen::schema::json_schema());
            ExitCode::SUCCESS
        }
    }
}

/// The files of the user's that a render must never replace: the config
/// itself and every file it names.
fn user_files(cfg: &configgen::model::Config, config: &str) -> Vec<UserFile> {
    let mut keep: Vec<UserFile> = cfg
        .referenced_files()
        .iter()
        .map(UserFile::referenced)
        .collect();
    if config != "-" {
        keep.push(UserFile::config(Path::new(config)));
    }
    keep
}

fn run_apply(
    cfg: &configgen::model::Config,
    keep: &[UserFile],
    out: &std::path::Path,
    target: apply::Target,
    unit_dir: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    let out = std::path::absolute(out)?;
    let config_dir = std::path::Path::new(&cfg.deploy.config_dir);
    if out != config_dir {
        anyhow::bail!(
            "--out {} is not deploy.config_dir ({}), where the rendered units and compose.yaml \
             tell the daemons to read their files",
            out.display(),
            config_dir.display()
        );
    }
    let tree = configgen::render::render_here(cfg)?;
    let old = apply::read_tree(&out)?;
    let change = apply::Change::between(&old, &tree);
    let plan = configgen::plan::Plan::new(cfg);
    let steps = apply::steps(target, &change, &plan, &tree, &out, unit_dir)?;
    for (mark, paths) in [
        ("+", &change.added),
        ("-", &change.removed),
        ("~", &change.modified),
    ] {
        for p in paths {
            println!("{mark} {p}");
        }
    }
    if dry_run {
        println!("dry run: would write {} and run:", out.display());
        for step in &steps {
            println!("  {step}");
        }
        return Ok(());
    }
    configgen::write::write_tree(&tree, &out, keep)?;
    println!("wrote {} files to {}", tree.files().count(), out.display());
    apply::execute(&steps)
}

fn load_config(arg: &str) -> Result<configgen::model::Config, ExitCode> {
    let result = Source::read(arg)
        .map_err(|d| vec![d])
        .and_then(|src| load::load(&src));
    result.map_err(|diagnostics| {
        report(&diagnostics);
        ExitCode::FAILURE
    })
}

fn report(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
    let n = diagnostics.len();
    eprintln!("configgen: {n} error{}", if n == 1 { "" } else { "s" });
}
