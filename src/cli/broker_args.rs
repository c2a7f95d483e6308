//! The broker connection flags shared by `can-i-deploy` and `record-deployment`, and what they
//! set: the HTTP timeouts of the broker client and the attempts of its retry policy.

use clap::Args;

use crate::gates::broker::{BrokerConfig, RetryPolicy};
use crate::util::duration::{self, Duration};

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
