//! Webhook notifications: one POST when a rollout is promoted, rolled back or blocked.
//!
//! Whether a decision is notified is `decide`'s (`Plan::notify`); the reconcile calls
//! [`Notification::for_event`] right after its status write succeeded and hands the result to [`Notifier::notify`], which returns at once: the delivery runs in a
//! spawned task, so a slow, failing or unreachable webhook never delays or fails a rollout.
//!
//! - Payloads: [`WebhookFormat::Json`] posts the [`Notification`] itself (a stable, documented
//!   object, `kind: "tollgate.rollout"`); [`WebhookFormat::Slack`] posts a Slack
//!   incoming-webhook message (`text` plus `blocks`).
//! - Retries: connect errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
//!   (defaults: 4 attempts, waits of 1 s, 2 s, 4 s; a `Retry-After` is honoured up to a cap);
//!   any other answer (3xx, 4xx) is given up at once with a warning, since repeating the same
//!   request cannot fix a wrong URL or a refused payload. Each request has its own timeout.
//! - Bounded: at most [`NotifierConfig::max_pending`] deliveries are in flight; beyond that a
//!   notification is dropped, logged and counted (`tollgate_notifications_total{outcome="dropped"}`)
//!   instead of queueing without bound.
//! - Delivery is at most once per transition per operator process: a crash between the status
//!   write and the POST loses that notification, and nothing is persisted to resend it.
//! - The URL is a secret (a Slack webhook URL is a credential): it is never logged in full, and
//!   reqwest errors are stripped of it before they are logged.
//!
//! No new dependency: reqwest (HTTP client, already used for the broker and the pods), tokio
//! (spawn, semaphore, sleep), serde/serde_json (payloads), jiff (time) and prometheus-client were
//! all in the tree already; the tests use axum, which the admin server already uses.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::metrics::{Metrics, NotificationLabels};
use crate::crd::{GateVerdict, MetricVerdict, Phase, Rollout, RolloutStatus};
use crate::gates::broker::client::parse_retry_after;
use crate::gates::broker::RetryPolicy;

/// Default timeout of one webhook request (connect, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default attempts per notification, the first included.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// Default wait before the second attempt; doubled for each further one (1 s, 2 s, 4 s).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Default number of deliveries in flight before new notifications are dropped.
pub const DEFAULT_MAX_PENDING: usize = 64;
/// Value of the `kind` field of every JSON payload.
pub const PAYLOAD_KIND: &str = "tollgate.rollout";
/// Most failing pods listed in a payload (the counts are always complete).
pub const MAX_PODS_IN_PAYLOAD: usize = 5;
/// Longest `message` put in a payload, in characters.
const MAX_MESSAGE_CHARS: usize = 1500;
/// Most bytes of a refusing webhook's body quoted in the log.
const MAX_BODY_SNIPPET: usize = 256;

/// Shape of the body posted to the webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookFormat {
    /// The generic JSON object described in `docs/notifications.md`.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`); Mattermost and others that take
    /// Slack's format accept it too.
    Slack,
}

pub use crate::rollout::decide::NotificationEvent;

/// The generic JSON payload (`--webhook-format json`), field for field. Optional fields are
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

/// Whether `new` entered its phase in this pass: the phase differs from `previous`, or it is the
/// same but a decision entering it was added (e.g. blocked again for a new version in one pass).
fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
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
            evidence: Evidence::from_status(status),
        })
    }

    /// The body posted for `format`.
    pub fn payload(&self, format: WebhookFormat) -> Value {
        match format {
            // A struct of strings, numbers and enums: serializing it cannot fail.
            WebhookFormat::Json => serde_json::to_value(self).unwrap_or(Value::Null),
            WebhookFormat::Slack => self.slack(),
        }
    }

    /// The bytes posted for `format`. JSON keeps the field order documented above.
    pub fn body(&self, format: WebhookFormat) -> Result<Vec<u8>, serde_json::Error> {
        match format {
            WebhookFormat::Json => serde_json::to_vec(self),
            WebhookFormat::Slack => serde_json::to_vec(&self.slack()),
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

    fn emoji(&self) -> &'static str {
        match self.event {
            NotificationEvent::Promoted => ":white_check_mark:",
            NotificationEvent::RolledBack => ":rotating_light:",
            NotificationEvent::Blocked => ":no_entry:",
        }
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

    fn slack(&self) -> Value {
        let emoji = self.emoji();
        let headline = self.headline();
        let text = match self.event {
            NotificationEvent::Promoted => format!("{emoji} {headline}"),
            _ => format!("{emoji} {headline}: {}", shorten(&self.message, 300)),
        };
        let mut blocks = vec![json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!(
                "{emoji} *{}* `{}` {} in `{}`",
                slack_escape(&self.name),
                slack_escape(&self.version),
                headline_verb(self.event),
                slack_escape(&self.namespace),
            )},
        })];
        if !self.message.is_empty() {
            blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": slack_escape(&self.message)},
            }));
        }
        let evidence = self.evidence_lines();
        if !evidence.is_empty() {
            let list: Vec<String> = evidence
                .iter()
                .map(|l| format!("• {}", slack_escape(l)))
                .collect();
            blocks.push(json!({
                "type": "section",
                // Slack refuses section text over 3000 characters.
                "text": {"type": "mrkdwn", "text": shorten(&list.join("\n"), 2500)},
            }));
        }
        let mut context = format!("reason: {}", slack_escape(&self.reason));
        if let Some(stable) = self.stable_version.as_deref() {
            context.push_str(&format!(" · stable: {}", slack_escape(stable)));
        }
        context.push_str(&format!(" · {} · {}", self.kind, self.time));
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": context}],
        }));
        json!({"text": slack_escape(&text), "blocks": blocks})
    }
}

fn headline_verb(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::Promoted => "promoted",
        NotificationEvent::RolledBack => "rolled back",
        NotificationEvent::Blocked => "blocked",
    }
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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

// ---------------------------------------------------------------------------------------------
// Configuration.

/// Why a webhook URL was refused. None of the messages repeats the URL (it is a secret).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookUrlError {
    /// Nothing given.
    #[error("the webhook URL is empty (unset it to turn notifications off)")]
    Empty,
    /// Not an absolute URL.
    #[error("the webhook URL does not parse: {0}")]
    Parse(String),
    /// Not HTTP(S).
    #[error("the webhook URL must be http:// or https://, not {0}://")]
    Scheme(String),
    /// No host.
    #[error("the webhook URL has no host")]
    NoHost,
}

/// A validated webhook URL whose `Debug` and [`WebhookUrl::redacted`] forms show only the scheme
/// and host: Slack's URL is the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(reqwest::Url);

impl WebhookUrl {
    /// Parse and check an absolute http(s) URL with a host.
    pub fn parse(text: &str) -> Result<WebhookUrl, WebhookUrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(WebhookUrlError::Empty);
        }
        let url = reqwest::Url::parse(text).map_err(|e| WebhookUrlError::Parse(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookUrlError::Scheme(url.scheme().to_string()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(WebhookUrlError::NoHost);
        }
        Ok(WebhookUrl(url))
    }

    /// `scheme://host[:port]/…`: safe to log.
    pub fn redacted(&self) -> String {
        let host = self.0.host_str().unwrap_or_default();
        match self.0.port() {
            Some(port) => format!("{}://{host}:{port}/…", self.0.scheme()),
            None => format!("{}://{host}/…", self.0.scheme()),
        }
    }

    /// The full URL (do not log it).
    pub fn as_url(&self) -> &reqwest::Url {
        &self.0
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Everything the notifier is told.
#[derive(Clone, Debug)]
pub struct NotifierConfig {
    /// Where to POST.
    pub url: WebhookUrl,
    /// Body shape.
    pub format: WebhookFormat,
    /// Timeout of one request (connect, send, answer).
    pub timeout: Duration,
    /// Attempts and backoff (`max_attempts` counts the first attempt).
    pub retry: RetryPolicy,
    /// Deliveries in flight before new notifications are dropped.
    pub max_pending: usize,
}

impl NotifierConfig {
    /// The defaults: JSON, 5 s per request, 4 attempts with waits of 1 s, 2 s, 4 s, `Retry-After`
    /// honoured up to 30 s, 64 deliveries in flight.
    pub fn new(url: WebhookUrl) -> NotifierConfig {
        NotifierConfig {
            url,
            format: WebhookFormat::Json,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy {
                max_attempts: DEFAULT_ATTEMPTS,
                initial_backoff: DEFAULT_BACKOFF,
                max_backoff: Duration::from_secs(30),
                max_retry_after: Duration::from_secs(30),
            },
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

/// The notifier could not be built.
#[derive(Debug, thiserror::Error)]
#[error("webhook HTTP client: {0}")]
pub struct NotifierError(String);

// ---------------------------------------------------------------------------------------------
// Delivery.

/// What became of one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The webhook answered 2xx.
    Delivered {
        /// Requests made.
        attempts: u32,
    },
    /// The webhook answered with a status that retrying cannot fix (3xx, 4xx but 408 and 429).
    Refused {
        /// Requests made.
        attempts: u32,
        /// The status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// Every attempt failed with a retryable problem; the last one is given.
    Failed {
        /// Requests made.
        attempts: u32,
        /// The last problem.
        error: String,
    },
}

impl Delivery {
    /// Requests made.
    pub fn attempts(&self) -> u32 {
        match self {
            Delivery::Delivered { attempts }
            | Delivery::Refused { attempts, .. }
            | Delivery::Failed { attempts, .. } => *attempts,
        }
    }
}

/// Whether an answer with this status is worth repeating the request for.
pub fn is_retryable_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

/// Posts notifications in the background. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    config: NotifierConfig,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier counting into `metrics`.
    pub fn new(config: NotifierConfig, metrics: Arc<Metrics>) -> Result<Notifier, NotifierError> {
        let client = crate::http::client_builder()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            // A redirected POST turns into a GET on most servers; a webhook that moved is a
            // configuration problem to fix, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifierError(e.without_url().to_string()))?;
        let slots = Arc::new(Semaphore::new(config.max_pending.max(1)));
        Ok(Notifier {
            inner: Arc::new(Inner {
                client,
                config,
                metrics,
                slots,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NotifierConfig {
        &self.inner.config
    }

    /// Send `notification` in the background and return at once. None when it was dropped
    /// (too many deliveries pending, or no async runtime); otherwise the delivery's handle,
    /// which callers may simply drop.
    pub fn notify(&self, notification: Notification) -> Option<JoinHandle<Delivery>> {
        let event = notification.event;
        let rollout = format!("{}/{}", notification.namespace, notification.name);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(%rollout, event = event.as_str(), "no async runtime: notification dropped");
            self.inner.count(event, "dropped");
            return None;
        };
        let Ok(permit) = self.inner.slots.clone().try_acquire_owned() else {
            warn!(
                %rollout,
                event = event.as_str(),
                pending = self.inner.config.max_pending,
                "too many webhook deliveries pending: notification dropped"
            );
            self.inner.count(event, "dropped");
            return None;
        };
        let body = match notification.body(self.inner.config.format) {
            Ok(b) => b,
            Err(e) => {
                warn!(%rollout, error = %e, "notification does not serialize: dropped");
                self.inner.count(event, "dropped");
                return None;
            }
        };
        let inner = self.inner.clone();
        Some(runtime.spawn(async move {
            let delivery = inner.deliver(&rollout, body).await;
            drop(permit);
            inner.report(&rollout, event, &delivery);
            delivery
        }))
    }

    /// Wait until no delivery is in flight, at most `within`. True when idle. Used on shutdown,
    /// so a notification decided just before SIGTERM still gets its chance.
    pub async fn drain(&self, within: Duration) -> bool {
        let all = u32::try_from(self.inner.config.max_pending.max(1)).unwrap_or(u32::MAX);
        matches!(
            tokio::time::timeout(within, self.inner.slots.acquire_many(all)).await,
            Ok(Ok(_))
        )
    }
}

impl Inner {
    fn count(&self, event: NotificationEvent, outcome: &str) {
        self.metrics
            .notifications
            .get_or_create(&NotificationLabels {
                event: event.as_str().to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn report(&self, rollout: &str, event: NotificationEvent, delivery: &Delivery) {
        let webhook = self.config.url.redacted();
        let event_name = event.as_str();
        match delivery {
            Delivery::Delivered { attempts } => {
                self.count(event, "delivered");
                info!(%rollout, event = event_name, %webhook, attempts, "notification delivered");
            }
            Delivery::Refused {
                attempts,
                status,
                body,
            } => {
                self.count(event, "failed");
                warn!(
                    %rollout, event = event_name, %webhook, attempts, status, body = %body,
                    "webhook refused the notification; not retried: a {status} means the URL or \
                     the payload is wrong, and repeating the request cannot fix that"
                );
            }
            Delivery::Failed { attempts, error } => {
                self.count(event, "failed");
                warn!(
                    %rollout, event = event_name, %webhook, attempts, error = %error,
                    "notification not delivered: gave up after {attempts} attempts"
                );
            }
        }
    }

    async fn deliver(&self, rollout: &str, body: Vec<u8>) -> Delivery {
        let policy = &self.config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.metrics.notification_attempts.inc();
            let sent = self
                .client
                .post(self.config.url.as_url().clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (problem, retry_after) = match sent {
                Ok(response) if response.status().is_success() => {
                    return Delivery::Delivered { attempts };
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let snippet = body_snippet(response).await;
                    if !is_retryable_status(status) {
                        return Delivery::Refused {
                            attempts,
                            status: status.as_u16(),
                            body: snippet,
                        };
                    }
                    let problem = if snippet.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {snippet}")
                    };
                    (problem, retry_after)
                }
                Err(e) => (describe(e, self.config.timeout), None),
            };
            if attempts >= max_attempts {
                return Delivery::Failed {
                    attempts,
                    error: problem,
                };
            }
            let wait = policy.wait_before_retry(attempts, retry_after);
            debug!(
                %rollout,
                attempts,
                retry_in_ms = wait.as_millis() as u64,
                error = %problem,
                "webhook attempt failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// The start of a body, for the log (bounded by the request timeout and by size).
async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY_SNIPPET {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_BODY_SNIPPET);
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// A transport error in words, without the URL.
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        return format!("timed out after {timeout:?}");
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
