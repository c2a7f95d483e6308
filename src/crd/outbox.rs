//! `status.notifications`: the outbox of notifications not yet acknowledged by their
//! destination. An entry is written in the same status write as the transition it tells of, and
//! removed only after its destination answered 2xx, so a restarted operator delivers what is
//! left (at least once; receivers drop duplicates by the entry's idempotency key).
//!
//! Everything a payload needs is copied into the entry: by the time a restarted operator sends
//! it, the status may have moved on to the next version. The copy is bounded (message cut,
//! at most [`MAX_OUTBOX`] entries, the oldest dropped first and counted).

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::Phase;

/// Most entries kept in `status.notifications.pending`; the oldest is dropped (and counted in
/// `status.notifications.dropped`) to make room.
pub const MAX_OUTBOX: usize = 20;
/// Longest message an outbox entry keeps, in characters: twenty entries stay well under the
/// status size budget even when every message is long.
pub const MAX_OUTBOX_MESSAGE_CHARS: usize = 600;
/// Longest `lastError` an outbox entry keeps, in characters.
pub const MAX_OUTBOX_ERROR_CHARS: usize = 200;

/// The outbox of notifications (see the module documentation).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsStatus {
    /// Notifications written with their transition and not yet acknowledged (2xx) by their
    /// destination, oldest first (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub pending: Vec<OutboxEntry>,
    /// Entries dropped without delivery: the outbox was full, or their destination is no longer
    /// configured.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl NotificationsStatus {
    /// Nothing pending and nothing dropped: the field is left out of status.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.dropped == 0
    }

    /// Append `entry`, dropping (and counting) the oldest while the outbox is full. An entry
    /// already there (same key and destination) is not added twice.
    pub fn push(&mut self, entry: OutboxEntry) {
        if self
            .pending
            .iter()
            .any(|e| e.key == entry.key && e.destination == entry.destination)
        {
            return;
        }
        self.pending.push(entry);
        if self.pending.len() > MAX_OUTBOX {
            let excess = self.pending.len() - MAX_OUTBOX;
            self.pending.drain(..excess);
            self.dropped = self
                .dropped
                .saturating_add(i64::try_from(excess).unwrap_or(i64::MAX));
        }
    }

    /// The earliest time an entry is due again (None: nothing waits).
    pub fn next_due(&self) -> Option<Timestamp> {
        self.pending.iter().filter_map(|e| e.next_attempt_at).min()
    }
}

/// One notification to one destination.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// The idempotency key: the Rollout's uid, the generation, the event and the time of the
    /// transition. Sent in the body (`idempotencyKey`) and as the `Idempotency-Key` header; the
    /// same in every attempt and after a restart.
    pub key: String,
    /// The operator's name of the destination (`default` for `--webhook-url`).
    pub destination: String,
    /// `Promoted`, `RolledBack`, `Blocked`, `StepStarted`, `Paused`, ...
    pub event: String,
    /// When the transition was decided.
    pub at: Timestamp,
    /// The phase the transition entered.
    pub phase: Phase,
    /// The version it is about.
    pub version: String,
    /// The stable version after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_version: Option<String>,
    /// Machine-readable reason (`status.reason` then).
    pub reason: String,
    /// `status.message` then, cut to 600 characters.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` decided for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The step index entered (step events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i32>,
    /// The canary weight then.
    #[serde(default)]
    pub weight: i32,
    /// Delivery rounds that failed so far.
    #[serde(default)]
    pub attempts: i32,
    /// Not sent again before this time (None: due now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// Why the last round failed (never the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
