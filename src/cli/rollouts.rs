//! Commands for people and pipelines working with Rollouts (also installed as the kubectl
//! plugin `kubectl-tollgate`): `list`, `status` (a tree of the evidence; `--watch`; `--wait`
//! with exit codes), and the manual controls `promote`, `abort`, `retry`, `pause`, `resume`,
//! which set the declarative fields of the Rollout so GitOps and people use one mechanism.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;

use super::kube_args::KubeArgs;
use crate::crd::{
    MetricVerdict, Phase, Rollout, Step, CONDITION_PROGRESSING, CONDITION_READY, CONDITION_STALLED,
};

/// Exit code: the rollout succeeded (or the control was applied).
pub const EXIT_OK: u8 = 0;
/// Exit code: the rollout was rolled back or blocked.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: `--wait` timed out.
pub const EXIT_TIMEOUT: u8 = 2;
/// Exit code: the command could not run.
pub const EXIT_ERROR: u8 = 3;

/// Flags shared by the rollout commands.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Namespace (default: the kubeconfig context's, or `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
    /// List rollouts in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// Output format of `status`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusFormat {
    /// A tree for people.
    Tree,
    /// The Rollout's status as JSON.
    Json,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The Rollout.
    pub name: String,
    #[command(flatten)]
    pub target: Target,
    /// Print again whenever the status changes (until interrupted, or the end with --wait).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Wait until the rollout ends: exit 0 promoted, 1 rolled back or blocked, 2 timed out.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (Go duration, e.g. 30m).
    #[arg(long, default_value = "30m")]
    pub timeout: kube::core::Duration,
    #[arg(short = 'o', long, value_enum, default_value_t = StatusFormat::Tree)]
    pub output: StatusFormat,
}

/// A manual control.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The Rollout.
    pub name: String,
    #[command(flatten)]
    pub target: Target,
}

/// The manual controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Promote now, skipping the remaining steps (the gates still apply).
    Promote,
    /// Roll back now.
    Abort,
    /// Try a blocked or rolled-back version again.
    Retry,
    /// Hold: no step advances.
    Pause,
    /// Release a pause (spec.paused, a pause step without duration, or a hold).
    Resume,
}

/// The merge patch a control sets on the Rollout's spec. Tokens are unique per call, so each
/// call acts once and a repeated apply of the same manifest does not act again.
pub fn control_patch(control: Control, token: &str) -> serde_json::Value {
    match control {
        Control::Promote => serde_json::json!({"spec": {"promoteRequest": token}}),
        Control::Abort => serde_json::json!({"spec": {"abortRequest": token}}),
        Control::Retry => serde_json::json!({"spec": {"retryRequest": token}}),
        Control::Pause => serde_json::json!({"spec": {"paused": true}}),
        Control::Resume => serde_json::json!({"spec": {"paused": false, "resumeRequest": token}}),
    }
}

fn ago(at: Option<Timestamp>, now: Timestamp) -> String {
    let Some(at) = at else { return "-".into() };
    let secs = now.duration_since(at).as_secs().max(0);
    match secs {
        0..=119 => format!("{secs}s ago"),
        120..=7199 => format!("{}m ago", secs / 60),
        _ => format!("{}h ago", secs / 3600),
    }
}

fn step_text(step: &Step) -> String {
    if let Some(w) = step.set_weight {
        format!("setWeight {w}%")
    } else if let Some(a) = &step.analyze {
        format!("analyze {}", a.duration)
    } else if let Some(p) = &step.pause {
        match &p.duration {
            Some(d) => format!("pause {d}"),
            None => "pause until resumed".into(),
        }
    } else {
        "?".into()
    }
}

fn fmt_num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() && (v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-3)) => {
            format!("{v:.3e}")
        }
        Some(v) if v.is_finite() => format!("{v:.3}"),
        Some(v) => format!("{v}"),
        None => "-".into(),
    }
}

/// The status of one rollout as a tree (pure: the time is passed in).
pub fn render_status(rollout: &Rollout, now: Timestamp) -> String {
    let mut out = String::new();
    let status = rollout.status.clone().unwrap_or_default();
    let spec = &rollout.spec;
    let _ = writeln!(
        out,
        "Rollout {} (namespace {})",
        rollout.name_any(),
        rollout.namespace().unwrap_or_default()
    );
    let step = match status.current_step_index {
        Some(i) => format!(", step {} of {}", i + 1, spec.steps.len()),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "  Phase:     {:?}{step}, canary weight {}%",
        status.phase, status.current_weight
    );
    let _ = writeln!(
        out,
        "  Versions:  stable {}  canary {}  (spec {})",
        status.stable_version.as_deref().unwrap_or("-"),
        status.canary_version.as_deref().unwrap_or("-"),
        spec.version
    );
    if let Some(reason) = &status.reason {
        let _ = writeln!(out, "  Reason:    {reason}");
    }
    if let Some(message) = &status.message {
        let _ = writeln!(out, "  Message:   {message}");
    }
    if let Some(hold) = &status.hold_reason {
        let _ = writeln!(out, "  Holding:   {hold}");
    }
    let cond = |kind: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .map_or("Unknown".to_string(), |c| c.status.clone())
    };
    let _ = writeln!(
        out,
        "  Conditions: Ready={} Progressing={} Stalled={}",
        cond(CONDITION_READY),
        cond(CONDITION_PROGRESSING),
        cond(CONDITION_STALLED)
    );

    let _ = writeln!(out, "Gates");
    match (&spec.contract_gate, &status.contract_gate) {
        (None, _) => {
            let _ = writeln!(out, "├─ Contract  not configured");
        }
        (Some(gate), None) => {
            let _ = writeln!(
                out,
                "├─ Contract  not asked yet ({} → {})",
                gate.pacticipant, gate.environment
            );
        }
        (Some(gate), Some(c)) => {
            let deployable = match c.deployable {
                Some(true) => "deployable",
                Some(false) => "NOT deployable",
                None => "unknown",
            };
            let dry = if c.dry_run { " (dry run)" } else { "" };
            let _ = writeln!(
                out,
                "├─ Contract  {:?}{dry}: {} {} → {}: {deployable}, asked {} ({} attempts)",
                c.verdict,
                gate.pacticipant,
                spec.version,
                gate.environment,
                ago(c.checked_at, now),
                c.attempts
            );
            if let Some(s) = &c.summary {
                let _ = writeln!(
                    out,
                    "│    verifications: {} ok, {} failed, {} unknown",
                    s.success, s.failed, s.unknown
                );
            }
            if let Some(reason) = &c.reason {
                let _ = writeln!(out, "│    {reason}");
            }
        }
    }
    match &status.fleet {
        None => {
            let _ = writeln!(out, "├─ Fleet     not checked yet");
        }
        Some(f) => {
            let _ = writeln!(
                out,
                "├─ Fleet     {:?}: {} of {} pods match, {} failing, {} not ready, checked {}",
                f.verdict,
                f.pods_matching,
                f.pods_checked,
                f.pods_failing,
                f.pods_not_ready,
                ago(f.checked_at, now)
            );
            for p in &f.failing_pods {
                let _ = writeln!(
                    out,
                    "│    ✗ {} [{}] {} {}: reported {}, expected {}",
                    p.pod,
                    p.track.as_deref().unwrap_or("-"),
                    p.ip.as_deref().unwrap_or("-"),
                    p.problem,
                    p.reported.as_deref().unwrap_or("-"),
                    p.expected.as_deref().unwrap_or("-")
                );
            }
            if f.pods_failing as usize > f.failing_pods.len() {
                let _ = writeln!(
                    out,
                    "│    … {} more",
                    f.pods_failing as usize - f.failing_pods.len()
                );
            }
        }
    }
    if spec.smoke.is_some() {
        match &status.smoke {
            None => {
                let _ = writeln!(out, "├─ Smoke     not run yet");
            }
            Some(s) => {
                let _ = writeln!(
                    out,
                    "├─ Smoke     {:?}: {} sent, {} failed",
                    s.verdict, s.requests_sent, s.requests_failed
                );
                for f in &s.failures {
                    let _ = writeln!(
                        out,
                        "│    ✗ {} {}: {}",
                        f.pod,
                        f.problem,
                        f.reported.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    match &status.analysis {
        None => {
            let _ = writeln!(out, "└─ Analysis  not started");
        }
        Some(a) => {
            let _ = writeln!(
                out,
                "└─ Analysis  {:?}: {} looks ({} without data), last {}",
                a.verdict,
                a.looks,
                a.failed_looks,
                ago(a.last_look_at, now)
            );
            let n = a.metrics.len();
            for (i, m) in a.metrics.iter().enumerate() {
                let branch = if i + 1 == n { "└─" } else { "├─" };
                let mark = match m.verdict {
                    MetricVerdict::Pass => "✓",
                    MetricVerdict::Fail => "✗",
                    _ => "·",
                };
                let _ = writeln!(
                    out,
                    "     {branch} {mark} {} {:?}: estimate {} [{}, {}], e-value {}, samples canary {} / baseline {}",
                    m.name,
                    m.verdict,
                    fmt_num(m.estimate),
                    fmt_num(m.lower),
                    fmt_num(m.upper),
                    fmt_num(m.e_value),
                    m.canary_samples,
                    m.baseline_samples
                );
                if let Some(test) = &m.test {
                    let _ = writeln!(
                        out,
                        "     {}     test: {test}",
                        if i + 1 == n { " " } else { "│" }
                    );
                }
                if let Some(reason) = &m.reason {
                    let _ = writeln!(
                        out,
                        "     {}     {reason}",
                        if i + 1 == n { " " } else { "│" }
                    );
                }
            }
        }
    }

    let _ = writeln!(out, "Steps");
    let current = status
        .current_step_index
        .and_then(|i| usize::try_from(i).ok());
    let analyzing = status.phase == Phase::Analyzing;
    for (i, step) in spec.steps.iter().enumerate() {
        let branch = if i + 1 == spec.steps.len() {
            "└─"
        } else {
            "├─"
        };
        let state = match current {
            Some(c) if analyzing && i < c => "done".to_string(),
            Some(c) if analyzing && i == c => {
                format!("← current, started {}", ago(status.step_started_at, now))
            }
            _ if status.phase == Phase::Succeeded
                || (status.phase == Phase::Promoting && status.canary_version.is_some()) =>
            {
                "done".into()
            }
            _ => String::new(),
        };
        let _ = writeln!(out, "{branch} {} {:<22} {state}", i + 1, step_text(step));
    }
    if let Some(r) = &status.deployment_record {
        let state = if r.recorded {
            format!("recorded {}", ago(r.recorded_at, now))
        } else {
            format!(
                "pending after {} attempts{}",
                r.attempts,
                r.last_error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        };
        let _ = writeln!(
            out,
            "Broker record: {} deployed to {}: {state}",
            r.version, r.environment
        );
    }
    if !status.history.is_empty() {
        let _ = writeln!(out, "History");
        for d in status
            .history
            .iter()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            let _ = writeln!(
                out,
                "  {}  {:<14} {:<26} {}",
                d.at.strftime("%H:%M:%SZ"),
                format!("{:?}", d.phase),
                d.reason,
                d.message
            );
        }
    }
    out
}

/// A finished rollout's exit code for `--wait`, or None while it runs.
pub fn wait_outcome(rollout: &Rollout) -> Option<u8> {
    let status = rollout.status.as_ref()?;
    let current = status.observed_generation == rollout.metadata.generation;
    match status.phase {
        Phase::Succeeded
            if current
                && status.stable_version.as_deref() == Some(rollout.spec.version.as_str()) =>
        {
            Some(EXIT_OK)
        }
        Phase::RolledBack | Phase::Blocked if current => Some(EXIT_FAILED),
        _ => None,
    }
}

async fn api_for(target: &Target) -> Result<(Api<Rollout>, kube::Client), String> {
    let client = target.kube.client().await.map_err(|e| e.to_string())?;
    let api = match &target.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    Ok((api, client))
}

fn block_on<F: std::future::Future<Output = u8>>(f: F) -> ExitCode {
    match super::kube_args::runtime() {
        Ok(rt) => ExitCode::from(rt.block_on(f)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `list`.
pub fn list(args: ListArgs) -> ExitCode {
    block_on(async move {
        let (api, client) = match api_for(&args.target).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        let api = if args.all_namespaces {
            Api::all(client)
        } else {
            api
        };
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                println!(
                    "{:<20} {:<24} {:<13} {:>4} {:>6} {:<14} {:<14} REASON",
                    "NAMESPACE", "NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY"
                );
                for r in list.items {
                    let s = r.status.clone().unwrap_or_default();
                    println!(
                        "{:<20} {:<24} {:<13} {:>4} {:>6} {:<14} {:<14} {}",
                        r.namespace().unwrap_or_default(),
                        r.name_any(),
                        format!("{:?}", s.phase),
                        s.current_step_index
                            .map_or("-".into(), |i| (i + 1).to_string()),
                        s.current_weight,
                        s.stable_version.unwrap_or_else(|| "-".into()),
                        s.canary_version.unwrap_or_else(|| "-".into()),
                        s.reason.unwrap_or_default()
                    );
                }
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: cannot list rollouts: {e}");
                EXIT_ERROR
            }
        }
    })
}

fn print_status(rollout: &Rollout, format: StatusFormat) {
    match format {
        StatusFormat::Tree => print!("{}", render_status(rollout, Timestamp::now())),
        StatusFormat::Json => match serde_json::to_string_pretty(&rollout.status) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: cannot render JSON: {e}"),
        },
    }
}

/// `status`.
pub fn status(args: StatusArgs) -> ExitCode {
    block_on(async move {
        let (api, _) = match api_for(&args.target).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        let deadline = tokio::time::Instant::now() + Duration::from(args.timeout);
        let mut last: Option<Option<crate::crd::RolloutStatus>> = None;
        loop {
            let rollout = match api.get(&args.name).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot read rollout {}: {e}", args.name);
                    return EXIT_ERROR;
                }
            };
            let changed = last.as_ref() != Some(&rollout.status);
            if changed || !(args.watch || args.wait) {
                if last.is_some() {
                    println!();
                }
                print_status(&rollout, args.output);
                last = Some(rollout.status.clone());
            }
            if !(args.watch || args.wait) {
                return EXIT_OK;
            }
            if args.wait {
                if let Some(code) = wait_outcome(&rollout) {
                    return code;
                }
                if tokio::time::Instant::now() >= deadline {
                    eprintln!(
                        "timed out after {} waiting for rollout {}",
                        args.timeout, args.name
                    );
                    return EXIT_TIMEOUT;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

/// A manual control.
pub fn control(control: Control, args: ControlArgs) -> ExitCode {
    block_on(async move {
        let (api, _) = match api_for(&args.target).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        let token = format!("{}", Timestamp::now().as_millisecond());
        let patch = control_patch(control, &token);
        match api
            .patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                println!("rollout {}: {control:?} requested", args.name);
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: cannot {control:?} rollout {}: {e}", args.name);
                EXIT_ERROR
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "shop", "namespace": "prod", "generation": 1},
            "spec": {"version": "2.0.0", "workloadRef": {"name": "shop"},
                     "contractGate": {"brokerUrl": "http://b", "pacticipant": "shop", "environment": "production"},
                     "steps": [{"setWeight": 25}, {"analyze": {"duration": "5m"}}, {"pause": {}}],
                     "analysis": {"provider": {"prometheus": {"address": "http://p"}}, "errorRate": {}}},
            "status": {
                "phase": "Analyzing", "observedGeneration": 1, "currentStepIndex": 1, "currentWeight": 25,
                "stableVersion": "1.0.0", "canaryVersion": "2.0.0", "reason": "Analyzing",
                "message": "step 2: gathering evidence",
                "stepStartedAt": "2026-11-22T10:00:00Z",
                "contractGate": {"verdict": "Passed", "deployable": true, "reason": "All required verification results are published and successful",
                                  "checkedAt": "2026-11-22T09:58:00Z", "attempts": 1,
                                  "summary": {"success": 2, "failed": 0, "unknown": 0}},
                "fleet": {"verdict": "Blocked", "podsChecked": 8, "podsMatching": 7, "podsFailing": 1,
                          "failingPods": [{"pod": "shop-canary-7", "track": "canary", "ip": "127.0.10.7",
                                           "problem": "VersionMismatch", "reported": "1.9.9", "expected": "2.0.0"}]},
                "analysis": {"verdict": "Running", "looks": 4, "failedLooks": 1,
                             "lastLookAt": "2026-11-22T10:02:00Z",
                             "metrics": [{"name": "error-rate", "verdict": "Running", "test": "mSPRT",
                                          "estimate": 1.02, "lower": 0.8, "upper": 1.31, "eValue": 0.4,
                                          "canarySamples": 1200, "baselineSamples": 4800}]},
                "history": [{"at": "2026-11-22T09:58:00Z", "phase": "CanaryStarting", "reason": "CanaryStarting", "message": "starting"}],
                "conditions": [{"type": "Ready", "status": "False", "reason": "Analyzing", "message": "", "lastTransitionTime": "2026-11-22T09:58:00Z"}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_tree_shows_every_gate_step_and_metric() {
        let now: Timestamp = "2026-11-22T10:03:00Z".parse().unwrap();
        let text = render_status(&sample(), now);
        for needle in [
            "Rollout shop (namespace prod)",
            "Analyzing, step 2 of 3, canary weight 25%",
            "stable 1.0.0  canary 2.0.0",
            "Contract  Passed: shop 2.0.0 → production: deployable, asked 5m ago",
            "verifications: 2 ok, 0 failed, 0 unknown",
            "Fleet     Blocked: 7 of 8 pods match, 1 failing",
            "✗ shop-canary-7 [canary] 127.0.10.7 VersionMismatch: reported 1.9.9, expected 2.0.0",
            "error-rate Running: estimate 1.020 [0.800, 1.310], e-value 0.400, samples canary 1200 / baseline 4800",
            "4 looks (1 without data)",
            "1 setWeight 25%",
            "2 analyze 300s",
            "← current, started 3m ago",
            "3 pause until resumed",
            "Ready=False Progressing=Unknown",
            "CanaryStarting",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn numbers_stay_readable() {
        assert_eq!(fmt_num(Some(1.2345)), "1.234");
        assert_eq!(fmt_num(Some(1.2665e20)), "1.266e20");
        assert_eq!(fmt_num(Some(0.0002)), "2.000e-4");
        assert_eq!(fmt_num(Some(0.0)), "0.000");
        assert_eq!(fmt_num(None), "-");
    }

    #[test]
    fn wait_outcomes() {
        let mut r = sample();
        assert_eq!(wait_outcome(&r), None);
        let s = r.status.as_mut().unwrap();
        s.phase = Phase::RolledBack;
        assert_eq!(wait_outcome(&r), Some(EXIT_FAILED));
        r.status.as_mut().unwrap().phase = Phase::Succeeded;
        assert_eq!(wait_outcome(&r), None, "stable is not the spec version yet");
        r.status.as_mut().unwrap().stable_version = Some("2.0.0".into());
        assert_eq!(wait_outcome(&r), Some(EXIT_OK));
        r.metadata.generation = Some(2);
        assert_eq!(wait_outcome(&r), None, "status describes an older spec");
    }

    #[test]
    fn controls_set_the_declarative_fields() {
        assert_eq!(
            control_patch(Control::Promote, "t1"),
            json!({"spec": {"promoteRequest": "t1"}})
        );
        assert_eq!(
            control_patch(Control::Abort, "t1"),
            json!({"spec": {"abortRequest": "t1"}})
        );
        assert_eq!(
            control_patch(Control::Retry, "t1"),
            json!({"spec": {"retryRequest": "t1"}})
        );
        assert_eq!(
            control_patch(Control::Pause, "t1"),
            json!({"spec": {"paused": true}})
        );
        assert_eq!(
            control_patch(Control::Resume, "t1"),
            json!({"spec": {"paused": false, "resumeRequest": "t1"}})
        );
    }
}
