//! `configgen`: render, check or describe a homelab-observability config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use configgen::load::{self, Diagnostic, Source};

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
    /// empty, or an earlier output (it then holds a .configgen-output marker).
    Render {
        /// Config file: .toml, .yaml, .yml or .json; `-` reads JSON from stdin.
        #[arg(long, value_name = "FILE")]
        config: String,
        /// Output directory (created if missing, replaced if an earlier output).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Validate the config and report every problem as FILE:LINE:COL: field.path: message.
    Check {
        /// Config file: .toml, .yaml, .yml or .json; `-` reads JSON from stdin.
        #[arg(long, value_name = "FILE")]
        config: String,
    },
    /// Print the JSON Schema of the config file.
    Schema,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Render { config, out } => {
            let cfg = match load_config(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            let result = configgen::render::render(&cfg)
                .and_then(|tree| configgen::write::write_tree(&tree, &out).map(|()| tree));
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
            for mut w in parsed.locate(configgen::secret_files::check(&parsed.config)) {
                w.message = format!("warning: {}", w.message);
                eprintln!("{w}");
            }
            println!("{config}: ok ({} services)", parsed.config.services.len());
            ExitCode::SUCCESS
        }
        Command::Schema => {
            print!("{}", configgen::schema::json_schema());
            ExitCode::SUCCESS
        }
    }
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
