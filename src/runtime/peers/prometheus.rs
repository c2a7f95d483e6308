//! Prometheus and the judge behind [`AnalysisPeer`]: the provider of `analysis::providers`,
//! configured from `spec.analysis` (its address or the operator's default, credentials from a
//! Secret), feeding each window to the sequential judge and mapping its verdict into status.

use kube::{Client, ResourceExt};

use super::{secret_data, AnalysisPeer, PeerDefaults, PeerFuture, SecretError};
use crate::analysis::judge::{self, JudgePolicy, JudgeState};
use crate::analysis::providers::prometheus::metrics::{self, MetricReading, MetricValue};
use crate::analysis::providers::prometheus::{PrometheusConfig, PrometheusProvider};
use crate::analysis::providers::{AnalysisTarget, ArmWindow, MetricsProvider, Window};
use crate::analysis::stats::latency::Histogram;
use crate::crd::{self, MetricStatus, MetricVerdict, Rollout, RolloutStatus};
use crate::rollout::decide::{AnalysisLook, LookWindow, SpecProblem};
use crate::util::{credentials, text};

/// The judge's policy for a Rollout's analysis settings.
pub fn judge_policy(analysis: &crd::AnalysisSpec) -> JudgePolicy {
    let defaults = JudgePolicy::default();
    JudgePolicy {
        alpha: analysis.alpha,
        alpha_pass: analysis.alpha_pass,
        error_rate: analysis
            .error_rate
            .as_ref()
            .map(|e| judge::ErrorRatePolicy {
                tolerance: e.tolerance,
                pass_tolerance: e.pass_tolerance,
                pass_margin: (e.pass_margin > 0.0).then_some(e.pass_margin),
                pass_rate: e.pass_rate,
                max_rate: e.max_rate,
                critical: e.critical,
                ..judge::ErrorRatePolicy::default()
            }),
        latency: analysis
            .latency
            .iter()
            .flat_map(|l| {
                l.quantiles.iter().map(|q| judge::LatencyPolicy {
                    quantile: q.quantile,
                    tolerance: q.tolerance,
                    pass_tolerance: q.pass_tolerance,
                    critical: l.critical,
                    ..judge::LatencyPolicy::default()
                })
            })
            .collect(),
        distribution: analysis
            .latency
            .as_ref()
            .filter(|l| l.whole_distribution)
            .map(|l| judge::DistributionPolicy {
                critical: l.critical,
                ..judge::DistributionPolicy::default()
            }),
        metrics: analysis.metrics.iter().map(template_policy).collect(),
        min_canary_requests: analysis.min_requests as f64,
        ..defaults
    }
}

/// The judge's settings for one of `spec.analysis.metrics`: a counter pair as the error rate
/// (its weight the metric's), a histogram's quantiles as latency quantiles sharing the
/// metric's weight evenly.
fn template_policy(m: &crd::MetricSpec) -> judge::TemplateMetricPolicy {
    let quantiles = m.histogram.as_ref().map_or(&[][..], |h| &h.quantiles[..]);
    let share = m.weight / quantiles.len().max(1) as f64;
    judge::TemplateMetricPolicy {
        name: m.name.clone(),
        counter: m.counter_pair.as_ref().map(|c| judge::ErrorRatePolicy {
            tolerance: c.tolerance,
            pass_tolerance: c.pass_tolerance,
            pass_margin: (c.pass_margin > 0.0).then_some(c.pass_margin),
            pass_rate: c.pass_rate,
            max_rate: c.max_rate,
            critical: m.critical,
            weight: m.weight,
        }),
        quantiles: quantiles
            .iter()
            .map(|q| judge::LatencyPolicy {
                quantile: q.quantile,
                tolerance: q.tolerance,
                pass_tolerance: q.pass_tolerance,
                critical: m.critical,
                weight: share,
            })
            .collect(),
    }
}

/// The judge's windows of the template metrics from what the provider read, or, when a
/// metric's queries gave no usable answer (none or several series, say), why the look has no
/// data: every metric is needed for a verdict, so one without data makes the whole look one
/// without data (inconclusive), never a judgement on the others alone.
pub fn metric_windows(
    readings: &[(String, MetricReading)],
) -> Result<judge::MetricWindows, String> {
    let arm = |v: &MetricValue| match v {
        MetricValue::Counts { errors, total } => judge::ArmCounts {
            requests: Some(*total),
            errors: Some(*errors),
            latency: None,
        },
        MetricValue::Buckets(b) => judge::ArmCounts {
            requests: b.last().map(|(_, c)| *c),
            errors: None,
            latency: (!b.is_empty()).then(|| Histogram {
                bounds: b.iter().map(|(le, _)| *le).collect(),
                cumulative: b.iter().map(|(_, c)| *c).collect(),
            }),
        },
    };
    let mut out = judge::MetricWindows::new();
    for (name, reading) in readings {
        let (c, b) = reading
            .as_ref()
            .map_err(|why| format!("no data for metric {name}: {why}"))?;
        let (canary, baseline) = (arm(c), arm(b));
        let total = canary.requests.unwrap_or(0.0) + baseline.requests.unwrap_or(0.0);
        out.insert(
            name.clone(),
            judge::JudgeWindow {
                canary_share: (total > 0.0).then(|| canary.requests.unwrap_or(0.0) / total),
                canary,
                baseline,
            },
        );
    }
    Ok(out)
}

/// The provider's settings for a Rollout's analysis, reading Prometheus at `address`.
pub fn prometheus_config(analysis: &crd::AnalysisSpec, address: String) -> PrometheusConfig {
    let prometheus = &analysis.provider.prometheus;
    let mut config = PrometheusConfig {
        address,
        timeout_ms: u64::try_from(std::time::Duration::from(prometheus.timeout).as_millis())
            .unwrap_or(u64::MAX),
        ..PrometheusConfig::default()
    };
    if let Some(e) = &analysis.error_rate {
        config.requests_metric = e.requests_metric.clone();
        config.code_label = e.code_label.clone();
        config.error_codes = e.error_codes.clone();
    }
    if let Some(l) = &analysis.latency {
        config.histogram_metric = l.histogram_metric.clone();
    }
    config
}

/// Per-metric evidence in the status's shape.
pub fn metric_status(m: &judge::MetricJudgement) -> MetricStatus {
    MetricStatus {
        name: m.metric.clone(),
        verdict: match m.verdict {
            judge::JudgeVerdict::Pass => MetricVerdict::Pass,
            judge::JudgeVerdict::Fail => MetricVerdict::Fail,
            judge::JudgeVerdict::Undecided => MetricVerdict::Running,
        },
        test: Some(m.test.clone()),
        estimate: m.estimate.filter(|x| x.is_finite()),
        lower: m.lower.filter(|x| x.is_finite()),
        upper: m.upper.filter(|x| x.is_finite()),
        e_value: m.e_value.filter(|x| x.is_finite()),
        canary_samples: m.samples.canary_requests.round() as i64,
        baseline_samples: m.samples.baseline_requests.round() as i64,
        reason: Some(m.reason.clone()),
        needs_canary_requests: needs(m).map(|n| n.round() as i64),
        outlook: None,
        max_rate_exceeded: m.max_rate_exceeded,
    }
}

/// The more canary requests an undecided metric needs to pass; `Some(INFINITY)` when it cannot
/// pass at the rates seen so far; `None` for a decided metric or one that waits for nothing.
fn needs(m: &judge::MetricJudgement) -> Option<f64> {
    if m.verdict != judge::JudgeVerdict::Undecided {
        return None;
    }
    match m.needs_requests {
        Some(n) if n > 0.0 && n.is_finite() => Some(n),
        Some(_) => None,
        None if m.cannot_pass => Some(f64::INFINITY),
        None => None,
    }
}

/// Whether an undecided metric can pass before the analysis' deadline at the canary traffic
/// seen so far: `needs` more canary requests, `seen` canary requests in `elapsed_s` seconds of
/// analysis, `left_s` seconds left. `None` when there is nothing to say (decided, or no traffic
/// measured yet).
pub fn outlook(needs: Option<f64>, seen: f64, elapsed_s: f64, left_s: f64) -> Option<String> {
    let needs = needs?;
    if needs.is_infinite() {
        return Some("cannot pass at the rates seen so far, however long it runs".into());
    }
    if !(seen > 0.0 && elapsed_s > 0.0) {
        return None;
    }
    let rate = seen / elapsed_s;
    let takes_min = needs / rate / 60.0;
    let left_min = (left_s / 60.0).max(0.0);
    let takes = crate::util::number::format_count(takes_min.ceil());
    let left = crate::util::number::format_count(left_min.floor());
    let n = crate::util::number::format_count(needs);
    Some(if takes_min <= left_min {
        format!(
            "on track: about {n} more canary requests, about {takes} min at the canary traffic \
             seen so far ({left} min left)"
        )
    } else {
        format!(
            "unlikely to pass in time: about {n} more canary requests take about {takes} min at \
             the canary traffic seen so far, {left} min left (more canary weight or traffic, or \
             a longer maxDuration, would help)"
        )
    })
}

/// Seconds of analysis so far and seconds left before `maxDuration`, at `now`.
fn analysis_times(
    status: &RolloutStatus,
    analysis: &crd::AnalysisSpec,
    now: jiff::Timestamp,
) -> (f64, f64) {
    let started = status.analysis.as_ref().and_then(|a| a.started_at);
    let Some(started) = started else {
        return (0.0, 0.0);
    };
    let elapsed = (now.as_millisecond() - started.as_millisecond()) as f64 / 1000.0;
    let max = std::time::Duration::from(analysis.max_duration).as_secs_f64();
    (elapsed.max(0.0), (max - elapsed).max(0.0))
}

/// What a judged look adds to `status.analysis.series`: the window's counts per arm and each
/// metric's figures, thresholds and (latency) quantiles per arm.
pub fn series_point(window: &judge::JudgeWindow, judgement: &judge::Judgement) -> crd::SeriesPoint {
    crd::SeriesPoint {
        canary_requests: window.canary.requests,
        canary_errors: window.canary.errors,
        baseline_requests: window.baseline.requests,
        baseline_errors: window.baseline.errors,
        metrics: judgement
            .metrics
            .iter()
            .map(|m| crd::MetricPoint {
                name: m.metric.clone(),
                estimate: m.estimate,
                lower: m.lower,
                upper: m.upper,
                e_fail: m.e_value,
                e_pass: m.e_value_pass,
                fail_threshold: Some(m.threshold),
                pass_threshold: Some(m.pass_threshold),
                canary_quantile: m.detail.as_ref().and_then(|d| d.canary_quantile),
                baseline_quantile: m.detail.as_ref().and_then(|d| d.baseline_quantile),
            })
            .collect(),
    }
}

/// Longest text from a peer kept in a status summary.
pub const MAX_STATUS_TEXT: usize = 512;

/// `text` as status may keep it: every form of the credentials replaced by `[redacted]`,
/// control characters escaped, at most [`MAX_STATUS_TEXT`] characters.
fn status_text(text: &str, secrets: &[String]) -> String {
    text::for_status(&text::redact(text, secrets), MAX_STATUS_TEXT)
}

fn whole_millis(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// Prometheus, read through the provider and judged.
pub struct PrometheusJudgePeer {
    client: Client,
    defaults: PeerDefaults,
}

impl PrometheusJudgePeer {
    /// A peer reading credential Secrets through `client`, with the operator's default
    /// addresses.
    pub fn new(client: Client, defaults: PeerDefaults) -> Self {
        PrometheusJudgePeer { client, defaults }
    }

    /// The credentials for a Rollout's analysis: `Ok(Err(why))` when they cannot be read now
    /// (a look without data), `Err` when the Secret is not meant for tollgate (a spec problem).
    async fn credentials(
        &self,
        namespace: &str,
        analysis: &crd::AnalysisSpec,
    ) -> Result<Result<Option<credentials::Credentials>, String>, SpecProblem> {
        let Some(secret) = &analysis.provider.prometheus.credentials_secret_ref else {
            return Ok(Ok(None));
        };
        let data = match secret_data(&self.client, namespace, &secret.name).await {
            Ok(data) => data,
            Err(SecretError::Unavailable(why)) => return Ok(Err(why)),
            Err(SecretError::NotCredentials(m)) => {
                return Err(SpecProblem::new(format!(
                    "spec.analysis.provider.prometheus.credentialsSecretRef: {m}"
                )))
            }
        };
        Ok(credentials::from_secret_data(&data)
            .map(Some)
            .map_err(|e| format!("Secret {}: {e}", secret.name)))
    }

    /// The provider for a Rollout's analysis and the arms it compares.
    async fn provider(
        &self,
        rollout: &Rollout,
        analysis: &crd::AnalysisSpec,
        auth: Option<credentials::Credentials>,
    ) -> Result<(PrometheusProvider, AnalysisTarget), String> {
        let namespace = rollout.namespace().unwrap_or_default();
        let address = self.defaults.prometheus_url(analysis).ok_or_else(|| {
            self.defaults
                .missing_address(&rollout.spec)
                .unwrap_or_default()
        })?;
        let provider = PrometheusProvider::new(prometheus_config(analysis, address), auth)
            .map_err(|e| e.to_string())?;
        let mut target = AnalysisTarget::new(&namespace, rollout.name_any());
        if !analysis.dedicated_baseline {
            target = target.with_baseline_track("stable");
        }
        Ok((provider, target))
    }
}

/// Look-length windows of the stable track's past read before an analysis's first look, to
/// estimate how bursty the service's errors are (an hour at the default 30 s interval).
pub const HISTORY_WINDOWS: usize = 120;

/// The stable track's error and request counts over the [`HISTORY_WINDOWS`] windows of
/// `window`'s length before `window`, oldest first, windows without data left out. The stable
/// track, not a dedicated baseline: a fresh baseline has no past, and it runs the stable version.
pub async fn stable_history<P: MetricsProvider + ?Sized>(
    provider: &P,
    target: &AnalysisTarget,
    window: &Window,
) -> Result<Vec<judge::ArmCounts>, String> {
    let step = std::time::Duration::from_millis(window.millis().unsigned_abs());
    let back = jiff::SignedDuration::from_millis(
        window.millis().saturating_mul(HISTORY_WINDOWS as i64 - 1),
    );
    let first_end = window
        .start()
        .checked_sub(back)
        .map_err(|e| e.to_string())?;
    let first = Window::ending_at(first_end, step).map_err(|e| e.to_string())?;
    let stable = target.clone().with_baseline_track("stable");
    let windows = provider
        .consecutive_window_counts(&stable, first, HISTORY_WINDOWS)
        .await
        .map_err(|e| e.to_string())?;
    Ok(windows
        .iter()
        .filter_map(|w| w.baseline.as_ref())
        .map(|b| arm(b, true, false))
        .collect())
}

fn arm(arm: &ArmWindow, errors: bool, latency: bool) -> judge::ArmCounts {
    judge::ArmCounts {
        requests: Some(arm.requests),
        errors: errors.then_some(arm.errors),
        latency: (latency && !arm.buckets.is_empty()).then(|| Histogram {
            bounds: arm.buckets.iter().map(|(le, _)| *le).collect(),
            cumulative: arm.buckets.iter().map(|(_, c)| *c).collect(),
        }),
    }
}

/// A look that adds no evidence.
fn missing(window: &LookWindow, summary: String) -> AnalysisLook {
    AnalysisLook::without_data(window, summary)
}

/// The judge cannot work with the policy the spec makes: a problem with the spec, not a look
/// without evidence.
fn invalid_policy(e: judge::PolicyError) -> SpecProblem {
    SpecProblem::new(format!("spec.analysis cannot be judged: {e}"))
}

/// The judge's state saved in `status`, and why it could not be read when it could not (the
/// sequential test then starts over, and decide says so).
pub fn saved_state(status: &RolloutStatus) -> (JudgeState, Option<String>) {
    let saved = status.analysis.as_ref().and_then(|a| a.judge_state.clone());
    match saved.map(serde_json::from_value::<JudgeState>) {
        None => (JudgeState::default(), None),
        Some(Ok(state)) => (state, None),
        Some(Err(e)) => (JudgeState::default(), Some(e.to_string())),
    }
}

/// The judge's window from the counts of both arms, or which arm had no data.
fn judge_window(
    analysis: &crd::AnalysisSpec,
    counts: &crate::analysis::providers::WindowCounts,
) -> Result<judge::JudgeWindow, &'static str> {
    if analysis.error_rate.is_none() && analysis.latency.is_none() {
        // only template metrics: the built-in request counts are not needed (the service may
        // not even have them)
        return Ok(judge::JudgeWindow::default());
    }
    let (canary, baseline) = match (&counts.canary, &counts.baseline) {
        (Some(c), Some(b)) => (c, b),
        (None, None) => return Err("either arm"),
        (None, _) => return Err("the canary"),
        _ => return Err("the baseline"),
    };
    let errors = analysis.error_rate.is_some();
    let latency = analysis.latency.is_some();
    let total = canary.requests + baseline.requests;
    Ok(judge::JudgeWindow {
        baseline: arm(baseline, errors, latency),
        canary: arm(canary, errors, latency),
        canary_share: (total > 0.0).then(|| canary.requests / total),
    })
}

impl PrometheusJudgePeer {
    /// Once per analysis, before its first window, the stable track's past primes the judge's
    /// dispersion estimate; the judge keeps what it learned in its state, so a restart does not
    /// read it again. A failed read leaves the judge on the analysis's own windows, as it was
    /// before history existed, and the returned note says so.
    async fn primed(
        provider: &PrometheusProvider,
        target: &AnalysisTarget,
        window: &Window,
        state: JudgeState,
        policy: &JudgePolicy,
    ) -> (JudgeState, Option<String>) {
        match stable_history(provider, target, window).await {
            Ok(history) => match judge::prime_history(&state, policy, &history) {
                Ok((primed, _)) => (primed, None),
                Err(_) => (state, None),
            },
            Err(e) => (
                state,
                Some(format!(
                    "; baseline history unavailable ({e}), dispersion from this analysis only"
                )),
            ),
        }
    }
}

impl AnalysisPeer for PrometheusJudgePeer {
    fn fleet_prometheus<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> PeerFuture<'a, Result<Result<PrometheusProvider, String>, SpecProblem>> {
        Box::pin(async move {
            let missing = || {
                SpecProblem::new(
                    "spec.fleetCheck.source: prometheus needs a Prometheus: \
                     spec.analysis.provider.prometheus.address or the operator's default \
                     (--prometheus-url, chart value prometheus.url)"
                        .to_string(),
                )
            };
            // Without an analysis only the operator's own default is asked: a Rollout's own
            // address and credentials come with its analysis, where the allowed hosts apply.
            let Some(analysis) = rollout.spec.analysis.as_ref() else {
                let address = self.defaults.prometheus_url.clone().ok_or_else(missing)?;
                let config = PrometheusConfig {
                    address,
                    ..PrometheusConfig::default()
                };
                return Ok(PrometheusProvider::new(config, None).map_err(|e| e.to_string()));
            };
            let address = self.defaults.prometheus_url(analysis).ok_or_else(missing)?;
            let namespace = rollout.namespace().unwrap_or_default();
            let auth = match self.credentials(&namespace, analysis).await? {
                Ok(auth) => auth,
                Err(why) => return Ok(Err(why)),
            };
            Ok(
                PrometheusProvider::new(prometheus_config(analysis, address), auth)
                    .map_err(|e| e.to_string()),
            )
        })
    }

    fn look<'a>(
        &'a self,
        rollout: &'a Rollout,
        status: &'a RolloutStatus,
        window: &'a LookWindow,
    ) -> PeerFuture<'a, Result<AnalysisLook, SpecProblem>> {
        Box::pin(async move {
            let Some(analysis) = rollout.spec.analysis.as_ref() else {
                return Ok(missing(window, "spec.analysis is not set".into()));
            };
            let policy = judge_policy(analysis);
            policy.validate().map_err(invalid_policy)?;
            let namespace = rollout.namespace().unwrap_or_default();
            let auth = match self.credentials(&namespace, analysis).await? {
                Ok(auth) => auth,
                Err(e) => return Ok(missing(window, format!("metrics unavailable: {e}"))),
            };
            // Text from Prometheus (or a server posing as it) goes into status: without the
            // credentials in any form, printable and short.
            let secrets: Vec<String> = auth.as_ref().map(|a| a.scrub_forms()).unwrap_or_default();
            let scrub = |text: String| status_text(&text, &secrets);
            let read = async {
                let (provider, target) = self.provider(rollout, analysis, auth).await?;
                let window = Window::new(whole_millis(window.start), whole_millis(window.end))
                    .map_err(|e| e.to_string())?;
                let counts = provider
                    .window_counts(&target, window)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((provider, target, window, counts))
            };
            let (provider, target, provider_window, counts) = match read.await {
                Ok(c) => c,
                Err(e) => {
                    let summary = scrub(format!("metrics unavailable: {e}"));
                    return Ok(missing(window, summary));
                }
            };
            // the team's own metrics: checked before the canary started, so a problem here is
            // one the reconcile already refused; said again rather than judged without them
            let queries = metrics::compile(&analysis.metrics).map_err(SpecProblem::new)?;
            let metric_windows = if queries.is_empty() {
                judge::MetricWindows::new()
            } else {
                let read = provider
                    .metric_windows(&target, provider_window, &queries)
                    .await
                    .map_err(|e| format!("metrics unavailable: {e}"))
                    .and_then(|r| metric_windows(&r));
                match read {
                    Ok(w) => w,
                    Err(e) => return Ok(missing(window, scrub(e))),
                }
            };
            let judge_window = match judge_window(analysis, &counts) {
                Ok(w) => w,
                Err(which) => {
                    let summary = format!("no traffic data for {which} in this window");
                    return Ok(missing(window, summary));
                }
            };
            let (mut state, reset) = saved_state(status);
            let mut history_note = None;
            if state.looks == 0 && analysis.error_rate.is_some() {
                (state, history_note) =
                    Self::primed(&provider, &target, &provider_window, state, &policy).await;
            }
            let (next, judgement) =
                judge::update_with_metrics(&state, &policy, &judge_window, &metric_windows)
                    .map_err(invalid_policy)?;
            // A verdict whose evidence cannot be carried to the next look would be judged again
            // from nothing: the look counts as one without data instead.
            let judge_state = match serde_json::to_value(&next) {
                Ok(v) => v,
                Err(e) => {
                    let summary = format!("the judge's state could not be saved: {e}");
                    return Ok(missing(window, summary));
                }
            };
            let series = series_point(&judge_window, &judgement);
            Ok(AnalysisLook {
                window_end: window.end,
                verdict: match judgement.verdict {
                    judge::JudgeVerdict::Pass => MetricVerdict::Pass,
                    judge::JudgeVerdict::Fail => MetricVerdict::Fail,
                    judge::JudgeVerdict::Undecided => MetricVerdict::Running,
                },
                metrics: judgement
                    .metrics
                    .iter()
                    .map(|m| {
                        let mut ms = metric_status(m);
                        let (elapsed, left) = analysis_times(status, analysis, window.end);
                        ms.outlook = outlook(needs(m), m.samples.canary_requests, elapsed, left);
                        ms
                    })
                    .collect(),
                judge_state: Some(judge_state),
                data_missing: false,
                summary: judgement.reason + &scrub(history_note.unwrap_or_default()),
                judge_state_reset: reset,
                series: Some(series),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn analysis(extra: serde_json::Value) -> crd::AnalysisSpec {
        let mut base = json!({"provider": {"prometheus": {"address": "http://p:9090", "timeout": "3s"}},
                              "errorRate": {"tolerance": 1.1, "passTolerance": 2.0, "critical": false,
                                            "requestsMetric": "reqs", "codeLabel": "status"}});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_metric_that_cannot_pass_is_told_by_the_judge_not_by_its_wording() {
        let metric = |cannot_pass: bool, reason: &str| -> judge::MetricJudgement {
            serde_json::from_value(json!({
                "metric": "errorRate", "verdict": "Inconclusive", "critical": true,
                "test": "t", "reason": reason, "threshold": 100.0, "passThreshold": 40.0,
                "cannotPass": cannot_pass,
                "samples": {"windows": 6, "canaryRequests": 1800.0, "baselineRequests": 1800.0}
            }))
            .unwrap()
        };
        assert_eq!(
            needs(&metric(true, "not enough evidence yet")),
            Some(f64::INFINITY)
        );
        assert_eq!(
            metric_status(&metric(true, "x")).needs_canary_requests,
            Some(i64::MAX)
        );
        // the words alone decide nothing
        assert_eq!(
            needs(&metric(false, "cannot pass at the rates seen so far")),
            None
        );
    }

    #[test]
    fn the_outlook_compares_what_a_metric_needs_with_the_time_left() {
        // 600 canary requests in 5 min: 2 per second
        let on_track = outlook(Some(1200.0), 600.0, 300.0, 900.0).expect("said");
        assert!(on_track.starts_with("on track"), "{on_track}");
        assert!(on_track.contains("about 10 min"), "{on_track}");
        assert!(on_track.contains("15 min left"), "{on_track}");
        let late = outlook(Some(12_000.0), 600.0, 300.0, 900.0).expect("said");
        assert!(late.starts_with("unlikely to pass in time"), "{late}");
        assert!(late.contains("about 100 min"), "{late}");
        let never = outlook(Some(f64::INFINITY), 600.0, 300.0, 900.0).expect("said");
        assert!(never.contains("cannot pass"), "{never}");
        // nothing to say: decided, or no traffic measured yet
        assert_eq!(outlook(None, 600.0, 300.0, 900.0), None);
        assert_eq!(outlook(Some(10.0), 0.0, 300.0, 900.0), None);
    }

    /// What a server posing as Prometheus (or a metadata endpoint behind a redirect) says
    /// reaches status without the credentials, escaped and short.
    #[test]
    fn peer_text_in_status_is_scrubbed_escaped_and_capped() {
        let auth = credentials::Credentials::Basic {
            username: "prom-user".into(),
            password: crate::util::secret::Secret::new("prom-pass-123"),
        };
        let body = format!(
            "HTTP 500: echo Authorization: Basic {} user prom-user pass prom-pass-123 \u{1b}]0;x\u{7}{}",
            "cHJvbS11c2VyOnByb20tcGFzcy0xMjM=",
            "z".repeat(4000)
        );
        let shown = status_text(&body, &auth.scrub_forms());
        for secret in [
            "prom-user",
            "prom-pass-123",
            "cHJvbS11c2VyOnByb20tcGFzcy0xMjM=",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(
            shown.chars().count() <= MAX_STATUS_TEXT + 1,
            "{}",
            shown.len()
        );
    }

    #[test]
    fn template_metrics_map_onto_the_judge_and_their_readings_onto_windows() {
        let a = analysis(json!({"metrics": [
            {"name": "pay", "weight": 2, "critical": false,
             "counterPair": {"errors": "sum(e)", "total": "sum(t)", "tolerance": 1.3,
                             "passTolerance": 2.0, "passMargin": 0}},
            {"name": "lat", "weight": 2, "histogram": {"query": "sum by (le) (h)",
             "quantiles": [{"quantile": 0.9}, {"quantile": 0.99}]}}]}));
        let p = judge_policy(&a);
        assert_eq!(p.validate(), Ok(()));
        let pay = p.metrics[0].counter.as_ref().expect("counter");
        assert_eq!(
            (
                pay.tolerance,
                pay.pass_tolerance,
                pay.pass_margin,
                pay.weight,
                pay.critical
            ),
            (1.3, 2.0, None, 2.0, false)
        );
        // a histogram's weight is split between its quantiles
        let lat: Vec<f64> = p.metrics[1].quantiles.iter().map(|q| q.weight).collect();
        assert_eq!(lat, vec![1.0, 1.0]);
        let readings = vec![
            (
                "pay".to_string(),
                Ok((
                    MetricValue::Counts {
                        errors: 3.0,
                        total: 100.0,
                    },
                    MetricValue::Counts {
                        errors: 1.0,
                        total: 300.0,
                    },
                )),
            ),
            (
                "lat".to_string(),
                Ok((
                    MetricValue::Buckets(vec![(0.1, 5.0), (f64::INFINITY, 10.0)]),
                    MetricValue::Buckets(vec![(0.1, 6.0), (f64::INFINITY, 30.0)]),
                )),
            ),
        ];
        let w = metric_windows(&readings).expect("windows");
        assert_eq!(
            (
                w["pay"].canary.errors,
                w["pay"].canary.requests,
                w["pay"].canary_share
            ),
            (Some(3.0), Some(100.0), Some(0.25))
        );
        let h = w["lat"].baseline.latency.as_ref().expect("histogram");
        assert_eq!(h.cumulative, vec![6.0, 30.0]);
        // one metric without data: the look has none, and says which and why
        let mut bad = readings.clone();
        bad[1].1 = Err("lat: canary histogram: the query returned no series".into());
        let why = metric_windows(&bad).expect_err("no data");
        assert_eq!(
            why,
            "no data for metric lat: lat: canary histogram: the query returned no series"
        );
    }

    #[test]
    fn the_policy_follows_the_spec() {
        let a = analysis(json!({"alpha": 0.01, "alphaPass": 0.1, "minRequests": 50,
            "latency": {"quantiles": [{"quantile": 0.95, "tolerance": 1.2, "passTolerance": 1.4},
                                      {"quantile": 0.99}], "critical": false}}));
        let p = judge_policy(&a);
        assert_eq!(
            (p.alpha, p.alpha_pass, p.min_canary_requests),
            (0.01, 0.1, 50.0)
        );
        let e = p.error_rate.unwrap();
        assert_eq!(
            (e.tolerance, e.pass_tolerance, e.critical),
            (1.1, 2.0, false)
        );
        assert_eq!(p.latency.len(), 2);
        assert_eq!(
            (
                p.latency[0].quantile,
                p.latency[0].tolerance,
                p.latency[0].pass_tolerance
            ),
            (0.95, 1.2, 1.4)
        );
        assert!(!p.latency[1].critical);
        assert!(p.distribution.is_some());
        let no_latency = judge_policy(&analysis(json!({})));
        assert!(no_latency.latency.is_empty() && no_latency.distribution.is_none());
        let c = prometheus_config(&a, "http://p:9090".into());
        assert_eq!((c.address.as_str(), c.timeout_ms), ("http://p:9090", 3000));
        assert_eq!(
            (c.requests_metric.as_str(), c.code_label.as_str()),
            ("reqs", "status")
        );
    }

    #[test]
    fn a_judged_look_keeps_its_evidence() {
        let a = analysis(json!({"errorRate": {"critical": true}}));
        let policy = judge_policy(&a);
        let window = judge::JudgeWindow {
            baseline: judge::ArmCounts {
                requests: Some(1000.0),
                errors: Some(10.0),
                latency: None,
            },
            canary: judge::ArmCounts {
                requests: Some(1000.0),
                errors: Some(80.0),
                latency: None,
            },
            canary_share: Some(0.5),
        };
        let mut state = JudgeState::default();
        let mut last = None;
        for _ in 0..6 {
            let (next, judgement) = judge::update(&state, &policy, &window).unwrap();
            state = next;
            last = Some(judgement);
        }
        let judgement = last.unwrap();
        assert_eq!(
            judgement.verdict,
            judge::JudgeVerdict::Fail,
            "{judgement:?}"
        );
        let m = metric_status(&judgement.metrics[0]);
        assert_eq!(m.verdict, MetricVerdict::Fail);
        assert!(
            m.estimate.unwrap() > 4.0 && m.canary_samples == 6000,
            "{m:?}"
        );
        assert!(m.reason.is_some() && m.test.is_some());
        // The same regression on a non-critical metric blocks promotion but does not roll back.
        let soft = judge_policy(&analysis(json!({"errorRate": {"critical": false}})));
        let mut state = JudgeState::default();
        let mut verdict = None;
        for _ in 0..6 {
            let (next, judgement) = judge::update(&state, &soft, &window).unwrap();
            state = next;
            verdict = Some(judgement.verdict);
        }
        assert_eq!(verdict, Some(judge::JudgeVerdict::Undecided));
    }

    #[test]
    fn a_saved_judge_state_that_does_not_read_back_says_why() {
        let status = |state: serde_json::Value| RolloutStatus {
            analysis: Some(crd::AnalysisStatus {
                judge_state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            saved_state(&RolloutStatus::default()),
            (JudgeState::default(), None)
        );
        let good = serde_json::to_value(JudgeState::default()).unwrap();
        assert_eq!(saved_state(&status(good)).1, None);
        let (state, why) = saved_state(&status(json!({"looks": "many"})));
        assert_eq!(state, JudgeState::default());
        assert!(why.is_some_and(|w| w.contains("invalid type")));
    }

    /// Status JSON of an analysis after `looks` looks of the real judge with four metrics
    /// (error rate, p95, p99, whole distribution) on Prometheus' default buckets, with the
    /// look-by-look record as decide appends it.
    fn status_after(looks: u32) -> RolloutStatus {
        use crate::analysis::sim::{Generator, Scenario};
        use rand::SeedableRng;
        let a = analysis(json!({"errorRate": {"critical": true},
            "latency": {"quantiles": [{"quantile": 0.95}, {"quantile": 0.99}],
                        "wholeDistribution": true}}));
        let policy = judge_policy(&a);
        let generator = Generator::new(&Scenario {
            rps: 20.0,
            default_buckets: true,
            ..Scenario::default()
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut state = JudgeState::default();
        let mut status = RolloutStatus::default();
        let analysis = status.analysis.get_or_insert_default();
        for t in 0..looks {
            let window = generator.window(&mut rng, t);
            let (next, judgement) = judge::update(&state, &policy, &window).unwrap();
            state = next;
            analysis.looks += 1;
            analysis.metrics = judgement.metrics.iter().map(metric_status).collect();
            analysis.judge_state = Some(serde_json::to_value(&state).unwrap());
            let end = jiff::Timestamp::from_second(1_800_000_000 + i64::from(t) * 30).unwrap();
            analysis.series.get_or_insert_default().push(
                analysis.looks,
                end,
                50,
                Some(&series_point(&window, &judgement)),
            );
        }
        status
    }

    /// etcd holds objects up to about 1.5 MiB, and every watch and list carries the whole
    /// status: a one-hour analysis (120 looks at 30 s) stays under 64 KiB with its record.
    #[test]
    fn a_one_hour_analysis_with_its_record_stays_under_64_kib_of_status() {
        let size = |looks| serde_json::to_vec(&status_after(looks)).unwrap().len();
        let (one, hour, two_hours) = (size(1), size(120), size(240));
        println!("status JSON bytes: 1 look {one}, 120 looks {hour}, 240 looks {two_hours}");
        assert!(hour < 64 * 1024, "{hour} bytes at 120 looks");
        assert!(one < hour && hour < two_hours, "{one} {hour} {two_hours}");
        let status = status_after(120);
        let series = status.analysis.unwrap().series.unwrap();
        assert_eq!(series.len(), 120);
        assert_eq!(
            series.metrics.len(),
            4,
            "{:?}",
            series.metrics.iter().map(|m| &m.name).collect::<Vec<_>>()
        );
        let p99 = series
            .metrics
            .iter()
            .find(|m| m.name == "latencyP99")
            .unwrap();
        assert!(p99.canary_quantile.iter().filter(|q| q.is_some()).count() > 100);
        assert!(series.metrics[0].e_fail.iter().all(Option::is_some));
    }

    #[tokio::test]
    async fn a_policy_the_judge_rejects_is_a_spec_problem_not_an_inconclusive_look() {
        // Nothing listens here: an invalid policy is refused before any metric is read.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let peer = PrometheusJudgePeer::new(client, PeerDefaults::default());
        let mut rollout: Rollout = crate::crd::fixtures::rollout(json!({
            "metadata": {"name": "shop", "namespace": "prod"},
            "spec": {"version": "2.0.0", "workloadRef": {"name": "shop"},
                     "steps": [{"analyze": {"duration": "1m"}}]}
        }));
        rollout.spec.analysis = Some(analysis(
            json!({"errorRate": {"tolerance": 3.0, "passTolerance": 2.0}}),
        ));
        let now = jiff::Timestamp::now();
        let window = LookWindow {
            start: now - jiff::SignedDuration::from_secs(30),
            end: now,
        };
        let result = peer
            .look(&rollout, &RolloutStatus::default(), &window)
            .await;
        let problem = result.expect_err("an invalid policy is not a look");
        assert!(
            problem
                .message
                .starts_with("spec.analysis cannot be judged")
                && problem.message.contains("passTolerance"),
            "{}",
            problem.message
        );
    }
}
