//! `tollgate bench-prometheus` (hidden): the memory a burst of looks at one Prometheus costs the
//! process. Runs `--looks` analysis looks at once against `--address` through the real provider
//! (the controller's code path: ten queries per look, the same bounds and the same process-wide
//! budget, set by the same flag), then prints how the looks ended and the process's peak
//! resident memory (VmHWM) and current (VmRSS) from /proc/self/status. A benchmark: it reports,
//! the test that runs it against a hostile server decides.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::analysis::providers::prometheus::{
    PrometheusConfig, PrometheusProvider, ResponseBudget,
};
use crate::analysis::providers::{AnalysisTarget, MetricsProvider, ProviderError, Window};

#[derive(Debug, Args)]
pub struct BenchPrometheusArgs {
    /// The Prometheus (or a server posing as it) to read.
    #[arg(long)]
    pub address: String,
    /// Looks at once.
    #[arg(long, default_value_t = 16)]
    pub looks: usize,
    /// Rounds of `--looks` looks, one after the other.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// As for `tollgate controller`.
    #[arg(long, default_value_t = super::controller::DEFAULT_PROMETHEUS_BUDGET_MIB,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub prometheus_budget_mib: u32,
}

/// A `kB` figure of /proc/self/status.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn kind(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::TooLarge(_) => "too large",
        ProviderError::Busy(_) => "budget taken",
        ProviderError::Malformed(_) => "malformed",
        ProviderError::Timeout(_) => "timeout",
        _ => "other error",
    }
}

pub fn run(args: BenchPrometheusArgs) -> ExitCode {
    ResponseBudget::set_process(args.prometheus_budget_mib as usize * 1024 * 1024);
    let provider = match PrometheusProvider::new(
        PrometheusConfig {
            address: args.address.clone(),
            ..PrometheusConfig::default()
        },
        None,
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let runtime = match super::kube_args::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let before = status_kb("VmRSS:").unwrap_or(0);
    let outcomes = runtime.block_on(async {
        let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
        for _ in 0..args.rounds {
            let looks = (0..args.looks).map(|i| {
                let provider = provider.clone();
                tokio::spawn(async move {
                    let target = AnalysisTarget::new("bench", format!("rollout-{i}"));
                    let end = jiff::Timestamp::now();
                    let window = Window::ending_at(end, Duration::from_secs(30))
                        .map_err(|e| ProviderError::Config(e.to_string()))?;
                    provider.window_counts(&target, window).await.map(|_| ())
                })
            });
            for look in futures::future::join_all(looks).await {
                let key = match look {
                    Ok(Ok(())) => "data",
                    Ok(Err(e)) => kind(&e),
                    Err(_) => "panicked",
                };
                *outcomes.entry(key).or_default() += 1;
            }
        }
        outcomes
    });
    for (outcome, n) in &outcomes {
        println!("looks {outcome}: {n}");
    }
    println!("VmRSS before: {before} kB");
    println!(
        "VmRSS after: {} kB",
        status_kb("VmRSS:").unwrap_or_default()
    );
    println!("VmHWM: {} kB", status_kb("VmHWM:").unwrap_or_default());
    if outcomes.contains_key("panicked") {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
