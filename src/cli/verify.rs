//! `tollgate verify`: ask every ready pod matching a selector what it runs, for pipelines and
//! incident responders. Exit 0 when every pod reports the expected version (and configuration
//! hash), 1 on any mismatch or silent pod (or no ready pod at all), 3 when the check cannot run.

use clap::Args;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use thiserror::Error;

use crate::gates::fleet::{
    self, AttestConfig, ConfigRule, ExpectedWorkload, FleetExpectation, FleetReport, HttpAttestor,
    PodRef, PodVerdict, Track, DEFAULT_MAX_LISTED_FAILURES,
};
use crate::util::duration::{self, Duration};
use crate::util::output::OutputFormat;
use crate::util::text;

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Namespace of the pods.
    #[arg(short = 'n', long)]
    pub namespace: String,
    /// Label selector of the pods (e.g. `app=checkout,track=canary`).
    #[arg(short = 'l', long)]
    pub selector: String,
    /// Version every pod must report.
    #[arg(long)]
    pub expect_version: String,
    /// Configuration hash every pod must report; without it, the pods must agree with each other.
    #[arg(long)]
    pub expect_config_hash: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (with --kubeconfig).
    #[arg(long)]
    pub context: Option<String>,
    /// Port of the attestation endpoint on each pod.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Path of the attestation endpoint.
    #[arg(long, default_value = "/version")]
    pub path: String,
    /// JSON pointer to the version in the answer.
    #[arg(long, default_value = "/version")]
    pub version_pointer: String,
    /// JSON pointer to the configuration hash in the answer.
    #[arg(long, default_value = "/configHash")]
    pub config_hash_pointer: String,
    /// Per-pod deadline (e.g. 500ms, 5s, 1m30s; a bare number is seconds).
    #[arg(long, default_value = "5s", value_parser = duration::positive)]
    pub timeout: Duration,
    /// Pods asked at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// Why the check could not run (exit 3).
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("invalid attestation settings: {0}")]
    Config(#[from] fleet::ConfigError),
    #[error("{0}")]
    Client(String),
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// One row of the table: a pod that was checked, or one that was not ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRow {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// `ok`, `not-ready`, or `fail`.
    pub verdict: &'static str,
    pub problems: Vec<fleet::Problem>,
}

/// Everything `verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyOutcome {
    pub namespace: String,
    pub selector: String,
    pub expected_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_config_hash: Option<String>,
    pub passed: bool,
    pub pods: Vec<PodRow>,
    pub report: FleetReport,
}

impl VerifyOutcome {
    pub fn exit_code(&self) -> u8 {
        if self.passed {
            0
        } else {
            1
        }
    }
}

fn expectation(args: &VerifyArgs) -> FleetExpectation {
    FleetExpectation {
        canary_version: args.expect_version.clone(),
        stable_version: None,
        config: ConfigRule::Standalone {
            expected_hash: args.expect_config_hash.clone(),
        },
        max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
        required_tracks: vec![Track::Canary],
        dependencies: Vec::new(),
        flags: Default::default(),
    }
}

fn attest_config(args: &VerifyArgs) -> AttestConfig {
    AttestConfig {
        port: args.port,
        path: args.path.clone(),
        version_pointer: args.version_pointer.clone(),
        config_hash_pointer: args.config_hash_pointer.clone(),
        timeout: args.timeout.as_std(),
        concurrency: args.concurrency,
        ..AttestConfig::default()
    }
}

/// Check the given pods (already listed): the part of `verify` after Kubernetes.
pub async fn verify_pods(args: &VerifyArgs, pods: &[Pod]) -> Result<VerifyOutcome, VerifyError> {
    let config = attest_config(args);
    let attestor = HttpAttestor::new(config)?;
    let inventory = fleet::inventory(Track::Canary, &ExpectedWorkload::default(), pods);
    let not_ready = inventory.not_ready.clone();
    let outcome = fleet::check(&attestor, args.concurrency, &expectation(args), inventory).await;
    Ok(outcome_from(
        args,
        &outcome.verdicts,
        &not_ready,
        outcome.report,
    ))
}

fn outcome_from(
    args: &VerifyArgs,
    verdicts: &[PodVerdict],
    not_ready: &[PodRef],
    report: FleetReport,
) -> VerifyOutcome {
    let mut pods: Vec<PodRow> = verdicts
        .iter()
        .map(|v| PodRow {
            name: v.pod.name.clone(),
            ip: v.pod.ip.map(|ip| ip.to_string()),
            version: v.reported_version.clone(),
            config_hash: v.reported_config_hash.clone(),
            verdict: if v.passed() { "ok" } else { "fail" },
            problems: v.problems.clone(),
        })
        .collect();
    pods.extend(not_ready.iter().map(|p| PodRow {
        name: p.name.clone(),
        ip: p.ip.map(|ip| ip.to_string()),
        version: None,
        config_hash: None,
        verdict: "not-ready",
        problems: Vec::new(),
    }));
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    VerifyOutcome {
        namespace: args.namespace.clone(),
        selector: args.selector.clone(),
        expected_version: args.expect_version.clone(),
        expected_config_hash: args.expect_config_hash.clone(),
        passed: report.passed,
        pods,
        report,
    }
}

/// The table people read: one line per pod, then the problems, then a summary.
pub fn render_text(o: &VerifyOutcome) -> String {
    let header = ["NAME", "IP", "VERSION", "CONFIG-HASH", "VERDICT"];
    let dash = || "-".to_string();
    let rows: Vec<[String; 5]> = o
        .pods
        .iter()
        .map(|p| {
            let verdict = if p.problems.is_empty() {
                p.verdict.to_string()
            } else {
                let kinds: Vec<String> = p.problems.iter().map(|q| q.kind.to_string()).collect();
                format!("{} ({})", p.verdict, kinds.join(", "))
            };
            [
                p.name.clone(),
                p.ip.clone().unwrap_or_else(dash),
                p.version.clone().unwrap_or_else(dash),
                p.config_hash.clone().unwrap_or_else(dash),
                verdict,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    let mut tail = String::new();
    for p in o.pods.iter().filter(|p| !p.problems.is_empty()) {
        for q in &p.problems {
            let _ = write!(tail, "{}: {}: {}", p.name, q.kind, q.detail);
            if let Some(r) = &q.reported {
                let _ = write!(tail, "; reported {r:?}");
            }
            if let Some(e) = &q.expected {
                let _ = write!(tail, "; expected {e:?}");
            }
            tail.push('\n');
        }
    }
    for fp in &o.report.fleet_problems {
        // verify has one set of pods: its "canary" is whatever the selector matched.
        let text = match fp {
            fleet::FleetProblem::NoReadyPods { .. } => "no ready pod to attest".to_string(),
            other => other.to_string(),
        };
        let _ = writeln!(
            tail,
            "{text} (selector {:?} in namespace {:?})",
            o.selector, o.namespace
        );
    }
    if !tail.is_empty() {
        out.push('\n');
        out.push_str(&tail);
    }
    let _ = writeln!(
        out,
        "\n{}: {} of {} ready pod(s) report version {:?}{}{}",
        if o.passed { "PASS" } else { "FAIL" },
        o.report.canary.passed,
        o.report.canary.checked,
        o.expected_version,
        match &o.expected_config_hash {
            Some(h) => format!(" and config hash {h:?}"),
            None => " with one config hash".to_string(),
        },
        if o.report.canary.not_ready > 0 {
            format!("; {} not ready (not checked)", o.report.canary.not_ready)
        } else {
            String::new()
        }
    );
    out
}

async fn kube_client(args: &VerifyArgs) -> Result<kube::Client, VerifyError> {
    super::kube_args::client_from(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .map_err(|e| VerifyError::Client(e.to_string()))
}

async fn verify(args: &VerifyArgs) -> Result<VerifyOutcome, VerifyError> {
    // Check the settings before talking to anyone.
    attest_config(args).validate()?;
    let client = kube_client(args).await?;
    let api: Api<Pod> = Api::namespaced(client, &args.namespace);
    let pods = api
        .list(&ListParams::default().labels(&args.selector))
        .await?;
    verify_pods(args, &pods.items).await
}

pub fn run(args: VerifyArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(VerifyError::Runtime)
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {}", text::for_terminal(&e.to_string()));
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(verify(&args)) {
        Ok(outcome) => {
            match args.output.document(&outcome) {
                None => print!("{}", text::for_terminal(&render_text(&outcome))),
                Some(Ok(document)) => print!("{document}"),
                Some(Err(e)) => {
                    eprintln!("error: cannot render the result: {e}");
                    return ExitCode::from(3);
                }
            }
            ExitCode::from(outcome.exit_code())
        }
        Err(e) => {
            eprintln!(
                "error: {}",
                text::for_terminal(&crate::gates::fleet::probe::error_chain(&e))
            );
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: VerifyArgs,
    }

    fn args(extra: &[&str]) -> VerifyArgs {
        let mut argv = vec![
            "verify",
            "--namespace",
            "shop",
            "--selector",
            "app=checkout",
            "--expect-version",
            "2.0.0",
        ];
        argv.extend_from_slice(extra);
        Wrapper::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn the_timeout_takes_go_durations_and_bare_seconds() {
        let timeout = |t: &str| args(&["--timeout", t]).timeout.as_std();
        assert_eq!(timeout("500ms"), std::time::Duration::from_millis(500));
        assert_eq!(timeout("1m30s"), std::time::Duration::from_secs(90));
        assert_eq!(timeout("2"), std::time::Duration::from_secs(2));
        assert_eq!(timeout("1.5s"), std::time::Duration::from_millis(1500));
        for bad in ["", "0s", "0", "fast", "-1s", "1e400s"] {
            let mut argv = vec!["verify", "-n", "shop", "-l", "a=b", "--expect-version", "1"];
            argv.extend(["--timeout", bad]);
            assert!(Wrapper::try_parse_from(argv).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_arguments_with_defaults() {
        let a = args(&[]);
        assert_eq!(a.port, 8080);
        assert_eq!(a.path, "/version");
        assert_eq!(a.output, OutputFormat::Text);
        assert_eq!(a.timeout, std::time::Duration::from_secs(5));
        let a = args(&[
            "-o",
            "json",
            "--expect-config-hash",
            "abc",
            "--timeout",
            "250ms",
        ]);
        assert_eq!(a.output, OutputFormat::Json);
        assert_eq!(a.expect_config_hash.as_deref(), Some("abc"));
        assert_eq!(a.timeout, std::time::Duration::from_millis(250));
        let e = expectation(&a);
        assert_eq!(
            e.config,
            ConfigRule::Standalone {
                expected_hash: Some("abc".into())
            }
        );
        assert_eq!(e.stable_version, None);
    }

    #[test]
    fn bad_settings_are_errors_before_any_network() {
        let a = args(&["--path", "version"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(verify(&a));
        assert!(matches!(r, Err(VerifyError::Config(_))), "{r:?}");
    }

    #[test]
    fn renders_a_table_with_problems_and_summary() {
        use crate::gates::fleet::{
            evaluate_pods, rules::report_from_verdicts, Attestation, FleetInput, PodObservation,
            PodTarget,
        };
        let a = args(&[]);
        let obs = |name: &str, host: u8, version: &str| PodObservation {
            target: PodTarget {
                track: Track::Canary,
                name: name.into(),
                ip: std::net::IpAddr::from([127, 0, 0, host]),
            },
            result: Ok(Attestation {
                version: version.into(),
                config_hash: Some("h".into()),
                ..Default::default()
            }),
        };
        let not_ready = vec![PodRef {
            track: Track::Canary,
            name: "checkout-c".into(),
            ip: None,
        }];
        let input = FleetInput {
            observations: vec![obs("checkout-a", 1, "2.0.0"), obs("checkout-b", 2, "1.9.0")],
            not_ready: not_ready.clone(),
            cluster_problems: Vec::new(),
        };
        let e = expectation(&a);
        let verdicts = evaluate_pods(&e, &input);
        let report = report_from_verdicts(&e, &input, &verdicts);
        let o = outcome_from(&a, &verdicts, &not_ready, report);
        assert_eq!(o.exit_code(), 1);
        let text = render_text(&o);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NAME        IP         VERSION  CONFIG-HASH  VERDICT"
        );
        assert_eq!(lines[1], "checkout-a  127.0.0.1  2.0.0    h            ok");
        assert_eq!(
            lines[2],
            "checkout-b  127.0.0.2  1.9.0    h            fail (VersionMismatch)"
        );
        assert_eq!(
            lines[3],
            "checkout-c  -          -        -            not-ready"
        );
        assert!(text.contains("checkout-b: VersionMismatch"), "{text}");
        assert!(
            text.contains("reported \"1.9.0\"; expected \"2.0.0\""),
            "{text}"
        );
        assert!(
            text.contains("FAIL: 1 of 2 ready pod(s) report version \"2.0.0\" with one config hash; 1 not ready"),
            "{text}"
        );
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["pods"][1]["problems"][0]["kind"], "VersionMismatch");
        assert_eq!(json["pods"][2]["verdict"], "not-ready");
    }
}
