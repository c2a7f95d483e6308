//! Delivering a notification: the webhook URL (a secret), the notifier's configuration, and the
//! background POST with its retries.
//!
//! - [`Notifier::notify`] returns at once; the delivery runs in a spawned task, so a slow,
//!   failing or unreachable webhook never delays or fails a rollout.
//! - Retries follow [`RetryPolicy::WEBHOOK`] (4 attempts, jittered waits of about 1 s, 2 s, 4 s;
//!   a `Retry-After` honoured up to 30 s) for connect errors, timeouts, 408, 429 and 5xx; any other
//!   answer (3xx, 4xx) is given up at once with a warning, since repeating the request cannot fix
//!   a wrong URL or a refused payload. Each request has its own timeout.
//! - Bounded: at most [`NotifierConfig::max_pending`] deliveries are in flight; beyond that a
//!   notification is dropped, logged and counted (`tollgate_notifications_total{outcome="dropped"}`)
//!   instead of queueing without bound.
//! - The URL is never logged in full, and reqwest errors are stripped of it before they are logged.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::payload::{Notification, NotificationEvent, WebhookFormat};
use crate::runtime::metrics::{Metrics, NotificationLabels};
use crate::util::retry::{self, parse_retry_after, RetryPolicy, Transient};

/// Default timeout of one webhook request (connect, send, answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default attempts per notification, the first included.
pub const DEFAULT_ATTEMPTS: u32 = RetryPolicy::WEBHOOK.max_attempts;
/// Default number of deliveries in flight before new notifications are dropped.
pub const DEFAULT_MAX_PENDING: usize = 64;
/// Most bytes of a refusing webhook's body quoted in the log.
const MAX_BODY_SNIPPET: usize = 256;

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
    /// Notified for Rollouts that name no destination (annotation absent).
    pub default_destination: bool,
    /// The events sent here.
    pub events: Vec<NotificationEvent>,
    /// Namespaces whose Rollouts may be notified here (empty: every namespace).
    pub namespaces: Vec<String>,
    /// The title and text templates.
    pub templates: super::template::Templates,
    /// PagerDuty's routing key (the `pagerduty` format needs one).
    pub routing_key: Option<crate::util::secret::Secret>,
}

impl NotifierConfig {
    /// The defaults: JSON, 5 s per request, [`RetryPolicy::WEBHOOK`], 64 deliveries in flight.
    pub fn new(url: WebhookUrl) -> NotifierConfig {
        NotifierConfig {
            url,
            format: WebhookFormat::Json,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::WEBHOOK,
            max_pending: DEFAULT_MAX_PENDING,
            default_destination: true,
            events: super::destinations::OUTCOME_EVENTS.to_vec(),
            namespaces: Vec::new(),
            templates: Default::default(),
            routing_key: None,
        }
    }
}

/// The notifier could not be built.
#[derive(Debug, thiserror::Error)]
#[error("webhook HTTP client: {0}")]
pub struct NotifierError(String);

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

pub(super) struct Inner {
    client: reqwest::Client,
    config: NotifierConfig,
    /// Every named destination (`default` is `config`, when the single webhook is set).
    pub(super) destinations: BTreeMap<String, NotifierConfig>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) slots: Arc<Semaphore>,
    /// Outbox entries (idempotency key, destination) being sent by this process, so a reconcile
    /// that comes while one is in flight does not send it twice.
    pub(super) in_flight: Mutex<super::outbox::LocalState>,
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
        let destinations = BTreeMap::from([(super::DEFAULT_DESTINATION.to_string(), config)]);
        Notifier::with_destinations(destinations, metrics)
    }

    /// A notifier for named destinations (none is an error: build no notifier instead). The
    /// one named `default` (or else the first) is the one [`Notifier::notify`] posts to.
    pub fn with_destinations(
        destinations: BTreeMap<String, NotifierConfig>,
        metrics: Arc<Metrics>,
    ) -> Result<Notifier, NotifierError> {
        let config = destinations
            .get(super::DEFAULT_DESTINATION)
            .or_else(|| destinations.values().next())
            .cloned()
            .ok_or_else(|| NotifierError("no destination configured".into()))?;
        let longest = destinations
            .values()
            .map(|d| d.timeout)
            .max()
            .unwrap_or(DEFAULT_TIMEOUT);
        let client = crate::util::http::client_builder()
            .connect_timeout(longest)
            .timeout(longest)
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
                destinations,
                metrics,
                slots,
                in_flight: Mutex::new(Default::default()),
            }),
        })
    }

    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// The names of the configured destinations.
    pub fn destination_names(&self) -> Vec<String> {
        self.inner.destinations.keys().cloned().collect()
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
        let body = match notification.body_for(&self.inner.config) {
            Ok(b) => b,
            Err(e) => {
                warn!(%rollout, error = %e, "notification does not serialize: dropped");
                self.inner.count(event, "dropped");
                return None;
            }
        };
        let inner = self.inner.clone();
        Some(runtime.spawn(async move {
            let delivery = inner.deliver(&inner.config, &rollout, body, None).await;
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
        self.count_named(event.as_str(), outcome);
    }

    pub(super) fn count_named(&self, event: &str, outcome: &str) {
        self.metrics
            .notifications
            .get_or_create(&NotificationLabels {
                event: event.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn report(&self, rollout: &str, event: NotificationEvent, delivery: &Delivery) {
        self.report_to(&self.config, rollout, event.as_str(), delivery);
    }

    pub(super) fn report_to(
        &self,
        destination: &NotifierConfig,
        rollout: &str,
        event_name: &str,
        delivery: &Delivery,
    ) {
        let webhook = destination.url.redacted();
        match delivery {
            Delivery::Delivered { attempts } => {
                self.count_named(event_name, "delivered");
                info!(%rollout, event = event_name, %webhook, attempts, "notification delivered");
            }
            Delivery::Refused {
                attempts,
                status,
                body,
            } => {
                self.count_named(event_name, "failed");
                warn!(
                    %rollout, event = event_name, %webhook, attempts, status, body = %body,
                    "webhook refused the notification; not retried: a {status} means the URL or \
                     the payload is wrong, and repeating the request cannot fix that"
                );
            }
            Delivery::Failed { attempts, error } => {
                self.count_named(event_name, "failed");
                warn!(
                    %rollout, event = event_name, %webhook, attempts, error = %error,
                    "notification not delivered: gave up after {attempts} attempts"
                );
            }
        }
    }

    /// POST `body` to `destination` with its retries; `key` goes in the `Idempotency-Key`
    /// header.
    pub(super) async fn deliver(
        &self,
        destination: &NotifierConfig,
        rollout: &str,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> Delivery {
        let finished = retry::run(
            &destination.retry,
            tokio::time::sleep,
            || self.attempt(destination, &body, key),
            |problem, attempts, wait| {
                debug!(
                    %rollout,
                    attempts,
                    retry_in_ms = wait.as_millis() as u64,
                    error = %problem,
                    "webhook attempt failed; retrying"
                );
            },
        )
        .await;
        let attempts = finished.attempts;
        match finished.result {
            Ok(Answer::Delivered) => Delivery::Delivered { attempts },
            Ok(Answer::Refused { status, body }) => Delivery::Refused {
                attempts,
                status,
                body,
            },
            Err(error) => Delivery::Failed { attempts, error },
        }
    }

    /// One POST: delivered, refused for good, or a problem worth another attempt.
    async fn attempt(
        &self,
        destination: &NotifierConfig,
        body: &[u8],
        key: Option<&str>,
    ) -> Result<Answer, Transient<String>> {
        self.metrics.notification_attempts.inc();
        let mut request = self
            .client
            .post(destination.url.as_url().clone())
            .timeout(destination.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let sent = request.body(body.to_vec()).send().await;
        let response = match sent {
            Ok(response) if response.status().is_success() => return Ok(Answer::Delivered),
            Ok(response) => response,
            Err(e) => return Err(Transient::new(describe(e, destination.timeout))),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let snippet = body_snippet(response).await;
        if !is_retryable_status(status) {
            return Ok(Answer::Refused {
                status: status.as_u16(),
                body: snippet,
            });
        }
        let error = if snippet.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {snippet}")
        };
        Err(Transient { error, retry_after })
    }
}

/// How the webhook answered one POST that needs no further attempt.
enum Answer {
    Delivered,
    Refused { status: u16, body: String },
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
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn webhook_urls_are_checked_and_never_shown_in_full() {
        let url =
            WebhookUrl::parse(" https://hooks.slack.com/services/T000/B000/XXXXSECRET ").unwrap();
        assert_eq!(url.redacted(), "https://hooks.slack.com/…");
        assert!(!format!("{url:?}").contains("SECRET"));
        assert!(!format!("{:?}", NotifierConfig::new(url.clone())).contains("SECRET"));
        assert_eq!(
            WebhookUrl::parse("http://127.0.0.1:9000/hook")
                .unwrap()
                .redacted(),
            "http://127.0.0.1:9000/…"
        );
        assert_eq!(WebhookUrl::parse("  "), Err(WebhookUrlError::Empty));
        assert_eq!(
            WebhookUrl::parse("ftp://example.com/x"),
            Err(WebhookUrlError::Scheme("ftp".into()))
        );
        assert!(matches!(
            WebhookUrl::parse("hooks.slack.com/services/T000/B000/XXXXSECRET"),
            Err(WebhookUrlError::Parse(_))
        ));
        let e = WebhookUrl::parse("hooks.slack.com/services/T000/B000/XXXXSECRET").unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        assert!(WebhookUrl::parse("http://").is_err());
        assert!(WebhookUrl::parse("https://:443/x").is_err());
    }

    #[test]
    fn retryable_statuses() {
        use reqwest::StatusCode;
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 301, 302, 400, 401, 403, 404, 410, 413, 422] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
    }

    #[test]
    fn defaults_are_four_attempts_about_one_two_four_seconds_apart() {
        let c = NotifierConfig::new(WebhookUrl::parse("https://example.com/h").unwrap());
        assert_eq!(c.retry, RetryPolicy::WEBHOOK);
        assert_eq!(c.retry.max_attempts, 4);
        assert_eq!(c.timeout, Duration::from_secs(5));
        // Each wait jittered within [base / 2, base] (the bounds are table-tested in util::retry).
        for (failures, base) in [(1, 1), (2, 2), (3, 4)] {
            let base = Duration::from_secs(base);
            let wait = c.retry.wait_before_retry(failures, None);
            assert!(
                wait >= base / 2 && wait <= base,
                "after {failures}: {wait:?}"
            );
        }
        assert_eq!(c.format, WebhookFormat::Json);
    }

    #[tokio::test]
    async fn a_notification_to_an_unreachable_port_fails_and_is_counted() {
        // A port nothing listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = Arc::new(Metrics::new());
        let mut config = NotifierConfig::new(
            WebhookUrl::parse(&format!("http://127.0.0.1:{port}/hook")).unwrap(),
        );
        config.retry.max_attempts = 2;
        config.retry.initial_backoff = Duration::from_millis(10);
        let notifier = Notifier::new(config, metrics.clone()).unwrap();
        let n = notification(blocked(), at(10)).unwrap();
        let delivery = notifier.notify(n).unwrap().await.unwrap();
        match &delivery {
            Delivery::Failed { attempts: 2, error } => {
                assert!(!error.contains("/hook"), "no URL in errors: {error}");
                assert!(error.to_lowercase().contains("connect"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        let text = metrics.render();
        assert!(
            text.contains(r#"tollgate_notifications_total{event="Blocked",outcome="failed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("tollgate_notification_attempts_total 2"),
            "{text}"
        );
    }
}
