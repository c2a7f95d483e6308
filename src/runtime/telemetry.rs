//! Logs: JSON (for collectors) or plain text (for people), filtered by `RUST_LOG` (default
//! `info`). Each reconcile runs in a span named after the rollout, so every line says which
//! rollout it is about.

use tracing_subscriber::{fmt, EnvFilter};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Plain,
}

/// Install the global subscriber. Calling it twice keeps the first (tests may race).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Plain => builder.try_init(),
    };
}
