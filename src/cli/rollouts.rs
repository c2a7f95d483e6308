//! Commands for people and pipelines working with Rollouts (also installed as the kubectl
//! plugin `kubectl-tollgate`): `list`, `status` (a tree of the evidence; `--watch`; `--wait`
//! with exit codes), and the manual controls `promote`, `abort`, `retry`, `pause`, `resume`,
//! which set the declarative fields of the Rollout so GitOps and people use one mechanism.
//!
//! `status --watch` and `--wait` follow the Rollout through a watch on the API server
//! (`kube::runtime::watcher`), so a change shows as soon as the operator writes it; a dropped
//! watch resumes with backoff.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use comfy_table::{presets, CellAlignment, Table};
use futures::StreamExt;
use jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde::Serialize;

use super::kube_args::KubeArgs;
use crate::crd::{
    MetricStatus, MetricVerdict, Phase, Rollout, RolloutSpec, RolloutStatus, Step,
    CONDITION_PROGRESSING, CONDITION_READY, CONDITION_STALLED,
};
use crate::util::duration::Duration;
use crate::util::number::format_optional;
use crate::util::output::OutputFormat;
use crate::util::text;

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
    /// `text` (a table), `json` or `yaml` (one object per rollout).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
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
    /// How long --wait waits (e.g. 30m, 1h30m; a bare number is seconds).
    #[arg(long, default_value = "30m")]
    pub timeout: Duration,
    /// `text` (a tree), `json` or `yaml` (the Rollout's status).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
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

/// A step as people write it: `setWeight 20%`, `analyze 10m`, `pause until resumed`.
pub(crate) fn step_text(step: &Step) -> String {
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

/// The status of one rollout as a tree (pure: the time is passed in).
pub fn render_status(rollout: &Rollout, now: Timestamp) -> String {
    let mut out = String::new();
    let status = rollout.status.clone().unwrap_or_default();
    let shown = with_policy(rollout, &status);
    let rollout = &shown;
    let spec = &rollout.spec;
    write_header(&mut out, rollout, &status);
    let _ = writeln!(out, "Gates");
    write_contract_gate(&mut out, spec, &status, now);
    write_fleet(&mut out, &status, now);
    if spec.smoke.is_some() {
        write_smoke(&mut out, &status);
    }
    write_analysis(&mut out, &status, now);
    write_steps(&mut out, spec, &status, now);
    write_deployment_record(&mut out, &status, now);
    write_history(&mut out, &status);
    out
}

/// The Rollout with the policy of `status.policy` merged in, so the steps and gates shown are
/// the ones it runs on; as it is when there is no snapshot or the merge fails (the reason is in
/// status then).
fn with_policy(rollout: &Rollout, status: &RolloutStatus) -> Rollout {
    let Some(snapshot) = &status.policy else {
        return rollout.clone();
    };
    let Ok(spec) = serde_json::from_value(snapshot.spec.clone()) else {
        return rollout.clone();
    };
    let policy = crate::rollout::policy::Policy {
        kind: snapshot.kind,
        name: &snapshot.name,
        spec: &spec,
    };
    match crate::rollout::policy::effective(&rollout.name_any(), &rollout.spec, &policy) {
        Ok(effective) => {
            let mut shown = rollout.clone();
            shown.spec = effective.spec;
            shown
        }
        Err(_) => rollout.clone(),
    }
}

/// Name, phase, versions, the reason and the three conditions.
fn write_header(out: &mut String, rollout: &Rollout, status: &RolloutStatus) {
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
    if let Some(policy) = &status.policy {
        let generation = policy
            .generation
            .map_or(String::new(), |g| format!("generation {g}, "));
        let _ = writeln!(
            out,
            "  Policy:    {} {} ({generation}analysis hash {})",
            policy.kind, policy.name, policy.analysis_hash
        );
        let from = if policy.from_policy.is_empty() {
            "-".to_string()
        } else {
            policy.from_policy.join(", ")
        };
        let _ = writeln!(out, "  From policy: {from}");
    }
    if let Some(reason) = &status.reason {
        let _ = writeln!(out, "  Reason:    {reason}");
    }
    if let Some(message) = &status.message {
        let _ = writeln!(out, "  Message:   {message}");
    }
    if let Some(hold) = &status.hold_reason {
        let _ = writeln!(out, "  Holding:   {hold}");
    }
    if let Some(window) = &status.rollback_window {
        let previous = crate::util::text::printable(&window.previous_version);
        let line = match window.until {
            _ if window.rolling_back => format!("instant rollback to {previous} under way"),
            Some(until) => format!(
                "instant rollback to {previous} possible until {until} (tollgate abort {})",
                rollout.name_any()
            ),
            None => format!("{previous} kept at full size until the promotion is verified"),
        };
        let _ = writeln!(out, "  Rollback:  {line}");
    }
    let condition = |kind: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .map_or("Unknown".to_string(), |c| c.status.clone())
    };
    let _ = writeln!(
        out,
        "  Conditions: Ready={} Progressing={} Stalled={}",
        condition(CONDITION_READY),
        condition(CONDITION_PROGRESSING),
        condition(CONDITION_STALLED)
    );
}

/// The broker's answer, or why there is none.
fn write_contract_gate(
    out: &mut String,
    spec: &RolloutSpec,
    status: &RolloutStatus,
    now: Timestamp,
) {
    let (gate, c) = match (&spec.contract_gate, &status.contract_gate) {
        (None, _) => {
            let _ = writeln!(out, "├─ Contract  not configured");
            return;
        }
        (Some(gate), None) => {
            let _ = writeln!(
                out,
                "├─ Contract  not asked yet ({} → {})",
                gate.pacticipant, gate.environment
            );
            return;
        }
        (Some(gate), Some(c)) => (gate, c),
    };
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

/// The fleet check's counts and its failing pods.
fn write_fleet(out: &mut String, status: &RolloutStatus, now: Timestamp) {
    let Some(f) = &status.fleet else {
        let _ = writeln!(out, "├─ Fleet     not checked yet");
        return;
    };
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

/// The smoke checks (shown only when the spec asks for them).
fn write_smoke(out: &mut String, status: &RolloutStatus) {
    let Some(s) = &status.smoke else {
        let _ = writeln!(out, "├─ Smoke     not run yet");
        return;
    };
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

/// The analysis' looks and one branch per metric.
fn write_analysis(out: &mut String, status: &RolloutStatus, now: Timestamp) {
    let Some(a) = &status.analysis else {
        let _ = writeln!(out, "└─ Analysis  not started");
        return;
    };
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
        write_metric(out, m, i + 1 == n);
    }
}

/// One metric's verdict, estimate and samples, then its test and reason beneath.
fn write_metric(out: &mut String, m: &MetricStatus, last: bool) {
    let branch = if last { "└─" } else { "├─" };
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
        format_optional(m.estimate),
        format_optional(m.lower),
        format_optional(m.upper),
        format_optional(m.e_value),
        m.canary_samples,
        m.baseline_samples
    );
    let trunk = if last { " " } else { "│" };
    if let Some(test) = &m.test {
        let _ = writeln!(out, "     {trunk}     test: {test}");
    }
    if let Some(reason) = &m.reason {
        let _ = writeln!(out, "     {trunk}     {reason}");
    }
    if let Some(outlook) = &m.outlook {
        let _ = writeln!(out, "     {trunk}     outlook: {outlook}");
    }
}

/// Where step `i` (0-based) of `spec.steps` stands: `done`, `← current, started …` or empty
/// (`status` and the dashboard's step program).
pub(crate) fn step_state(i: usize, status: &RolloutStatus, now: Timestamp) -> String {
    let current = status
        .current_step_index
        .and_then(|i| usize::try_from(i).ok());
    let analyzing = status.phase == Phase::Analyzing;
    let all_done = status.phase == Phase::Succeeded
        || (status.phase == Phase::Promoting && status.canary_version.is_some());
    match current {
        Some(c) if analyzing && i < c => "done".to_string(),
        Some(c) if analyzing && i == c => {
            format!("← current, started {}", ago(status.step_started_at, now))
        }
        _ if all_done => "done".into(),
        _ => String::new(),
    }
}

/// The steps, with the current one marked and the finished ones done.
fn write_steps(out: &mut String, spec: &RolloutSpec, status: &RolloutStatus, now: Timestamp) {
    let _ = writeln!(out, "Steps");
    for (i, step) in spec.steps.iter().enumerate() {
        let branch = if i + 1 == spec.steps.len() {
            "└─"
        } else {
            "├─"
        };
        let state = step_state(i, status, now);
        let _ = writeln!(out, "{branch} {} {:<22} {state}", i + 1, step_text(step));
    }
}

/// Whether the broker was told of the deployment.
fn write_deployment_record(out: &mut String, status: &RolloutStatus, now: Timestamp) {
    let Some(r) = &status.deployment_record else {
        return;
    };
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

/// The last eight decisions, oldest first.
fn write_history(out: &mut String, status: &RolloutStatus) {
    if status.history.is_empty() {
        return;
    }
    let _ = writeln!(out, "History");
    let skip = status.history.len().saturating_sub(8);
    for d in status.history.iter().skip(skip) {
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

/// One rollout in `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub namespace: String,
    pub name: String,
    pub phase: Phase,
    /// 1-based, as people count steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<i32>,
    pub weight: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ListRow {
    /// The row of `rollout`.
    pub fn of(rollout: &Rollout) -> ListRow {
        let s = rollout.status.clone().unwrap_or_default();
        ListRow {
            namespace: rollout.namespace().unwrap_or_default(),
            name: rollout.name_any(),
            phase: s.phase,
            step: s.current_step_index.map(|i| i + 1),
            weight: s.current_weight,
            stable: s.stable_version,
            canary: s.canary_version,
            reason: s.reason,
        }
    }
}

/// The `list` table: every column as wide as its longest cell, three spaces apart, the counts
/// right-aligned (pure).
pub fn render_list(rows: &[ListRow]) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_header(vec![
        "NAMESPACE",
        "NAME",
        "PHASE",
        "STEP",
        "WEIGHT",
        "STABLE",
        "CANARY",
        "REASON",
    ]);
    let dash = || "-".to_string();
    for r in rows {
        table.add_row(vec![
            r.namespace.clone(),
            r.name.clone(),
            format!("{:?}", r.phase),
            r.step.map_or_else(dash, |s| s.to_string()),
            r.weight.to_string(),
            r.stable.clone().unwrap_or_else(dash),
            r.canary.clone().unwrap_or_else(dash),
            r.reason.clone().unwrap_or_default(),
        ]);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, 3));
        if matches!(i, 3 | 4) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut text = table.trim_fmt();
    text.push('\n');
    text
}

pub(super) async fn api_for(target: &Target) -> Result<(Api<Rollout>, kube::Client), String> {
    let client = target.kube.client().await.map_err(|e| e.to_string())?;
    let api = match &target.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    Ok((api, client))
}

pub(super) fn block_on<F: std::future::Future<Output = u8>>(f: F) -> ExitCode {
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
                eprintln!("error: {}", text::for_terminal(&e.to_string()));
                return EXIT_ERROR;
            }
        };
        let api = if args.all_namespaces {
            Api::all(client)
        } else {
            api
        };
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) => {
                eprintln!("error: cannot list rollouts: {e}");
                return EXIT_ERROR;
            }
        };
        let rows: Vec<ListRow> = list.items.iter().map(ListRow::of).collect();
        match args.output.document(&rows) {
            None => print!("{}", text::for_terminal(&render_list(&rows))),
            Some(Ok(document)) => print!("{document}"),
            Some(Err(e)) => {
                eprintln!("error: cannot render the list: {e}");
                return EXIT_ERROR;
            }
        }
        EXIT_OK
    })
}

/// Print one state of the rollout; `again` when an earlier one was printed above it.
fn print_status(rollout: &Rollout, format: OutputFormat, again: bool) {
    if again {
        // A blank line between trees and JSON documents; YAML has its own separator.
        println!(
            "{}",
            if format == OutputFormat::Yaml {
                "---"
            } else {
                ""
            }
        );
    }
    match format.document(&rollout.status) {
        None => print!(
            "{}",
            text::for_terminal(&render_status(rollout, Timestamp::now()))
        ),
        Some(Ok(document)) => print!("{document}"),
        Some(Err(e)) => eprintln!("error: cannot render the status: {e}"),
    }
}

/// `status`.
pub fn status(args: StatusArgs) -> ExitCode {
    block_on(async move {
        let (api, _) = match api_for(&args.target).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {}", text::for_terminal(&e.to_string()));
                return EXIT_ERROR;
            }
        };
        let deadline = tokio::time::Instant::now() + args.timeout.as_std();
        let rollout = match api.get(&args.name).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: cannot read rollout {}: {e}", args.name);
                return EXIT_ERROR;
            }
        };
        print_status(&rollout, args.output, false);
        if !(args.watch || args.wait) {
            return EXIT_OK;
        }
        follow(&api, &args, rollout, deadline).await
    })
}

/// `--watch` / `--wait` after the first print: every change the watch reports is printed, until
/// the rollout ends (`--wait`), the deadline passes (`--wait`: exit 2), or the rollout is
/// deleted (exit 3). Without `--wait` it follows until interrupted.
async fn follow(
    api: &Api<Rollout>,
    args: &StatusArgs,
    first: Rollout,
    deadline: tokio::time::Instant,
) -> u8 {
    let mut last = first.status.clone();
    let mut rollout = first;
    let mut changes = watcher::watch_object(api.clone(), &args.name)
        .default_backoff()
        .boxed();
    loop {
        if args.wait {
            if let Some(code) = wait_outcome(&rollout) {
                return code;
            }
        }
        let next = if args.wait {
            match tokio::time::timeout_at(deadline, changes.next()).await {
                Ok(next) => next,
                Err(_) => {
                    eprintln!(
                        "timed out after {} waiting for rollout {}",
                        args.timeout, args.name
                    );
                    return EXIT_TIMEOUT;
                }
            }
        } else {
            changes.next().await
        };
        match next {
            Some(Ok(Some(changed))) => {
                if changed.status != last {
                    print_status(&changed, args.output, true);
                    last = changed.status.clone();
                }
                rollout = changed;
            }
            Some(Ok(None)) => {
                eprintln!("error: rollout {} was deleted", args.name);
                return EXIT_ERROR;
            }
            // The watcher resumes by itself (after a backoff); say so once per interruption.
            Some(Err(e)) => eprintln!("warning: watch of rollout {} interrupted: {e}", args.name),
            None => {
                eprintln!("error: the watch of rollout {} ended", args.name);
                return EXIT_ERROR;
            }
        }
    }
}

/// Apply a manual control to the Rollout `name` under the client's identity: the merge patch of
/// [`control_patch`] with a fresh token (the CLI and the dashboard's buttons send exactly this).
pub async fn apply_control(
    api: &Api<Rollout>,
    name: &str,
    control: Control,
) -> Result<Rollout, kube::Error> {
    let token = format!("{}", Timestamp::now().as_millisecond());
    let patch = control_patch(control, &token);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// A manual control.
pub fn control(control: Control, args: ControlArgs) -> ExitCode {
    block_on(async move {
        let (api, _) = match api_for(&args.target).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {}", text::for_terminal(&e.to_string()));
                return EXIT_ERROR;
            }
        };
        match apply_control(&api, &args.name, control).await {
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
mod tests;
