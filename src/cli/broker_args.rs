//! The broker connection flags shared by `can-i-deploy`, `record-deployment` and
//! `record-undeployment`, and what they set: the HTTP timeouts of the broker client and the
//! attempts of its retry policy; and what the two record commands share around them.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::can_i_deploy::EXIT_ERROR;
use crate::gates::broker::{BrokerConfig, HttpBroker, RetryPolicy};
use crate::util::duration::{self, Duration};
use crate::util::output::OutputFormat;
use crate::util::text;

/// `--attempts`, `--connect-timeout` and `--request-timeout`.
#[derive(Debug, Clone, Args)]
pub struct BrokerRequestArgs {
    /// Attempts in all for connect errors, timeouts, 5xx, 408 and 429.
    #[arg(long, default_value_t = 4)]
    pub attempts: u32,
    /// Connect timeout (e.g. 10s; a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = duration::positive)]
    pub connect_timeout: Duration,
    /// Timeout of one whole request (e.g. 30s; a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = duration::positive)]
    pub request_timeout: Duration,
}

impl BrokerRequestArgs {
    /// `config` with these flags' timeouts.
    pub fn apply(&self, mut config: BrokerConfig) -> BrokerConfig {
        config.connect_timeout = self.connect_timeout.as_std();
        config.request_timeout = self.request_timeout.as_std();
        config
    }

    /// The default retry policy with these flags' attempts (at least one).
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.attempts.max(1),
            ..RetryPolicy::default()
        }
    }
}

/// A record command that failed: `{"recorded": false, ...}` on stdout in `output`'s document
/// format, or one terminal-safe line on stderr for text; exit code 3.
pub fn record_failure(output: OutputFormat, code: &str, reason: String) -> ExitCode {
    let failure =
        json!({ "recorded": false, "exitCode": EXIT_ERROR, "error": code, "reason": reason });
    match output.document(&failure) {
        Some(Ok(document)) => print!("{document}"),
        None | Some(Err(_)) => eprintln!("error: {}", text::for_terminal(&reason)),
    }
    ExitCode::from(EXIT_ERROR)
}

/// The broker client of a record command (URL and credentials from the PACT_BROKER_*
/// environment, timeouts from `args`) and a runtime to drive it; or the error code and reason
/// for [`record_failure`].
pub fn record_broker(
    args: &BrokerRequestArgs,
) -> Result<(HttpBroker, tokio::runtime::Runtime), (&'static str, String)> {
    let config = BrokerConfig::from_env(|k| std::env::var(k).ok())
        .map_err(|e| ("ConfigError", e.to_string()))?;
    let broker = HttpBroker::new(args.apply(config)).map_err(|e| ("ConfigError", e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            (
                "RuntimeError",
                format!("cannot start the async runtime: {e}"),
            )
        })?;
    Ok((broker, runtime))
}
