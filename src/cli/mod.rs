//! Command-line entry points. Each subcommand lives in its own module and returns an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyze;
mod bench_judge;
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
    /// Judge exported canary/baseline data offline (exit 0 pass, 1 fail, 2 inconclusive).
    Analyze(analyze::AnalyzeArgs),
    /// Benchmark the canary judge against Kayenta-style and threshold judges (simulation).
    BenchJudge(bench_judge::BenchJudgeArgs),
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => crd::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::BenchJudge(args) => bench_judge::run(args),
    }
}
