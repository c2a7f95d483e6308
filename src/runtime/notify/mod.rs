//! Notifications: at-least-once, through an outbox in status, to the named destinations each
//! Rollout picks.
//!
//! Whether a decision is notified is `decide`'s (`Plan::notify`: promoted, rolled back,
//! blocked, a step started, a pause). Before the status write the reconcile calls
//! [`outbox::enqueue`], which adds one entry per destination of the Rollout
//! ([`destinations`]) to `status.notifications.pending`, so the entry is stored by the
//! transition's own write; after the write, [`Notifier::deliver_pending`] posts every due
//! entry in the background and removes it on a `2xx`. A restarted operator delivers what is
//! left; every body and request carries the entry's idempotency key.
//!
//! - [`payload`]: what a notification says ([`Notification`], its evidence) and the generic JSON
//!   body ([`WebhookFormat::Json`], `kind: "tollgate.rollout"`, documented in
//!   `docs/notifications.md`).
//! - [`slack`], [`teams`], [`pagerduty`]: the Slack incoming-webhook message, the Teams workflow
//!   message (an Adaptive Card) and the PagerDuty Events v2 event.
//! - [`template`]: the minijinja title and text templates (today's texts as defaults).
//! - [`destinations`]: the destinations file and the `notifications.tollgate.dev/destinations`
//!   annotation.
//! - [`outbox`]: the outbox entries, their idempotency keys, and their delivery and removal.
//! - [`delivery`]: the webhook URL, a destination's configuration, and the bounded POST with its
//!   retries.
//!
//! URLs and routing keys are secrets and are never logged in full.

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
