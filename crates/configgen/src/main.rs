//! `configgen`: render, check or describe a homelab-observability config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
            let mut keep: Vec<UserFile> = cfg
                .referenced_files()
                .iter()
                .map(UserFile::referenced)
                .collect();
            if config != "-" {
                keep.push(UserFile::config(Path::new(&config)));
            }
            let result = configgen::render::render(&cfg)
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
        Command::Check { config } => match load_config(&config) {
            Ok(cfg) => {
                println!("{config}: ok ({} services)", cfg.services.len());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
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
