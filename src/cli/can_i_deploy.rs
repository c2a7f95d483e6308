//! `tollgate can-i-deploy`: ask the Pact Broker whether a version may be deployed to an environment.
//!
//! Broker URL and credentials come from PACT_BROKER_BASE_URL, PACT_BROKER_TOKEN or
//! PACT_BROKER_USERNAME + PACT_BROKER_PASSWORD (never from flags, which `ps` would show).
//!
//! Exit codes: 0 deployable, 1 not deployable, 2 still unknown after retries, 3 broker or
//! configuration error. With `--dry-run` the gate asks and waits exactly as without it and
//! reports the real verdict marked `[dry-run]`, but exits 0 whatever the broker said (as
//! `pact-broker can-i-deploy --dry-run` does); a configuration error (no URL, bad credentials
//! settings) still exits 3. The gate's semantics are `gates::broker::gate`'s.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::broker_args::BrokerRequestArgs;
use crate::gates::broker::{
    run_gate, BlockKind, BrokerConfig, CanIDeployRequest, ConfigError, ContractVerdict, GateAction,
    GateDecision, GatePolicy, HttpBroker, Ignore,
};
use crate::util::duration::Duration;
use crate::util::output::OutputFormat;
use crate::util::text;

pub const EXIT_DEPLOYABLE: u8 = 0;
pub const EXIT_NOT_DEPLOYABLE: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;
pub const EXIT_ERROR: u8 = 3;

#[derive(Debug, Args)]
pub struct CanIDeployArgs {
    /// The application (pacticipant) to deploy.
    #[arg(long)]
    pub pacticipant: String,
    /// Its version to deploy.
    #[arg(long)]
    pub version: String,
    /// The environment to deploy to, as named in the broker.
    #[arg(long, visible_alias = "to-environment")]
    pub environment: String,
    /// Ignore integrations with this pacticipant (NAME, or NAME@VERSION for one version); repeatable.
    #[arg(long = "ignore", value_name = "PACTICIPANT[@VERSION]")]
    pub ignore: Vec<String>,
    /// How many more times to ask while the answer is unknown (deployable: null).
    #[arg(long, default_value_t = 0)]
    pub retry_while_unknown: u32,
    /// Wait between two asks while the answer is unknown (e.g. 10s, 1m; a bare number is seconds).
    #[arg(long, default_value = "10s")]
    pub retry_interval: Duration,
    #[command(flatten)]
    pub broker: BrokerRequestArgs,
    /// Report the real verdict, marked [dry-run], and exit 0 whatever it is (a "no" is still
    /// shown as a "no"). Waits for an unknown answer as without it.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(args: CanIDeployArgs) -> ExitCode {
    super::init_cli_tracing();
    let (request, policy, config) = match prepare(&args, |k| std::env::var(k).ok()) {
        Ok(p) => p,
        Err(e) => return config_failure(&args.output, &e),
    };
    let broker = match HttpBroker::new(config) {
        Ok(b) => b,
        Err(e) => return config_failure(&args.output, &e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let decision = runtime.block_on(run_gate(&broker, &request, &policy, tokio::time::sleep));
    let code = exit_code(&decision);
    match args
        .output
        .document(&render_json(&request, &decision, code))
    {
        None => print!("{}", text::for_terminal(&render_text(&request, &decision))),
        Some(Ok(document)) => print!("{document}"),
        Some(Err(e)) => {
            eprintln!("error: cannot render the result: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    }
    ExitCode::from(code)
}

/// Turn the arguments and environment into the gate's inputs. Pure apart from `env`.
pub fn prepare(
    args: &CanIDeployArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(CanIDeployRequest, GatePolicy, BrokerConfig), ConfigError> {
    let config = args.broker.apply(BrokerConfig::from_env(env)?);
    let interval = args.retry_interval.as_std();
    let request = CanIDeployRequest {
        pacticipant: args.pacticipant.clone(),
        version: args.version.clone(),
        environment: args.environment.clone(),
        ignore: args.ignore.iter().map(|s| Ignore::parse(s)).collect(),
    };
    let policy = GatePolicy {
        poll_interval: interval,
        // N more asks at interval S: the budget since the first unknown answer is N * S.
        unknown_budget: interval.saturating_mul(args.retry_while_unknown),
        retry: args.broker.retry(),
        dry_run: args.dry_run,
    };
    Ok((request, policy, config))
}

/// The exit code of a decision: the verdict's, or 0 in dry run (a configuration error, which
/// never reaches a decision, exits 3 either way).
pub fn exit_code(d: &GateDecision) -> u8 {
    match d.action() {
        GateAction::Proceed | GateAction::ProceedDespite(_) => EXIT_DEPLOYABLE,
        GateAction::Block(BlockKind::NotDeployable) => EXIT_NOT_DEPLOYABLE,
        GateAction::Block(BlockKind::Unknown) => EXIT_UNKNOWN,
        // A Wait never leaves run_gate; treat it as an error should it ever.
        GateAction::Block(BlockKind::BrokerError) | GateAction::Wait(_) => EXIT_ERROR,
    }
}

fn config_failure(output: &OutputFormat, e: &ConfigError) -> ExitCode {
    let failure = json!({ "verdict": "error", "exitCode": EXIT_ERROR, "error": "ConfigError", "reason": e.to_string() });
    match output.document(&failure) {
        Some(Ok(document)) => print!("{document}"),
        None | Some(Err(_)) => eprintln!("error: {}", text::for_terminal(&e.to_string())),
    }
    ExitCode::from(EXIT_ERROR)
}

/// The real verdict, in dry run too.
fn verdict_word(d: &GateDecision) -> &'static str {
    match d.verdict {
        ContractVerdict::Pass => "deployable",
        ContractVerdict::Block {
            kind: BlockKind::NotDeployable,
        } => "notDeployable",
        ContractVerdict::Block {
            kind: BlockKind::Unknown,
        } => "unknown",
        _ => "error",
    }
}

pub fn render_json(request: &CanIDeployRequest, d: &GateDecision, code: u8) -> serde_json::Value {
    let summary = d.answer.as_ref().and_then(|a| a.summary.clone());
    let deployable = summary.as_ref().and_then(|s| s.deployable).flatten();
    json!({
        "pacticipant": request.pacticipant,
        "version": request.version,
        "environment": request.environment,
        "ignore": request.ignore,
        "verdict": verdict_word(d),
        "exitCode": code,
        "deployable": deployable,
        "reason": d.reason,
        "dryRun": d.dry_run,
        "asks": d.progress.asks,
        "error": d.error,
        "summary": summary,
        "matrix": d.answer.as_ref().map(|a| a.matrix.clone()).unwrap_or_default(),
        "notices": d.answer.as_ref().map(|a| a.notices.clone()).unwrap_or_default(),
    })
}

pub fn render_text(request: &CanIDeployRequest, d: &GateDecision) -> String {
    let mut out = String::new();
    let prefix = if d.dry_run { "[dry-run] " } else { "" };
    let headline = match verdict_word(d) {
        "deployable" => "DEPLOYABLE",
        "notDeployable" => "NOT DEPLOYABLE",
        "unknown" => "UNKNOWN",
        _ => "BROKER ERROR",
    };
    out.push_str(&format!(
        "{prefix}{headline}: {} {} -> {}\n",
        request.pacticipant, request.version, request.environment
    ));
    if let Some(a) = &d.answer {
        if !a.matrix.is_empty() {
            out.push_str("  CONSUMER (VERSION) -> PROVIDER (VERSION): VERIFIED\n");
            for r in &a.matrix {
                let v = |p: &crate::gates::broker::types::RowPacticipant| {
                    p.version
                        .as_ref()
                        .map(|v| v.number.clone())
                        .unwrap_or_else(|| "?".into())
                };
                let verified = match r.verification_result.as_ref().and_then(|x| x.success) {
                    Some(true) => "yes",
                    Some(false) => "FAILED",
                    None => "not yet",
                };
                let ignored = if r.ignored == Some(true) {
                    " (ignored)"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "  {} ({}) -> {} ({}): {verified}{ignored}\n",
                    r.consumer.name,
                    v(&r.consumer),
                    r.provider.name,
                    v(&r.provider)
                ));
            }
        }
        for n in &a.notices {
            out.push_str(&format!(
                "  {}: {}\n",
                n.kind.as_deref().unwrap_or("notice"),
                n.text
            ));
        }
    }
    out.push_str(&format!("{prefix}reason: {}\n", d.reason));
    if matches!(d.action(), GateAction::ProceedDespite(_)) {
        out.push_str("[dry-run] dry run enabled: the block is ignored (exit code 0)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use jiff::Timestamp;

    use super::*;
    use crate::gates::broker::{decide, BrokerError, GateProgress, MatrixAnswer};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CanIDeployArgs,
    }

    fn args(extra: &[&str]) -> CanIDeployArgs {
        let mut argv = vec![
            "can-i-deploy",
            "--pacticipant",
            "Web",
            "--version",
            "1.0.0",
            "--environment",
            "production",
        ];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    fn env(key: &str) -> Option<String> {
        (key == "PACT_BROKER_BASE_URL").then(|| "http://127.0.0.1:9/".to_string())
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn matrix(deployable: Option<bool>) -> Result<MatrixAnswer, BrokerError> {
        Ok(MatrixAnswer::summarised(
            Some(deployable),
            "the broker's reason",
        ))
    }

    #[test]
    fn the_unknown_budget_is_retries_times_interval() {
        let (_, policy, _) = prepare(&args(&[]), env).unwrap();
        assert_eq!(policy.unknown_budget, std::time::Duration::ZERO);
        assert!(!policy.dry_run);
        let (_, policy, _) = prepare(
            &args(&[
                "--retry-while-unknown",
                "3",
                "--retry-interval",
                "10",
                "--dry-run",
            ]),
            env,
        )
        .unwrap();
        assert_eq!(policy.unknown_budget, std::time::Duration::from_secs(30));
        assert!(policy.dry_run);
        assert!(
            prepare(&args(&[]), |_| None).is_err(),
            "no URL: a configuration error"
        );
    }

    /// Every (answer, dry run, budget) cell as the CLI ends it: exit code, JSON and text.
    /// `None`: the gate waits and asks again (the loop goes on).
    #[test]
    fn every_answer_with_and_without_dry_run_within_and_past_the_budget() {
        let unreachable = || {
            Err(BrokerError::Timeout {
                url: "u".into(),
                timeout: std::time::Duration::from_secs(1),
            })
        };
        let refused = || {
            Err(BrokerError::Unauthorized {
                url: "u".into(),
                body: String::new(),
            })
        };
        // (name, outcome, word, exit within the budget, exit past it), without dry run.
        type Cell = (
            &'static str,
            Result<MatrixAnswer, BrokerError>,
            &'static str,
            Option<u8>,
            Option<u8>,
        );
        let cells: Vec<Cell> = vec![
            ("yes", matrix(Some(true)), "deployable", Some(0), Some(0)),
            ("no", matrix(Some(false)), "notDeployable", Some(1), Some(1)),
            ("unknown", matrix(None), "unknown", None, Some(2)),
            ("unreachable", unreachable(), "error", None, Some(3)),
            ("refused", refused(), "error", Some(3), Some(3)),
        ];
        let since = GateProgress {
            unknown_since: Some(t(0)),
            asks: 1,
        };
        for (name, outcome, word, within, past) in cells {
            for dry_run in [false, true] {
                let mut flags = vec!["--retry-while-unknown", "3", "--retry-interval", "10"];
                if dry_run {
                    flags.push("--dry-run");
                }
                let (request, policy, _) = prepare(&args(&flags), env).unwrap();
                for (now, want) in [(5, within), (30, past)] {
                    let cell = format!("{name}, dry run {dry_run}, at {now}s");
                    let d = decide(&outcome, &since, t(now), &policy);
                    let Some(want) = want else {
                        assert!(
                            matches!(d.verdict, ContractVerdict::Wait { .. }),
                            "{cell}: {:?}",
                            d.verdict
                        );
                        continue;
                    };
                    let code = exit_code(&d);
                    assert_eq!(code, if dry_run { 0 } else { want }, "{cell}: {}", d.reason);
                    let v = render_json(&request, &d, code);
                    assert_eq!(v["verdict"], word, "{cell}: the real verdict");
                    assert_eq!(v["dryRun"], dry_run, "{cell}");
                    assert_eq!(v["exitCode"], code, "{cell}");
                    let text = render_text(&request, &d);
                    assert_eq!(text.starts_with("[dry-run] "), dry_run, "{cell}: {text}");
                    assert_eq!(
                        text.contains("the block is ignored"),
                        dry_run && word != "deployable",
                        "{cell}: {text}"
                    );
                }
            }
        }
        // Without a budget (the default) unknown and unreachable end at the first answer.
        let (request, policy, _) = prepare(&args(&[]), env).unwrap();
        let fresh = GateProgress::default();
        let d = decide(&matrix(None), &fresh, t(0), &policy);
        assert_eq!(exit_code(&d), EXIT_UNKNOWN, "{}", d.reason);
        let d = decide(&unreachable(), &fresh, t(0), &policy);
        assert_eq!(exit_code(&d), EXIT_ERROR, "{}", d.reason);
        assert_eq!(render_json(&request, &d, EXIT_ERROR)["error"], "Timeout");
    }
}
