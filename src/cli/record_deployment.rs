//! `tollgate record-deployment`: tell the Pact Broker which version now runs in an environment.
//!
//! After a failed attempt the environment's currently deployed versions are read first, and the
//! record is POSTed again only if the version is not among them: a POST that timed out (or
//! failed) after the broker stored it does not become two records. Broker URL
//! and credentials come from the PACT_BROKER_* environment variables (see `can-i-deploy`).
//!
//! Exit codes: 0 recorded, 3 broker or configuration error.

use std::process::ExitCode;

use clap::Args;
use serde_json::{json, Value};

use super::broker_args::{record_broker, record_failure, BrokerRequestArgs};
use crate::gates::broker::{record_with_retries, DeploymentRecord, RecordStep};
use crate::util::output::OutputFormat;

#[derive(Debug, Args)]
pub struct RecordDeploymentArgs {
    #[arg(long)]
    pub pacticipant: String,
    #[arg(long)]
    pub version: String,
    #[arg(long)]
    pub environment: String,
    /// Which instance of the application in that environment (e.g. per customer or region).
    #[arg(long)]
    pub application_instance: Option<String>,
    #[command(flatten)]
    pub broker: BrokerRequestArgs,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(args: RecordDeploymentArgs) -> ExitCode {
    super::init_cli_tracing();
    let fail = record_failure;
    let (broker, runtime) = match record_broker(&args.broker) {
        Ok(pair) => pair,
        Err((code, reason)) => return fail(args.output, code, reason),
    };
    let record = DeploymentRecord {
        pacticipant: args.pacticipant.clone(),
        version: args.version.clone(),
        environment: args.environment.clone(),
        application_instance: args.application_instance.clone(),
    };
    let retry = args.broker.retry();
    match runtime.block_on(record_with_retries(
        &broker,
        &record,
        &retry,
        tokio::time::sleep,
        false,
    )) {
        RecordStep::Recorded { deployment } => {
            let recorded: Value = json!({ "recorded": true, "exitCode": 0, "record": record, "deployment": deployment });
            match args.output.document(&recorded) {
                None => println!(
                    "recorded: {} {} is deployed to {}{}",
                    record.pacticipant,
                    record.version,
                    record.environment,
                    record
                        .application_instance
                        .as_deref()
                        .map(|i| format!(" (instance {i})"))
                        .unwrap_or_default()
                ),
                Some(Ok(document)) => print!("{document}"),
                Some(Err(e)) => {
                    return fail(
                        OutputFormat::Text,
                        "RenderError",
                        format!("cannot render the result: {e}"),
                    )
                }
            }
            ExitCode::SUCCESS
        }
        RecordStep::Failed { attempts, reason }
        | RecordStep::Retry {
            attempts, reason, ..
        } => fail(
            args.output,
            "RecordFailed",
            format!("could not record the deployment after {attempts} attempt(s): {reason}"),
        ),
    }
}
