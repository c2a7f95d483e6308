//! Command-line entry points. Each subcommand lives in its own module and returns an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyze;
mod bench_judge;
pub mod can_i_deploy;
pub mod controller;
mod crd;
pub mod kube_args;
pub mod record_deployment;
pub mod rollouts;
pub mod verify;

/// This build's version: the crate version with the git commit as build metadata
/// (`0.1.0+9014dbb6b9c1`), so it identifies exactly one build (see build.rs).
pub const VERSION: &str = env!("TOLLGATE_VERSION");

/// The git commit this binary was built from (`unknown` when neither git nor
/// `TOLLGATE_GIT_COMMIT` said; `-dirty` when the tree had uncommitted changes).
pub const GIT_COMMIT: &str = env!("TOLLGATE_GIT_COMMIT");

/// What `tollgate --version` prints after the name.
const VERSION_LINE: &str = concat!(
    env!("TOLLGATE_VERSION"),
    " (commit ",
    env!("TOLLGATE_GIT_COMMIT"),
    ")"
);

/// tollgate: contract gate, fleet attestation and sequential canary analysis for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version = VERSION_LINE, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the Rollout CustomResourceDefinition as YAML.
    Crd(crd::CrdArgs),
    /// Run the operator: watch Rollouts and walk each through its gates.
    Controller(Box<controller::ControllerArgs>),
    /// Ask every ready pod matching a selector which version and configuration it runs.
    /// Exit 0 when all match, 1 on a mismatch or a pod that does not answer, 3 on error.
    Verify(Box<verify::VerifyArgs>),
    /// List Rollouts with their phase, step, weight and versions.
    List(rollouts::ListArgs),
    /// Show a Rollout's evidence as a tree: gates, steps, metrics, failing pods.
    /// With --wait: exit 0 promoted, 1 rolled back or blocked, 2 timed out.
    Status(rollouts::StatusArgs),
    /// Promote now, skipping the remaining steps (contract and fleet gates still apply).
    Promote(rollouts::ControlArgs),
    /// Roll back now: traffic returns to stable, the canary is scaled to zero.
    Abort(rollouts::ControlArgs),
    /// Try a blocked or rolled-back version again.
    Retry(rollouts::ControlArgs),
    /// Pause: no step advances and nothing is promoted (a regression still rolls back).
    Pause(rollouts::ControlArgs),
    /// Resume after `pause`, a pause step without duration, or a hold on inconclusive analysis.
    Resume(rollouts::ControlArgs),
    /// Judge exported canary/baseline data offline (exit 0 pass, 1 fail, 2 inconclusive).
    Analyze(analyze::AnalyzeArgs),
    /// Benchmark the canary judge against Kayenta-style and threshold judges (simulation).
    BenchJudge(bench_judge::BenchJudgeArgs),
    /// Ask the Pact Broker whether a version may be deployed to an environment (exit 0 yes, 1 no,
    /// 2 still unknown, 3 broker or configuration error).
    CanIDeploy(can_i_deploy::CanIDeployArgs),
    /// Tell the Pact Broker that a version now runs in an environment.
    RecordDeployment(record_deployment::RecordDeploymentArgs),
}

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => crd::run(args),
        Command::Controller(args) => controller::run(*args),
        Command::Verify(args) => verify::run(*args),
        Command::List(args) => rollouts::list(args),
        Command::Status(args) => rollouts::status(args),
        Command::Promote(args) => rollouts::control(rollouts::Control::Promote, args),
        Command::Abort(args) => rollouts::control(rollouts::Control::Abort, args),
        Command::Retry(args) => rollouts::control(rollouts::Control::Retry, args),
        Command::Pause(args) => rollouts::control(rollouts::Control::Pause, args),
        Command::Resume(args) => rollouts::control(rollouts::Control::Resume, args),
        Command::Analyze(args) => analyze::run(args),
        Command::BenchJudge(args) => bench_judge::run(args),
        Command::CanIDeploy(args) => can_i_deploy::run(args),
        Command::RecordDeployment(args) => record_deployment::run(args),
    }
}

/// Log to stderr for the CLI subcommands (RUST_LOG, default warnings only); stdout stays the result.
fn init_cli_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
