//! What a notification says: the [`Notification`] a status write entered `Succeeded`,
//! `RolledBack` or `Blocked` with, its evidence summaries, and the bytes posted for each
//! [`WebhookFormat`] (the generic JSON object here, Slack's message in [`super::slack`]).
//!
//! The JSON object is documented field by field in `docs/notifications.md`; its field order is
//! the struct's, and NaN or infinite estimates are left out rather than sent as something a
//! receiver cannot parse.

use jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;

use super::delivery::NotifierConfig;
use super::template::Templates;
use crate::crd::{GateVerdict, MetricVerdict, Phase, Rollout, RolloutStatus};
use crate::util::text::shorten;

/// Value of the `kind` field of every JSON payload.
pub const PAYLOAD_KIND: &str = "tollgate.rollout";
/// Most failing pods listed in a payload (the counts are always complete).
pub const MAX_PODS_IN_PAYLOAD: usize = 5;
/// Longest `message` put in a payload, in characters.
pub(super) const MAX_MESSAGE_CHARS: usize = 1500;

/// Shape of the body posted to the webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookFormat {
    /// The generic JSON object described in `docs/notifications.md`.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`); Mattermost and others that take
    /// Slack's format accept it too.
    Slack,
    /// A Microsoft Teams workflow webhook message: one Adaptive Card.
    Teams,
    /// A PagerDuty Events API v2 event (needs a routing key).
    Pagerduty,
}

/// What happened to the rollout; whether a decision is notified is `decide`'s (`Plan::notify`).
pub use crate::rollout::decide::NotificationEvent;

/// left out when there is nothing to say.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Always `tollgate.rollout`, so a receiver shared with other senders can route on it.
    pub kind: &'static str,
    /// `Promoted`, `RolledBack` or `Blocked`.
    pub event: NotificationEvent,
    /// Namespace of the Rollout.
    pub namespace: String,
    /// Name of the Rollout.
    pub name: String,
    /// The version the event is about: the one promoted, rolled back or blocked.
    pub version: String,
    /// The version serving as stable after the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_version: Option<String>,
    /// The phase entered (`Succeeded`, `RolledBack`, `Blocked`).
    pub phase: Phase,
    /// Machine-readable reason (`status.reason`), e.g. `Promoted`, `AnalysisFailed`, `NotDeployable`.
    pub reason: String,
    /// One human sentence (`status.message`), shortened to 1500 characters.
    pub message: String,
    /// When the decision was made (RFC 3339).
    pub time: Timestamp,
    /// The `metadata.generation` the decision was made for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The outbox's idempotency key: the same in every attempt and after a restart, so a
    /// receiver can drop duplicates (also sent as the `Idempotency-Key` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Summaries of the evidence kept in `status`.
    pub evidence: Evidence,
}

/// Evidence summaries, from `status` (each present only when that gate ran).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The contract gate's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_gate: Option<ContractEvidence>,
    /// The latest fleet check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetEvidence>,
    /// The latest smoke checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeEvidence>,
    /// The canary analysis, per metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisEvidence>,
}

/// The broker's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractEvidence {
    /// `Passed`, `Blocked` or `Pending`.
    pub verdict: GateVerdict,
    /// The broker's `deployable`: true, false, or absent for unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployable: Option<bool>,
    /// The broker's reason, or why it could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The fleet check.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetEvidence {
    /// `Passed` or `Blocked`.
    pub verdict: GateVerdict,
    /// Pods asked.
    pub pods_checked: i32,
    /// Pods that did not report what they should (all counted).
    pub pods_failing: i32,
    /// The first failing pods, at most 5.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_pods: Vec<PodEvidence>,
}

/// One failing pod.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodEvidence {
    /// Pod name.
    pub pod: String,
    /// e.g. `VersionMismatch`, `ConfigHashMismatch`, `Timeout`.
    pub problem: String,
    /// What the pod reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
    /// What was expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// The smoke checks.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeEvidence {
    /// `Passed` or `Blocked`.
    pub verdict: GateVerdict,
    /// Requests sent.
    pub requests_sent: i32,
    /// Requests that failed.
    pub requests_failed: i32,
}

/// The canary analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisEvidence {
    /// Overall verdict: `Pass`, `Fail`, `Inconclusive` or `Running`.
    pub verdict: MetricVerdict,
    /// Looks taken.
    pub looks: i32,
    /// Per-metric verdicts.
    pub metrics: Vec<MetricEvidence>,
}

/// One metric's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricEvidence {
    /// e.g. `error-rate`, `latency-p99`.
    pub name: String,
    /// `Pass`, `Fail`, `Inconclusive` or `Running`.
    pub verdict: MetricVerdict,
    /// Point estimate (canary/baseline ratio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<f64>,
    /// Lower confidence bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// Upper confidence bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Why, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Notification {
    /// The notification of `event` (which `decide` put in its plan) for a rollout whose status
    /// (`rollout.status`, as stored) was just written; None without a status. `at` is the time
    /// of the decision.
    pub fn for_event(
        rollout: &Rollout,
        event: NotificationEvent,
        at: Timestamp,
    ) -> Option<Notification> {
        let status = rollout.status.as_ref()?;
        let spec_version = rollout.spec.version.clone();
        let version = match event {
            NotificationEvent::Promoted => status.stable_version.clone(),
            NotificationEvent::RolledBack | NotificationEvent::Blocked => {
                status.rejected_version.clone()
            }
            NotificationEvent::StepStarted | NotificationEvent::Paused => {
                status.canary_version.clone()
            }
        }
        .unwrap_or(spec_version);
        Some(Notification {
            kind: PAYLOAD_KIND,
            event,
            namespace: rollout.namespace().unwrap_or_default(),
            name: rollout.name_any(),
            version,
            stable_version: status.stable_version.clone(),
            phase: status.phase,
            reason: status
                .reason
                .clone()
                .unwrap_or_else(|| event.as_str().to_string()),
            message: shorten(
                status.message.as_deref().unwrap_or_default(),
                MAX_MESSAGE_CHARS,
            ),
            time: at,
            generation: status.observed_generation,
            idempotency_key: None,
            evidence: Evidence::from_status(status),
        })
    }

    /// The body posted for `format`, with the default texts (and no PagerDuty routing key).
    pub fn payload(&self, format: WebhookFormat) -> Value {
        self.payload_with(format, &Templates::default(), "")
    }

    /// The body posted for `format` with `templates`' texts; `routing_key` is PagerDuty's.
    pub fn payload_with(
        &self,
        format: WebhookFormat,
        templates: &Templates,
        routing_key: &str,
    ) -> Value {
        match format {
            // A struct of strings, numbers and enums: serializing it cannot fail.
            WebhookFormat::Json => serde_json::to_value(self).unwrap_or(Value::Null),
            WebhookFormat::Slack => self.slack_with(templates),
            WebhookFormat::Teams => self.teams(templates),
            WebhookFormat::Pagerduty => self.pagerduty(templates, routing_key),
        }
    }

    /// The bytes posted for `format`. JSON keeps the field order documented above.
    pub fn body(&self, format: WebhookFormat) -> Result<Vec<u8>, serde_json::Error> {
        match format {
            WebhookFormat::Json => serde_json::to_vec(self),
            other => serde_json::to_vec(&self.payload(other)),
        }
    }

    /// The bytes posted to `destination` (its format, templates and routing key).
    pub fn body_for(&self, destination: &NotifierConfig) -> Result<Vec<u8>, serde_json::Error> {
        match destination.format {
            WebhookFormat::Json => serde_json::to_vec(self),
            other => serde_json::to_vec(&self.payload_with(
                other,
                &destination.templates,
                destination.routing_key.as_ref().map_or("", |k| k.expose()),
            )),
        }
    }

    /// One line for people: "checkout 2.4.0 promoted in shop".
    pub fn headline(&self) -> String {
        format!(
            "{} {} {} in {}",
            self.name,
            self.version,
            headline_verb(self.event),
            self.namespace
        )
    }

    /// Evidence worth a line in a chat message: what said no (or, on promotion, each metric).
    pub fn evidence_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let e = &self.evidence;
        if let Some(c) = e.contract_gate.as_ref() {
            let reason = c.reason.as_deref().unwrap_or("no reason given");
            if c.verdict == GateVerdict::Blocked && !self.message.contains(reason) {
                lines.push(format!("contract gate: {reason}"));
            }
        }
        if let Some(f) = e.fleet.as_ref() {
            if f.verdict == GateVerdict::Blocked {
                let pods: Vec<String> = f
                    .failing_pods
                    .iter()
                    .map(|p| format!("{} ({})", p.pod, p.problem))
                    .collect();
                lines.push(format!(
                    "fleet check: {} of {} pods failing: {}",
                    f.pods_failing,
                    f.pods_checked,
                    pods.join(", ")
                ));
            }
        }
        if let Some(s) = e.smoke.as_ref() {
            if s.verdict == GateVerdict::Blocked {
                lines.push(format!(
                    "smoke checks: {} of {} requests failed",
                    s.requests_failed, s.requests_sent
                ));
            }
        }
        if let Some(a) = e.analysis.as_ref() {
            let promoted = self.event == NotificationEvent::Promoted;
            for m in a
                .metrics
                .iter()
                .filter(|m| promoted || m.verdict != MetricVerdict::Pass)
            {
                let mut line = format!("{}: {:?}", m.name, m.verdict);
                if let Some(est) = m.estimate {
                    line.push_str(&format!(", estimate {est:.3}"));
                    if let (Some(lo), Some(hi)) = (m.lower, m.upper) {
                        line.push_str(&format!(" [{lo:.3}, {hi:.3}]"));
                    }
                }
                if let Some(reason) = m.reason.as_deref() {
                    // Said already when the message quotes it (as a rollback's does).
                    if !self.message.contains(reason) {
                        line.push_str(&format!(" ({reason})"));
                    }
                }
                lines.push(line);
            }
        }
        lines
    }
}

/// The verb of a headline: "promoted", "rolled back", "blocked".
pub(super) fn headline_verb(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::Promoted => "promoted",
        NotificationEvent::RolledBack => "rolled back",
        NotificationEvent::Blocked => "blocked",
        NotificationEvent::StepStarted => "started a step",
        NotificationEvent::Paused => "paused",
    }
}

impl Evidence {
    /// The summaries of what `status` holds.
    pub fn from_status(status: &RolloutStatus) -> Evidence {
        Evidence {
            contract_gate: status.contract_gate.as_ref().map(|c| ContractEvidence {
                verdict: c.verdict,
                deployable: c.deployable,
                reason: c.reason.clone(),
            }),
            fleet: status.fleet.as_ref().map(|f| FleetEvidence {
                verdict: f.verdict,
                pods_checked: f.pods_checked,
                pods_failing: f.pods_failing,
                failing_pods: f
                    .failing_pods
                    .iter()
                    .take(MAX_PODS_IN_PAYLOAD)
                    .map(|p| PodEvidence {
                        pod: p.pod.clone(),
                        problem: p.problem.clone(),
                        reported: p.reported.clone(),
                        expected: p.expected.clone(),
                    })
                    .collect(),
            }),
            smoke: status.smoke.as_ref().map(|s| SmokeEvidence {
                verdict: s.verdict,
                requests_sent: s.requests_sent,
                requests_failed: s.requests_failed,
            }),
            analysis: status.analysis.as_ref().map(|a| AnalysisEvidence {
                verdict: a.verdict,
                looks: a.looks,
                metrics: a
                    .metrics
                    .iter()
                    .map(|m| MetricEvidence {
                        name: m.name.clone(),
                        verdict: m.verdict,
                        estimate: m.estimate.filter(|v| v.is_finite()),
                        lower: m.lower.filter(|v| v.is_finite()),
                        upper: m.upper.filter(|v| v.is_finite()),
                        reason: m.reason.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The JSON payload (which transitions notify is `decide`'s). Deliveries against real HTTP servers are in
    //! `tests/notifications.rs`.

    use std::collections::BTreeSet;

    use super::super::fixtures::*;
    use super::*;
    use crate::crd::{FleetStatus, PodFinding};

    #[test]
    fn the_version_is_the_one_blocked_rolled_back_or_promoted() {
        // Blocked for 2.4.0, then spec.version moved to 2.5.0 and it was blocked again: the
        // notification names 2.5.0.
        let mut again = blocked();
        again.rejected_version = Some("2.5.0".into());
        let n = notification(again, at(200)).unwrap();
        assert_eq!(
            (n.event, n.version.as_str()),
            (NotificationEvent::Blocked, "2.5.0")
        );
        let n = notification(promoted(), at(90)).unwrap();
        assert_eq!(
            (n.event, n.version.as_str()),
            (NotificationEvent::Promoted, "2.4.0")
        );
        assert!(notification(analyzing(), at(10)).is_none());
    }

    #[test]
    fn json_payload_has_the_documented_fields() {
        let n = notification(rolled_back(), at(70)).unwrap();
        let v = n.payload(WebhookFormat::Json);
        let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "kind",
                "event",
                "namespace",
                "name",
                "version",
                "stableVersion",
                "phase",
                "reason",
                "message",
                "time",
                "generation",
                "evidence"
            ])
        );
        assert_eq!(v["kind"], "tollgate.rollout");
        assert_eq!(v["event"], "RolledBack");
        assert_eq!(v["namespace"], "shop");
        assert_eq!(v["name"], "checkout");
        assert_eq!(v["version"], "2.4.0");
        assert_eq!(v["stableVersion"], "2.3.0");
        assert_eq!(v["phase"], "RolledBack");
        assert_eq!(v["reason"], "AnalysisFailed");
        assert!(v["message"]
            .as_str()
            .unwrap()
            .starts_with("rolled back to 2.3.0: canary 2.4.0 regressed"));
        assert_eq!(v["time"], at(70).to_string());
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v["generation"], 3);
        let analysis = &v["evidence"]["analysis"];
        assert_eq!(analysis["verdict"], "Fail");
        assert_eq!(analysis["looks"], 7);
        assert_eq!(analysis["metrics"][0]["name"], "error-rate");
        assert_eq!(analysis["metrics"][0]["verdict"], "Fail");
        assert_eq!(analysis["metrics"][0]["estimate"], 3.1);
        assert_eq!(analysis["metrics"][0]["lower"], 2.2);
        // NaN is left out rather than sent as something a receiver cannot parse.
        assert!(analysis["metrics"][1].get("estimate").is_none());
        // The judge's running state is not evidence and stays out.
        assert!(!v.to_string().contains("big"), "{v}");
        assert!(v["evidence"].get("contractGate").is_none());
        // The bytes posted are that object, in the documented field order.
        let body = String::from_utf8(n.body(WebhookFormat::Json).unwrap()).unwrap();
        assert!(
            body.starts_with(
                r#"{"kind":"tollgate.rollout","event":"RolledBack","namespace":"shop","name":"checkout","version":"2.4.0","stableVersion":"2.3.0","phase":"RolledBack","reason":"AnalysisFailed","#
            ),
            "{body}"
        );
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), v);
        let slack = n.body(WebhookFormat::Slack).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&slack).unwrap(),
            n.payload(WebhookFormat::Slack)
        );
    }

    #[test]
    fn blocked_and_promoted_payloads_name_the_right_versions_and_evidence() {
        let n = notification(blocked(), at(10)).unwrap();
        let v = n.payload(WebhookFormat::Json);
        assert_eq!(v["event"], "Blocked");
        assert_eq!(v["version"], "2.4.0");
        assert_eq!(v["stableVersion"], "2.3.0");
        assert_eq!(v["evidence"]["contractGate"]["verdict"], "Blocked");
        assert_eq!(v["evidence"]["contractGate"]["deployable"], false);
        assert_eq!(
            v["evidence"]["contractGate"]["reason"],
            "payments 1.2 fails"
        );

        let n = notification(promoted(), at(90)).unwrap();
        let v = n.payload(WebhookFormat::Json);
        assert_eq!(
            (v["event"].as_str(), v["version"].as_str()),
            (Some("Promoted"), Some("2.4.0"))
        );
        assert_eq!(v["phase"], "Succeeded");
        assert!(v.get("generation").is_none());
    }

    #[test]
    fn fleet_evidence_is_capped_but_counted() {
        let mut s = blocked();
        s.contract_gate = None;
        s.reason = Some("FleetCheckFailed".into());
        s.fleet = Some(FleetStatus {
            verdict: GateVerdict::Blocked,
            pods_checked: 30,
            pods_failing: 12,
            failing_pods: (0..12)
                .map(|i| PodFinding {
                    pod: format!("checkout-canary-{i}"),
                    problem: "VersionMismatch".into(),
                    reported: Some("2.3.0".into()),
                    expected: Some("2.4.0".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let n = notification(s, at(10)).unwrap();
        let v = n.payload(WebhookFormat::Json);
        assert_eq!(v["evidence"]["fleet"]["podsFailing"], 12);
        assert_eq!(
            v["evidence"]["fleet"]["failingPods"]
                .as_array()
                .unwrap()
                .len(),
            MAX_PODS_IN_PAYLOAD
        );
        let lines = n.evidence_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with(
            "fleet check: 12 of 30 pods failing: checkout-canary-0 (VersionMismatch)"
        ));
    }
}
