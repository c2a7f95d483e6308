//! The real peers behind [`ContractPeer`] and [`AnalysisPeer`]: the Pact Broker client and the
//! Prometheus provider feeding the judge. Each maps the Rollout's spec onto its gate's own
//! configuration (the gates know nothing of the CRD) and turns every failure into an answer, so
//! the pipeline fails closed by construction.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::decide::{AnalysisLook, ContractAnswer, LookWindow, RecordOutcome};
use super::reconcile::{AnalysisPeer, ContractPeer, PeerFuture};
use crate::analysis::judge::{self, JudgeState, Policy};
use crate::analysis::providers::prometheus::{PrometheusConfig, PrometheusProvider};
use crate::analysis::providers::{AnalysisTarget, ArmWindow, MetricsProvider, Window};
use crate::analysis::stats::latency::Histogram;
use crate::crd::{self, ContractSummary, MetricStatus, MetricVerdict, Rollout, RolloutStatus};
use crate::gates::broker::{
    self, AnswerKind, BrokerApi, BrokerConfig, CanIDeployRequest, DeploymentRecord, HttpBroker,
    Ignore, RetryPolicy,
};
use crate::util::credentials;

/// Reads a Secret's data in the Rollout's namespace.
async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, ByteString>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(secret)) => Ok(secret.data.unwrap_or_default()),
        Ok(None) => Err(format!("Secret {namespace}/{name} not found")),
        Err(e) => Err(format!("cannot read Secret {namespace}/{name}: {e}")),
    }
}

/// Addresses used when a Rollout names none: the operator's `--broker-url` and
/// `--prometheus-url` (chart values `broker.url` and `prometheus.url`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerDefaults {
    pub broker_url: Option<String>,
    pub prometheus_url: Option<String>,
}

impl PeerDefaults {
    /// The broker URL for `gate`: its own, else the default.
    pub fn broker_url(&self, gate: &crd::ContractGate) -> Option<String> {
        gate.broker_url.clone().or_else(|| self.broker_url.clone())
    }

    /// The Prometheus address for `analysis`: its own, else the default.
    pub fn prometheus_url(&self, analysis: &crd::Analysis) -> Option<String> {
        analysis
            .provider
            .prometheus
            .address
            .clone()
            .or_else(|| self.prometheus_url.clone())
    }

    /// Why the rollout cannot be run with these defaults (a gate without an address), if so.
    /// A permanent error: the rollout waits for a change, with `InvalidSpec` in its status.
    pub fn missing_address(&self, spec: &crd::RolloutSpec) -> Option<String> {
        if let Some(gate) = &spec.contract_gate {
            if self.broker_url(gate).is_none() {
                return Some(
                    "spec.contractGate.brokerUrl is not set and the operator has no default \
                     (--broker-url, chart value broker.url)"
                        .into(),
                );
            }
        }
        if let Some(analysis) = &spec.analysis {
            if self.prometheus_url(analysis).is_none() {
                return Some(
                    "spec.analysis.provider.prometheus.address is not set and the operator has \
                     no default (--prometheus-url, chart value prometheus.url)"
                        .into(),
                );
            }
        }
        None
    }
}

/// The Pact Broker.
pub struct BrokerPeer {
    client: Client,
    retry: RetryPolicy,
    defaults: PeerDefaults,
}

impl BrokerPeer {
    /// A broker peer reading credential Secrets through `client`.
    pub fn new(client: Client) -> Self {
        BrokerPeer {
            client,
            defaults: PeerDefaults::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// The broker client for a rollout, or the answer that says why there is none.
    async fn broker(
        &self,
        rollout: &Rollout,
    ) -> Result<(HttpBroker, crd::ContractGate), ContractAnswer> {
        let Some(gate) = rollout.spec.contract_gate.clone() else {
            return Err(ContractAnswer::Refused {
                reason: "spec.contractGate is not set".into(),
            });
        };
        let credentials = match &gate.credentials_secret_ref {
            None => None,
            Some(secret) => {
                let namespace = rollout.namespace().unwrap_or_default();
                // A Secret that is missing may be created in a moment: wait within the budget.
                let data = secret_data(&self.client, &namespace, &secret.name)
                    .await
                    .map_err(|reason| ContractAnswer::Unreachable { reason })?;
                Some(
                    credentials::from_secret_data(&data).map_err(|e| ContractAnswer::Refused {
                        reason: format!("Secret {}: {e}", secret.name),
                    })?,
                )
            }
        };
        let Some(url) = self.defaults.broker_url(&gate) else {
            return Err(ContractAnswer::Refused {
                reason: self
                    .defaults
                    .missing_address(&rollout.spec)
                    .unwrap_or_default(),
            });
        };
        let config = BrokerConfig::new(&url, credentials).map_err(|e| ContractAnswer::Refused {
            reason: format!("spec.contractGate: {e}"),
        })?;
        let client = HttpBroker::new(config).map_err(|e| ContractAnswer::Refused {
            reason: format!("spec.contractGate: {e}"),
        })?;
        Ok((client, gate))
    }
}

/// The broker's classified answer as `decide` takes it.
pub fn contract_answer(classified: broker::ClassifiedAnswer) -> ContractAnswer {
    let summary = classified.counts.map(|c| ContractSummary {
        success: i64::try_from(c.success).unwrap_or(i64::MAX),
        failed: i64::try_from(c.failed).unwrap_or(i64::MAX),
        unknown: i64::try_from(c.unknown).unwrap_or(i64::MAX),
    });
    let reason = classified.reason;
    match classified.kind {
        AnswerKind::Deployable => ContractAnswer::Deployable { reason, summary },
        AnswerKind::NotDeployable => ContractAnswer::NotDeployable { reason, summary },
        AnswerKind::Unknown => ContractAnswer::Unknown { reason, summary },
        AnswerKind::Unreachable => ContractAnswer::Unreachable { reason },
        AnswerKind::Refused => ContractAnswer::Refused { reason },
    }
}

impl ContractPeer for BrokerPeer {
    fn ask<'a>(&'a self, rollout: &'a Rollout) -> PeerFuture<'a, ContractAnswer> {
        Box::pin(async move {
            let (client, gate) = match self.broker(rollout).await {
                Ok(x) => x,
                Err(answer) => return answer,
            };
            let request = CanIDeployRequest {
                pacticipant: gate.pacticipant.clone(),
                version: rollout.spec.version.clone(),
                environment: gate.environment.clone(),
                ignore: gate
                    .ignore
                    .iter()
                    .map(|i| Ignore {
                        pacticipant: i.pacticipant.clone(),
                        version: i.version.clone(),
                    })
                    .collect(),
            };
            let outcome =
                broker::ask_with_retries(&client, &request, &self.retry, tokio::time::sleep).await;
            contract_answer(broker::classify(&outcome))
        })
    }

    fn record<'a>(
        &'a self,
        rollout: &'a Rollout,
        version: &'a str,
    ) -> PeerFuture<'a, RecordOutcome> {
        Box::pin(async move {
            let (client, gate) = match self.broker(rollout).await {
                Ok(x) => x,
                Err(answer) => {
                    let reason = match answer {
                        ContractAnswer::Refused { reason }
                        | ContractAnswer::Unreachable { reason } => reason,
                        other => format!("{other:?}"),
                    };
                    return RecordOutcome::Failed { reason };
                }
            };
            let record = DeploymentRecord {
                pacticipant: gate.pacticipant.clone(),
                version: version.to_string(),
                environment: gate.environment.clone(),
                application_instance: gate.application_instance.clone(),
            };
            match client.record_deployment(&record).await {
                Ok(_) => RecordOutcome::Recorded,
                Err(e) => RecordOutcome::Failed {
                    reason: e.to_string(),
                },
            }
        })
    }
}

/// The judge's policy for a Rollout's analysis settings.
pub fn judge_policy(analysis: &crd::Analysis) -> Policy {
    let defaults = Policy::default();
    Policy {
        alpha: analysis.alpha,
        alpha_pass: analysis.alpha_pass,
        error_rate: analysis
            .error_rate
            .as_ref()
            .map(|e| judge::ErrorRatePolicy {
                tolerance: e.tolerance,
                pass_tolerance: e.pass_tolerance,
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
        min_canary_requests: analysis.min_requests as f64,
        ..defaults
    }
}

/// The provider's settings for a Rollout's analysis, reading Prometheus at `address`.
pub fn prometheus_config(analysis: &crd::Analysis, address: String) -> PrometheusConfig {
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
pub fn metric_status(m: &judge::MetricVerdict) -> MetricStatus {
    MetricStatus {
        name: m.metric.clone(),
        verdict: match m.verdict {
            judge::Verdict::Pass => MetricVerdict::Pass,
            judge::Verdict::Fail => MetricVerdict::Fail,
            judge::Verdict::Inconclusive => MetricVerdict::Running,
        },
        test: Some(m.test.clone()),
        estimate: m.estimate.filter(|x| x.is_finite()),
        lower: m.lower.filter(|x| x.is_finite()),
        upper: m.upper.filter(|x| x.is_finite()),
        e_value: m.e_value.filter(|x| x.is_finite()),
        canary_samples: m.samples.canary_requests.round() as i64,
        baseline_samples: m.samples.baseline_requests.round() as i64,
        reason: Some(m.reason.clone()),
    }
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
    /// A peer reading credential Secrets through `client`.
    pub fn new(client: Client) -> Self {
        PrometheusJudgePeer {
            client,
            defaults: PeerDefaults::default(),
        }
    }

    /// The provider for a Rollout's analysis and the arms it compares.
    async fn provider(
        &self,
        rollout: &Rollout,
        analysis: &crd::Analysis,
    ) -> Result<(PrometheusProvider, AnalysisTarget), String> {
        let namespace = rollout.namespace().unwrap_or_default();
        let auth = match &analysis.provider.prometheus.credentials_secret_ref {
            None => None,
            Some(secret) => {
                let data = secret_data(&self.client, &namespace, &secret.name).await?;
                Some(
                    credentials::from_secret_data(&data)
                        .map_err(|e| format!("Secret {}: {e}", secret.name))?,
                )
            }
        };
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
) -> Result<Vec<judge::ArmWindow>, String> {
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

fn arm(arm: &ArmWindow, errors: bool, latency: bool) -> judge::ArmWindow {
    judge::ArmWindow {
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
    AnalysisLook {
        window_end: window.end,
        verdict: MetricVerdict::Inconclusive,
        metrics: Vec::new(),
        judge_state: None,
        data_missing: true,
        summary,
    }
}

impl AnalysisPeer for PrometheusJudgePeer {
    fn look<'a>(
        &'a self,
        rollout: &'a Rollout,
        status: &'a RolloutStatus,
        window: &'a LookWindow,
    ) -> PeerFuture<'a, AnalysisLook> {
        Box::pin(async move {
            let Some(analysis) = rollout.spec.analysis.as_ref() else {
                return missing(window, "spec.analysis is not set".into());
            };
            let read = async {
                let (provider, target) = self.provider(rollout, analysis).await?;
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
                Err(e) => return missing(window, format!("metrics unavailable: {e}")),
            };
            let (Some(canary), Some(baseline)) = (&counts.canary, &counts.baseline) else {
                let which = match (&counts.canary, &counts.baseline) {
                    (None, None) => "either arm",
                    (None, _) => "the canary",
                    _ => "the baseline",
                };
                return missing(
                    window,
                    format!("no traffic data for {which} in this window"),
                );
            };
            let errors = analysis.error_rate.is_some();
            let latency = analysis.latency.is_some();
            let total = canary.requests + baseline.requests;
            let judge_window = judge::Window {
                baseline: arm(baseline, errors, latency),
                canary: arm(canary, errors, latency),
                canary_share: (total > 0.0).then(|| canary.requests / total),
            };
            let mut state: JudgeState = status
                .analysis
                .as_ref()
                .and_then(|a| a.judge_state.clone())
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default();
            let policy = judge_policy(analysis);
            let mut history_note = None;
            if state.looks == 0 && errors {
                // Once per analysis, before its first window; the judge keeps what it
                // learned in its state, so a restart does not read it again. A failed read
                // leaves the judge on the analysis's own windows, as it was before history
                // existed, and the look's summary says so.
                match stable_history(&provider, &target, &provider_window).await {
                    Ok(history) => {
                        if let Ok((primed, _)) = judge::prime_history(&state, &policy, &history) {
                            state = primed;
                        }
                    }
                    Err(e) => {
                        history_note = Some(format!(
                        "; baseline history unavailable ({e}), dispersion from this analysis only"
                    ))
                    }
                }
            }
            match judge::update(&state, &policy, &judge_window) {
                Ok((next, judgement)) => AnalysisLook {
                    window_end: window.end,
                    verdict: match judgement.verdict {
                        judge::Verdict::Pass => MetricVerdict::Pass,
                        judge::Verdict::Fail => MetricVerdict::Fail,
                        judge::Verdict::Inconclusive => MetricVerdict::Running,
                    },
                    metrics: judgement.metrics.iter().map(metric_status).collect(),
                    judge_state: serde_json::to_value(&next).ok(),
                    data_missing: false,
                    summary: judgement.reason + history_note.as_deref().unwrap_or(""),
                },
                Err(e) => missing(window, format!("spec.analysis cannot be judged: {e}")),
            }
        })
    }
}

/// The production peers, with the operator's default addresses.
pub fn production(
    client: Client,
    defaults: PeerDefaults,
) -> (Arc<dyn ContractPeer>, Arc<dyn AnalysisPeer>) {
    let mut broker = BrokerPeer::new(client.clone());
    broker.defaults = defaults.clone();
    let mut prometheus = PrometheusJudgePeer::new(client);
    prometheus.defaults = defaults;
    (Arc::new(broker), Arc::new(prometheus))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn analysis(extra: serde_json::Value) -> crd::Analysis {
        let mut base = json!({"provider": {"prometheus": {"address": "http://p:9090", "timeout": "3s"}},
                              "errorRate": {"tolerance": 1.1, "passTolerance": 2.0, "critical": false,
                                            "requestsMetric": "reqs", "codeLabel": "status"}});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_rollouts_own_address_wins_over_the_default_and_neither_is_refused() {
        let mut spec: crd::RolloutSpec = serde_json::from_value(json!({
            "version": "1.0.0", "selector": {"matchLabels": {"app": "a"}},
            "template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}},
            "contractGate": {"pacticipant": "a", "environment": "production"},
            "steps": [{"setWeight": 50}],
            "analysis": {"errorRate": {}}
        }))
        .unwrap();
        let none = PeerDefaults::default();
        let problem = none.missing_address(&spec).expect("no broker anywhere");
        assert!(
            problem.contains("brokerUrl") && problem.contains("--broker-url"),
            "{problem}"
        );
        let defaults = PeerDefaults {
            broker_url: Some("http://broker.default".into()),
            prometheus_url: Some("http://prom.default".into()),
        };
        assert_eq!(defaults.missing_address(&spec), None);
        let gate = spec.contract_gate.clone().unwrap();
        let analysis = spec.analysis.clone().unwrap();
        assert_eq!(
            defaults.broker_url(&gate).as_deref(),
            Some("http://broker.default")
        );
        assert_eq!(
            defaults.prometheus_url(&analysis).as_deref(),
            Some("http://prom.default")
        );
        spec.contract_gate.as_mut().unwrap().broker_url = Some("http://own".into());
        let only_broker = PeerDefaults {
            broker_url: None,
            prometheus_url: None,
        };
        let problem = only_broker
            .missing_address(&spec)
            .expect("no Prometheus anywhere");
        assert!(problem.contains("prometheus.address"), "{problem}");
        spec.analysis.as_mut().unwrap().provider.prometheus.address = Some("http://own-p".into());
        assert_eq!(only_broker.missing_address(&spec), None);
        assert_eq!(
            defaults
                .prometheus_url(spec.analysis.as_ref().unwrap())
                .as_deref(),
            Some("http://own-p")
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
    fn broker_answers_map_one_to_one() {
        let c = |kind| broker::ClassifiedAnswer {
            kind,
            reason: "r".into(),
            counts: None,
            error: None,
        };
        assert!(matches!(
            contract_answer(c(AnswerKind::Deployable)),
            ContractAnswer::Deployable { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::NotDeployable)),
            ContractAnswer::NotDeployable { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::Unknown)),
            ContractAnswer::Unknown { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::Unreachable)),
            ContractAnswer::Unreachable { .. }
        ));
        assert!(matches!(
            contract_answer(c(AnswerKind::Refused)),
            ContractAnswer::Refused { .. }
        ));
    }

    #[test]
    fn a_judged_look_keeps_its_evidence() {
        let a = analysis(json!({"errorRate": {"critical": true}}));
        let policy = judge_policy(&a);
        let window = judge::Window {
            baseline: judge::ArmWindow {
                requests: Some(1000.0),
                errors: Some(10.0),
                latency: None,
            },
            canary: judge::ArmWindow {
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
        assert_eq!(judgement.verdict, judge::Verdict::Fail, "{judgement:?}");
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
        assert_eq!(verdict, Some(judge::Verdict::Inconclusive));
    }
}
