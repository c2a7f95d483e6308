//! `tollgate report NAME [-n NS] [-o html|text|json|yaml]`: a Rollout's evidence as one
//! self-contained HTML page (the default; [`super::html`]), to attach to an incident ticket:
//! versions, phase and reason, each gate's answer, the metrics at the last look, the look-by-look
//! plots of `status.analysis.series`, and the decision history. `text` is the `status` tree,
//! `json` and `yaml` the status itself. Exit 0 when written, 3 when the Rollout cannot be read.

use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use kube::ResourceExt;

use super::html::{self, ReportPage};
use super::rollouts::{api_for, block_on, render_status, Target, EXIT_ERROR, EXIT_OK};
use crate::crd::Rollout;
use crate::runtime::peers::prometheus::judge_policy;
use crate::util::number::format_optional;
use crate::util::output::{OutputFormat, PageFormat};
use crate::util::text;

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The Rollout.
    pub name: String,
    #[command(flatten)]
    pub target: Target,
    /// `html` (one self-contained page), `text` (the status tree), `json` or `yaml` (the status).
    #[arg(short = 'o', long, value_enum, default_value_t = PageFormat::Html)]
    pub output: PageFormat,
}

/// The page's tables for a Rollout (every string raw; the page escapes them).
pub fn page(rollout: &Rollout) -> ReportPage {
    let status = rollout.status.clone().unwrap_or_default();
    let mut facts = vec![
        ("phase".to_string(), format!("{:?}", status.phase)),
        ("spec version".into(), rollout.spec.version.clone()),
        (
            "stable version".into(),
            status.stable_version.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "canary version".into(),
            status.canary_version.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "canary weight".into(),
            format!("{}%", status.current_weight),
        ),
    ];
    let optional = [
        ("reason", status.reason.clone()),
        ("message", status.message.clone()),
        ("holding", status.hold_reason.clone()),
        (
            "contract gate",
            status.contract_gate.as_ref().map(|g| {
                format!(
                    "{:?}{}",
                    g.verdict,
                    g.reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )
            }),
        ),
        (
            "fleet",
            status.fleet.as_ref().map(|f| {
                format!(
                    "{:?}: {} of {} pods match, {} failing",
                    f.verdict, f.pods_matching, f.pods_checked, f.pods_failing
                )
            }),
        ),
        (
            "smoke",
            status.smoke.as_ref().map(|s| {
                format!(
                    "{:?}: {} sent, {} failed",
                    s.verdict, s.requests_sent, s.requests_failed
                )
            }),
        ),
        (
            "analysis",
            status.analysis.as_ref().map(|a| {
                format!(
                    "{:?} after {} looks ({} without data)",
                    a.verdict, a.looks, a.failed_looks
                )
            }),
        ),
    ];
    facts.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
    );
    let metrics = status
        .analysis
        .as_ref()
        .map(|a| {
            a.metrics
                .iter()
                .map(|m| {
                    [
                        m.name.clone(),
                        format!("{:?}", m.verdict),
                        format!(
                            "{} [{}, {}]",
                            format_optional(m.estimate),
                            format_optional(m.lower),
                            format_optional(m.upper)
                        ),
                        format_optional(m.e_value),
                        m.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let history = status
        .history
        .iter()
        .map(|d| {
            [
                d.at.to_string(),
                format!("{:?}", d.phase),
                d.reason.clone(),
                d.message.clone(),
            ]
        })
        .collect();
    ReportPage {
        title: format!(
            "Rollout {}/{}",
            rollout.namespace().unwrap_or_default(),
            rollout.name_any()
        ),
        facts,
        metrics,
        history,
    }
}

/// The HTML page of a Rollout.
pub fn render_html(rollout: &Rollout) -> Result<String, String> {
    let policy = rollout
        .spec
        .analysis
        .as_ref()
        .map(judge_policy)
        .unwrap_or_default();
    let series = rollout
        .status
        .as_ref()
        .and_then(|s| s.analysis.as_ref())
        .and_then(|a| a.series.as_ref());
    html::render(&page(rollout), series, &policy)
}

/// `report`.
pub fn run(args: ReportArgs) -> ExitCode {
    block_on(async move {
        let (api, _) = match api_for(&args.target).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {}", text::for_terminal(&e));
                return EXIT_ERROR;
            }
        };
        let rollout = match api.get(&args.name).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "error: cannot read rollout {}: {}",
                    text::for_terminal(&args.name),
                    text::for_terminal(&e.to_string())
                );
                return EXIT_ERROR;
            }
        };
        let document = match args.output.plain() {
            None => Some(render_html(&rollout)),
            Some(OutputFormat::Text) => None,
            Some(plain) => plain.document(&rollout.status),
        };
        match document {
            None => print!(
                "{}",
                text::for_terminal(&render_status(&rollout, Timestamp::now()))
            ),
            Some(Ok(d)) => print!("{d}"),
            Some(Err(e)) => {
                eprintln!(
                    "error: cannot render the report: {}",
                    text::for_terminal(&e)
                );
                return EXIT_ERROR;
            }
        }
        EXIT_OK
    })
}
