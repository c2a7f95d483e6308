//! `tollgate record-undeployment`: tell the Pact Broker that a pacticipant no longer runs on an
//! application instance of an environment, so can-i-deploy stops counting its version there.
//! The same HAL walk as the official client's `record-undeployment` (see
//! `gates::broker::client`); `--version` limits it to one version. Broker URL and credentials
//! come from the PACT_BROKER_* environment variables (see `can-i-deploy`).
//!
//! Exit codes: 0 recorded (or nothing was deployed there: said so), 3 broker or configuration
//! error.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::broker_args::{record_broker, record_failure, BrokerRequestArgs};
use crate::gates::broker::{BrokerApi, UndeploymentRecord};
use crate::util::output::OutputFormat;

#[derive(Debug, Args)]
pub struct RecordUndeploymentArgs {
    #[arg(long)]
    pub pacticipant: String,
    #[arg(long)]
    pub environment: String,
    /// The application instance it ran as (leave out for the one without an instance name).
    #[arg(long)]
    pub application_instance: Option<String>,
    /// Only undeploy this version (default: whatever is deployed on that instance).
    #[arg(long)]
    pub version: Option<String>,
    #[command(flatten)]
    pub broker: BrokerRequestArgs,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

pub fn run(args: RecordUndeploymentArgs) -> ExitCode {
    super::init_cli_tracing();
    let fail = record_failure;
    let (broker, runtime) = match record_broker(&args.broker) {
        Ok(pair) => pair,
        Err((code, reason)) => return fail(args.output, code, reason),
    };
    let record = UndeploymentRecord {
        pacticipant: args.pacticipant.clone(),
        environment: args.environment.clone(),
        application_instance: args.application_instance.clone(),
        version: args.version.clone(),
    };
    match runtime.block_on(broker.record_undeployment(&record)) {
        Ok(undeployed) => {
            let versions: Vec<String> = undeployed
                .iter()
                .filter_map(|d| d.version.clone())
                .collect();
            let document = json!({ "recorded": true, "exitCode": 0, "record": record, "undeployed": versions });
            match args.output.document(&document) {
                None => {
                    let instance = record
                        .application_instance
                        .as_deref()
                        .map(|i| format!(" (instance {i})"))
                        .unwrap_or_default();
                    if versions.is_empty() {
                        println!(
                            "nothing to record: {} is not deployed to {}{instance}",
                            record.pacticipant, record.environment
                        );
                    } else {
                        println!(
                            "recorded: {} {} no longer runs in {}{instance}",
                            record.pacticipant,
                            versions.join(", "),
                            record.environment
                        );
                    }
                }
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
        Err(e) => fail(
            args.output,
            "RecordFailed",
            format!("could not record the undeployment: {e}"),
        ),
    }
}
