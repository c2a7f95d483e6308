//! Webhook notifications: one POST when a rollout is promoted, rolled back or blocked.
//!
//! Whether a decision is notified is `decide`'s (`Plan::notify`); the reconcile calls
//! [`Notification::for_event`] right after its status write succeeded
//! and hands the result to [`Notifier::notify`], which returns at once: the delivery runs in a
//! spawned task, so a slow, failing or unreachable webhook never delays or fails a rollout.
//!
//! - [`payload`]: what a notification says ([`Notification`], its evidence) and the generic JSON
//!   body ([`WebhookFormat::Json`], `kind: "tollgate.rollout"`, documented in
//!   `docs/notifications.md`).
//! - [`slack`]: the Slack incoming-webhook message ([`WebhookFormat::Slack`]: `text` plus
//!   `blocks`).
//! - [`delivery`]: the webhook URL, the notifier's configuration, and the bounded background
//!   delivery with its retries.
//!
//! Delivery is at most once per transition per operator process: a crash between the status
//! write and the POST loses that notification, and nothing is persisted to resend it. The URL is
//! a secret (a Slack webhook URL is a credential) and is never logged in full.

pub mod delivery;
pub mod destinations;
pub mod outbox;
pub mod pagerduty;
pub mod payload;
pub mod slack;
pub mod teams;
pub mod template;

#[cfg(test)]
mod fixtures;

pub use delivery::{
    is_retryable_status, Delivery, Notifier, NotifierConfig, NotifierError, WebhookUrl,
    WebhookUrlError, DEFAULT_ATTEMPTS, DEFAULT_MAX_PENDING, DEFAULT_TIMEOUT,
};
pub use destinations::{DESTINATIONS_ANNOTATION, OUTCOME_EVENTS};
pub use outbox::{enqueue, idempotency_key, DEFAULT_DESTINATION};
pub use payload::{
    AnalysisEvidence, ContractEvidence, Evidence, FleetEvidence, MetricEvidence, Notification,
    NotificationEvent, PodEvidence, SmokeEvidence, WebhookFormat, MAX_PODS_IN_PAYLOAD,
    PAYLOAD_KIND,
};
