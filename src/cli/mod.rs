//! Command-line entry points. Each subcommand lives in its own module and returns an exit code.
//!
//! Shared by every subcommand: durations are Go-style (`1m30s`, `500ms`, `2h`; a bare number is
//! seconds; [`crate::util::duration`]), `-o/--output` is `text`, `json` or `yaml`
//! ([`crate::util::output::OutputFormat`]), and a command line that does not parse exits 3, the
//! code every command uses for "could not run" (clap's own 2 would read as "timed out", "still
//! unknown" or "inconclusive").

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod analyze;
mod bench_judge;
mod bench_prometheus;
pub mod broker_args;
pub mod can_i_deploy;
pub mod controller;
mod crd;
pub mod dashboard;
pub mod html;
pub mod kube_args;
pub mod lint;
pub mod record_deployment;
pub mod record_undeployment;
pub mod report;
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
    /// Print a CustomResourceDefinition (Rollout, RolloutPolicy, ClusterRolloutPolicy) as YAML.
    Crd(crd::CrdArgs),
    /// Check Rollout and policy manifests offline: schema, CEL, and the merge with --policy.
    /// Exit 0 clean, 1 with findings (FILE:DOC: FIELD: MESSAGE), 2 when a file is unreadable.
    Lint(lint::LintArgs),
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
    /// A local web dashboard on 127.0.0.1: Rollouts live, each one's evidence and plots, and
    /// (with --allow-actions) the manual controls, under your kubeconfig's identity.
    Dashboard(dashboard::DashboardArgs),
    /// Judge exported canary/baseline data offline (exit 0 pass, 1 fail, 2 inconclusive).
    Analyze(analyze::AnalyzeArgs),
    /// A Rollout's evidence as one self-contained HTML page with plots, look by look.
    Report(report::ReportArgs),
    /// Benchmark the canary judge against Kayenta-style and threshold judges (simulation).
    BenchJudge(bench_judge::BenchJudgeArgs),
    /// Peak memory of a burst of analysis looks at one Prometheus (a benchmark for tests).
    #[command(hide = true)]
    BenchPrometheus(bench_prometheus::BenchPrometheusArgs),
    /// Ask the Pact Broker whether a version may be deployed to an environment (exit 0 yes, 1 no,
    /// 2 still unknown, 3 broker or configuration error).
    CanIDeploy(can_i_deploy::CanIDeployArgs),
    /// Tell the Pact Broker that a version now runs in an environment.
    RecordDeployment(record_deployment::RecordDeploymentArgs),
    /// Tell the Pact Broker that a version no longer runs in an environment.
    RecordUndeployment(record_undeployment::RecordUndeploymentArgs),
}

/// Exit code of a command line that does not parse.
pub const EXIT_USAGE: u8 = 3;

/// Parse the process arguments and run the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; anything else is a usage error.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Crd(args) => crd::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Controller(args) => controller::run(*args),
        Command::Verify(args) => verify::run(*args),
        Command::List(args) => rollouts::list(args),
        Command::Status(args) => rollouts::status(args),
        Command::Promote(args) => rollouts::control(rollouts::Control::Promote, args),
        Command::Abort(args) => rollouts::control(rollouts::Control::Abort, args),
        Command::Retry(args) => rollouts::control(rollouts::Control::Retry, args),
        Command::Pause(args) => rollouts::control(rollouts::Control::Pause, args),
        Command::Resume(args) => rollouts::control(rollouts::Control::Resume, args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Report(args) => report::run(args),
        Command::BenchJudge(args) => bench_judge::run(args),
        Command::BenchPrometheus(args) => bench_prometheus::run(args),
        Command::CanIDeploy(args) => can_i_deploy::run(args),
        Command::RecordDeployment(args) => record_deployment::run(args),
        Command::RecordUndeployment(args) => record_undeployment::run(args),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        let mut argv = vec!["tollgate"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map(|c| c.command)
            .map_err(|e| e.to_string())
    }

    /// The words of a command line (no quoting: none of these has a space in a value).
    fn words(line: &'static str) -> Vec<&'static str> {
        line.split(' ').collect()
    }

    /// Valid command lines of the commands whose required flags are many.
    const CAN_I_DEPLOY: &str = "can-i-deploy --pacticipant p --version 1 --environment e";
    const RECORD: &str = "record-deployment --pacticipant p --version 1 --environment e";
    const VERIFY: &str = "verify -n shop -l app=a --expect-version 1";

    /// Every duration flag of every command, with the rest of a valid command line.
    fn duration_flags() -> Vec<(&'static str, Vec<&'static str>, &'static str)> {
        vec![
            ("status", vec!["status", "shop"], "--timeout"),
            ("verify", words(VERIFY), "--timeout"),
            ("can-i-deploy", words(CAN_I_DEPLOY), "--retry-interval"),
            ("can-i-deploy", words(CAN_I_DEPLOY), "--connect-timeout"),
            ("can-i-deploy", words(CAN_I_DEPLOY), "--request-timeout"),
            ("record-deployment", words(RECORD), "--connect-timeout"),
            ("record-deployment", words(RECORD), "--request-timeout"),
            ("controller", vec!["controller"], "--lease-duration"),
            ("controller", vec!["controller"], "--lease-renew-grace"),
            ("controller", vec!["controller"], "--webhook-timeout"),
        ]
    }

    fn duration_of(command: &Command, flag: &str) -> Duration {
        let d = match (command, flag) {
            (Command::Status(a), _) => a.timeout,
            (Command::Verify(a), _) => a.timeout,
            (Command::CanIDeploy(a), "--retry-interval") => a.retry_interval,
            (Command::CanIDeploy(a), "--connect-timeout") => a.broker.connect_timeout,
            (Command::CanIDeploy(a), _) => a.broker.request_timeout,
            (Command::RecordDeployment(a), "--connect-timeout") => a.broker.connect_timeout,
            (Command::RecordDeployment(a), _) => a.broker.request_timeout,
            (Command::RecordUndeployment(a), "--connect-timeout") => a.broker.connect_timeout,
            (Command::RecordUndeployment(a), _) => a.broker.request_timeout,
            (Command::Controller(a), "--lease-duration") => a.lease_duration,
            (Command::Controller(a), "--lease-renew-grace") => a.lease_renew_grace,
            (Command::Controller(a), _) => a.webhook_timeout,
            (other, _) => panic!("no duration flag in {other:?}"),
        };
        d.as_std()
    }

    #[test]
    fn every_duration_flag_parses_the_same_way() {
        for (command, base, flag) in duration_flags() {
            for (text, want) in [
                ("1m30s", Duration::from_secs(90)),
                ("500ms", Duration::from_millis(500)),
                ("2h", Duration::from_secs(7200)),
                ("1.5", Duration::from_millis(1500)),
                ("10", Duration::from_secs(10)),
            ] {
                let mut args = base.clone();
                args.extend([flag, text]);
                let parsed =
                    parse(&args).unwrap_or_else(|e| panic!("{command} {flag} {text}: {e}"));
                assert_eq!(duration_of(&parsed, flag), want, "{command} {flag} {text}");
            }
            for bad in ["fast", "-5s", "5d", "99999999999h"] {
                let mut args = base.clone();
                args.extend([flag, bad]);
                assert!(parse(&args).is_err(), "{command} {flag} {bad}");
            }
        }
    }

    #[test]
    fn every_command_takes_the_same_output_flag() {
        use crate::util::output::OutputFormat;
        let commands: Vec<Vec<&str>> = vec![
            vec!["list"],
            vec!["status", "shop"],
            words(VERIFY),
            vec!["analyze", "--input", "-"],
            vec!["report", "shop", "-n", "prod"],
            words(CAN_I_DEPLOY),
            words(RECORD),
        ];
        for base in commands {
            for (flag, value, want) in [
                ("-o", "json", OutputFormat::Json),
                ("--output", "yaml", OutputFormat::Yaml),
                ("-o", "text", OutputFormat::Text),
            ] {
                let mut args = base.clone();
                args.extend([flag, value]);
                let output = match parse(&args).unwrap_or_else(|e| panic!("{args:?}: {e}")) {
                    Command::List(a) => a.output,
                    Command::Status(a) => a.output,
                    Command::Verify(a) => a.output,
                    Command::Analyze(a) => a.output.plain().unwrap(),
                    Command::Report(a) => a.output.plain().unwrap(),
                    Command::CanIDeploy(a) => a.output,
                    Command::RecordDeployment(a) => a.output,
                    other => panic!("{other:?}"),
                };
                assert_eq!(output, want, "{args:?}");
            }
        }
        use crate::util::output::PageFormat;
        assert!(matches!(
            parse(&["report", "shop"]),
            Ok(Command::Report(a)) if a.output == PageFormat::Html
        ));
        assert!(matches!(
            parse(&["analyze", "--input", "-", "-o", "html"]),
            Ok(Command::Analyze(a)) if a.output == PageFormat::Html
        ));
        // Refused before anything acts: record-deployment would record, then fail to print.
        for base in [
            vec!["list"],
            vec!["status", "shop"],
            words(RECORD),
            words(CAN_I_DEPLOY),
        ] {
            let mut args = base.clone();
            args.extend(["-o", "html"]);
            assert!(parse(&args).is_err(), "{args:?}");
        }
        assert!(matches!(
            parse(&["status", "shop", "-o", "tree"]),
            Ok(Command::Status(a)) if a.output == OutputFormat::Text
        ));
    }
}
