//! Command-line entry points. Each subcommand lives in its own module and returns an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crd;

/// tollgate: contract gate, fleet attestation and sequential canary analysis for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Rollout CustomResourceDefinition as YAML.
    Crd(crd::CrdArgs),
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => crd::run(args),
    }
}
