//! Command-line entry points. Each subcommand lives in its own module and returns an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod crd;
pub mod verify;

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
    /// Ask every ready pod matching a selector which version and configuration it runs.
    /// Exit 0 when all match, 1 on a mismatch or a pod that does not answer, 3 on error.
    Verify(Box<verify::VerifyArgs>),
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => crd::run(args),
        Command::Verify(args) => verify::run(*args),
    }
}
