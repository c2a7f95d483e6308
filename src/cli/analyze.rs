//! `tollgate analyze --input FILE [--output text|json|yaml|html]`: judge exported canary data
//! offline (`html`: the self-contained report page of [`super::html`], plots look by look).
//!
//! The input is JSON (format in `docs/analyze-format.md`, example in `examples/analysis/`):
//!
//! ```json
//! {
//!   "policy": { "alpha": 0.05, "latency": [{ "quantile": 0.99 }] },
//!   "windows": [
//!     {
//!       "start": "2026-11-22T10:00:00Z",
//!       "canaryShare": 0.1,
//!       "baseline": { "requests": 2710, "errors": 3,
//!                     "latency": { "bounds": [0.05, 0.1, 0.25, 0.5, "+Inf"],
//!                                  "cumulative": [610, 1402, 2570, 2698, 2710] } },
//!       "canary":   { "requests": 301, "errors": 2, "latency": { "bounds": [...], "cumulative": [...] } }
//!     }
//!   ]
//! }
//! ```
//!
//! Each window holds the *increments* over that window (e.g. Prometheus `increase(...[30s])`);
//! histogram counts are cumulative over buckets (`le`), as Prometheus exports them. `policy`
//! is optional (defaults apply; see `analysis::judge::JudgePolicy`), and so is `baselineHistory`,
//! the baseline's `requests`/`errors` per window before the analysis. The windows are fed to the judge
//! in order, as the controller would, and the analysis stops at the first Pass or Fail unless
//! `--all` is given. Exit code: 0 pass, 1 fail, 2 inconclusive, 3 unreadable input or invalid
//! policy.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::analysis::judge::{self, JudgePolicy, JudgeState, JudgeVerdict, JudgeWindow, Judgement};
use crate::util::number::format_optional;
use crate::util::output::PageFormat;
use crate::util::text;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Exported data (JSON), `-` for standard input.
    #[arg(long)]
    pub input: PathBuf,
    /// `text`, `json`, `yaml` or `html` (one self-contained page with plots).
    #[arg(short = 'o', long, value_enum, default_value_t = PageFormat::Text)]
    pub output: PageFormat,
    /// Keep judging after the first Pass or Fail (report the last look).
    #[arg(long)]
    pub all: bool,
}

/// One window of the input file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputWindow {
    /// Free-form label (e.g. the window's start time); only echoed back.
    #[serde(default)]
    pub start: Option<String>,
    #[serde(flatten)]
    pub window: JudgeWindow,
}

/// The input file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeInput {
    #[serde(default)]
    pub policy: Option<JudgePolicy>,
    /// Optional: the baseline's counts over windows of the same length before the analysis
    /// (oldest first; `requests` and `errors`), used only to estimate how bursty the errors
    /// are, as the controller does with the stable track's last hour.
    #[serde(default)]
    pub baseline_history: Vec<judge::ArmCounts>,
    pub windows: Vec<InputWindow>,
}

/// What `analyze` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeReport {
    pub verdict: JudgeVerdict,
    /// 1-based index of the window at which the reported judgement was made.
    pub window: usize,
    pub window_start: Option<String>,
    pub windows_in_file: usize,
    pub judgement: Judgement,
    pub state: JudgeState,
    /// Input the judge could not use, and why (e.g. a histogram whose counts decrease): it is
    /// left out of the judgement, and the report says so rather than judge silently without it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The look-by-look record of the windows judged (for `-o html`), as the operator keeps it
    /// in `status.analysis.series`.
    #[serde(skip)]
    pub series: crate::crd::AnalysisSeries,
}

/// Why the histograms of `w` cannot be used, one note per unusable arm.
fn histogram_notes(index: usize, w: &JudgeWindow) -> Vec<String> {
    [("canary", &w.canary), ("baseline", &w.baseline)]
        .into_iter()
        .filter_map(|(arm, a)| {
            let e = a.latency.as_ref()?.validate().err()?;
            Some(format!(
                "window {index}: the {arm}'s latency histogram is left out: {e}"
            ))
        })
        .collect()
}

/// Run the judge over the input. Errors are input errors (exit code 3).
pub fn analyze(input: &AnalyzeInput, all: bool) -> Result<AnalyzeReport, String> {
    let policy = input.policy.clone().unwrap_or_default();
    policy
        .validate()
        .map_err(|e| format!("invalid policy: {e}"))?;
    if input.windows.is_empty() {
        return Err("the input has no windows".into());
    }
    let (mut state, _) =
        judge::prime_history(&JudgeState::default(), &policy, &input.baseline_history)
            .map_err(|e| e.to_string())?;
    let mut report = None;
    let mut notes = Vec::new();
    let mut series = crate::crd::AnalysisSeries::default();
    for (i, w) in input.windows.iter().enumerate() {
        notes.extend(histogram_notes(i + 1, &w.window));
        let (s, j) = judge::update(&state, &policy, &w.window).map_err(|e| e.to_string())?;
        state = s;
        // A window's time is its `start` when that is a timestamp, else 30 s per window.
        let index = i64::try_from(i).unwrap_or(i64::MAX);
        let end = w
            .start
            .as_deref()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(|| {
                jiff::Timestamp::from_second(index.saturating_mul(30)).unwrap_or_default()
            });
        let weight = w
            .window
            .canary_share
            .map_or(0, |s| (s * 100.0).round() as i32);
        series.push(
            i32::try_from(i + 1).unwrap_or(i32::MAX),
            end,
            weight,
            Some(&crate::runtime::peers::prometheus::series_point(
                &w.window, &j,
            )),
        );
        let decided = j.verdict != JudgeVerdict::Undecided;
        report = Some(AnalyzeReport {
            verdict: j.verdict,
            window: i + 1,
            window_start: w.start.clone(),
            windows_in_file: input.windows.len(),
            judgement: j,
            state: state.clone(),
            notes: notes.clone(),
            series: series.clone(),
        });
        if decided && !all {
            break;
        }
    }
    report.ok_or_else(|| "no window was judged".into())
}

fn fmt(x: Option<f64>) -> String {
    format_optional(x)
}

fn render_text(r: &AnalyzeReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "verdict: {:?} at window {} of {}{}\n{}\n\n",
        r.verdict,
        r.window,
        r.windows_in_file,
        r.window_start
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        r.judgement.reason
    ));
    for m in &r.judgement.metrics {
        out.push_str(&format!(
            "{:<20} {:<12} {}\n  test: {}\n  estimate {} bounds [{}, {}]  e-value {} (fail at {})  pass e-value {} (pass at {})\n  samples: {} windows, canary {} / baseline {} requests{}\n  {}\n",
            m.metric,
            format!("{:?}{}", m.verdict, if m.critical { "" } else { " (non-critical)" }),
            "",
            m.test,
            fmt(m.estimate),
            fmt(m.lower),
            fmt(m.upper),
            fmt(m.e_value),
            fmt(Some(m.threshold)),
            fmt(m.e_value_pass),
            fmt(Some(m.pass_threshold)),
            m.samples.windows,
            fmt(Some(m.samples.canary_requests)),
            fmt(Some(m.samples.baseline_requests)),
            match (m.samples.canary_events, m.samples.baseline_events) {
                (Some(c), Some(b)) => format!(", events canary {} / baseline {}", fmt(Some(c)), fmt(Some(b))),
                _ => String::new(),
            },
            m.reason
        ));
        if let Some(d) = &m.detail {
            out.push_str(&format!(
                "  p{}: canary {} s, baseline {} s, difference 95% [{}, {}] s, bound {} s\n",
                d.quantile * 100.0,
                fmt(d.canary_quantile),
                fmt(d.baseline_quantile),
                fmt(d.difference_lower),
                fmt(d.difference_upper),
                fmt(d.boundary)
            ));
        }
    }
    for note in &r.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// The HTML page's tables for a report.
fn html_page(r: &AnalyzeReport) -> super::html::ReportPage {
    super::html::ReportPage {
        title: "tollgate analyze".into(),
        facts: vec![
            ("verdict".into(), format!("{:?}", r.verdict)),
            (
                "at window".into(),
                format!("{} of {}", r.window, r.windows_in_file),
            ),
            ("why".into(), r.judgement.reason.clone()),
        ]
        .into_iter()
        .chain(r.notes.iter().map(|n| ("note".to_string(), n.clone())))
        .collect(),
        metrics: r
            .judgement
            .metrics
            .iter()
            .map(|m| {
                [
                    m.metric.clone(),
                    format!("{:?}", m.verdict),
                    format!("{} [{}, {}]", fmt(m.estimate), fmt(m.lower), fmt(m.upper)),
                    format!("{} (fail at {})", fmt(m.e_value), fmt(Some(m.threshold))),
                    m.reason.clone(),
                ]
            })
            .collect(),
        history: Vec::new(),
    }
}

fn read_input(path: &PathBuf) -> Result<AnalyzeInput, String> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

pub fn run(args: AnalyzeArgs) -> ExitCode {
    let input = read_input(&args.input);
    let policy = input
        .as_ref()
        .ok()
        .and_then(|i| i.policy.clone())
        .unwrap_or_default();
    let report = match input.and_then(|i| analyze(&i, args.all)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}", text::for_terminal(&e.to_string()));
            return ExitCode::from(3);
        }
    };
    let document = match args.output.plain() {
        None => Some(super::html::render(
            &html_page(&report),
            Some(&report.series),
            &policy,
        )),
        Some(plain) => plain.document(&report),
    };
    match document {
        None => print!("{}", text::for_terminal(&render_text(&report))),
        Some(Ok(document)) => print!("{document}"),
        Some(Err(e)) => {
            eprintln!("error: cannot render the result: {e}");
            return ExitCode::from(3);
        }
    }
    match report.verdict {
        JudgeVerdict::Pass => ExitCode::SUCCESS,
        JudgeVerdict::Fail => ExitCode::from(1),
        JudgeVerdict::Undecided => ExitCode::from(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> AnalyzeInput {
        let path = format!("{}/examples/analysis/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example exists");
        serde_json::from_str(&text).expect("example parses")
    }

    #[test]
    fn example_regression_fails() {
        let r = analyze(&example("error-regression.json"), false).expect("judged");
        assert_eq!(r.verdict, JudgeVerdict::Fail, "{}", render_text(&r));
        assert!(r.window < r.windows_in_file);
        let text = render_text(&r);
        assert!(text.contains("errorRate") && text.contains("Fail"));
    }

    #[test]
    fn an_unusable_histogram_is_named_not_dropped_silently() {
        let input: AnalyzeInput = serde_json::from_value(serde_json::json!({
            "windows": [{
                "baseline": {"requests": 100, "errors": 1,
                             "latency": {"bounds": [0.1, "+Inf"], "cumulative": [60, 100]}},
                "canary": {"requests": 100, "errors": 1,
                           "latency": {"bounds": [0.1, "+Inf"], "cumulative": [70, 20]}}
            }]
        }))
        .expect("parses");
        let r = analyze(&input, false).expect("judged");
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        assert!(r.notes[0].starts_with("window 1: the canary's latency histogram is left out"));
        assert!(render_text(&r).contains("note: window 1: the canary's"));
        let clean = analyze(&example("healthy.json"), false).expect("judged");
        assert!(clean.notes.is_empty(), "{:?}", clean.notes);
    }

    #[test]
    fn example_healthy_passes() {
        let r = analyze(&example("healthy.json"), false).expect("judged");
        assert_eq!(r.verdict, JudgeVerdict::Pass, "{}", render_text(&r));
    }

    #[test]
    fn baseline_history_in_the_input_is_used_and_said() {
        let mut input: AnalyzeInput = serde_json::from_value(serde_json::json!({
            "baselineHistory": [{"requests": 600, "errors": 2}, {"requests": 610, "errors": 9},
                                {"requests": 590, "errors": 0}, {"requests": 600, "errors": 14}],
            "windows": []
        }))
        .expect("parses");
        assert_eq!(input.baseline_history.len(), 4);
        input.windows = example("error-regression.json").windows;
        let with = analyze(&input, true).expect("judged");
        input.baseline_history.clear();
        let without = analyze(&input, true).expect("judged");
        let reason = |r: &AnalyzeReport| {
            r.judgement
                .metrics
                .iter()
                .find(|m| m.metric == "errorRate")
                .map(|m| m.reason.clone())
                .unwrap_or_default()
        };
        assert!(
            reason(&with).contains("3 windows of baseline history"),
            "{}",
            reason(&with)
        );
        assert!(!reason(&without).contains("baseline history"));
        let history = |r: &AnalyzeReport| r.state.error_rate.as_ref().map(|e| e.history_windows);
        assert_eq!((history(&with), history(&without)), (Some(3), Some(0)));
    }

    #[test]
    fn empty_or_bad_input_is_an_error() {
        let empty = AnalyzeInput {
            baseline_history: Vec::new(),
            policy: None,
            windows: vec![],
        };
        assert!(analyze(&empty, false).is_err());
        let bad: Result<AnalyzeInput, _> = serde_json::from_str("{\"windows\": 3}");
        assert!(bad.is_err());
    }
}
