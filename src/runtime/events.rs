//! Publishing a pass's Events: off the reconcile worker, in order, with bounded memory.
//!
//! Why not kube's `Recorder` used directly, as before:
//! - **Workers.** A pass published its Events one create at a time before it returned, so
//!   every Event held one of the workers all Rollouts share for an API round trip. Under churn
//!   (issue 20's scale bench: 100 of 1,000 Rollouts given a new version at once) that queued the
//!   next Rollouts' first status writes behind other Rollouts' Events. A pass now hands its
//!   Events to a task of their own and returns; the Events of one pass stay in order (one task
//!   publishes them one after the other). Nothing orders two passes' tasks: a Rollout's next
//!   pass may publish before the last Event of this one is answered, so a reader sorting by time
//!   can see two quick passes' Events interleaved within a second (each carries the time it was
//!   published). The status, written before any Event, is the ordered record.
//! - **Backpressure.** At most [`IN_FLIGHT`] passes' Events are being published at once; a pass
//!   that finds them all taken waits for one (so a slow API server slows reconciles down instead
//!   of growing a backlog without bound).
//! - **Memory.** The `Recorder` keeps every Event of the last six minutes to fold repeats into a
//!   series, in a hash table that never shrinks: after a burst (a start at 1,000 Rollouts
//!   publishes about 4,000 Events in a few minutes) the table kept the burst's size for the
//!   process's life (3 MB of 25 MB of heap at 300 Rollouts). The recorder is renewed every
//!   [`RENEW_EVERY`], so the table is never older than that; a repeat that straddles a renewal
//!   starts a new Event instead of counting in the old one's series.
//!
//! Failures are logged, never fatal: the status already holds the record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use tokio::sync::Semaphore;

use crate::rollout::decide::{EventKind, PlannedEvent};
use crate::util::text::shorten_bytes;

/// Passes whose Events may be in flight at once.
pub const IN_FLIGHT: usize = 64;
/// How long one recorder (and its table of recent Events) is used before a fresh one replaces
/// it: kube's own series window (six minutes), so a repeat within one window still folds.
pub const RENEW_EVERY: Duration = Duration::from_secs(6 * 60);

/// Publishes Events as one reporter (this replica).
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    reporter: Reporter,
    recorder: Arc<Mutex<(Instant, Recorder)>>,
    in_flight: Arc<Semaphore>,
}

impl EventPublisher {
    /// A publisher reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        let recorder = Recorder::new(client.clone(), reporter.clone());
        EventPublisher {
            client,
            reporter,
            recorder: Arc::new(Mutex::new((Instant::now(), recorder))),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// The current recorder, renewed when it is older than [`RENEW_EVERY`].
    fn recorder(&self) -> Recorder {
        // A poisoned lock only means another pass panicked while swapping: the value is whole.
        let mut current = self
            .recorder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0.elapsed() >= RENEW_EVERY {
            *current = (
                Instant::now(),
                Recorder::new(self.client.clone(), self.reporter.clone()),
            );
        }
        current.1.clone()
    }

    /// Publish `events` about `reference`, in order, on a task of their own. Waits only for a
    /// free slot (see [`IN_FLIGHT`]), not for the API server.
    pub async fn publish(&self, reference: ObjectReference, events: &[PlannedEvent]) {
        if events.is_empty() {
            return;
        }
        // The semaphore is never closed, so this never fails (and without a permit the Events
        // would still be published).
        let permit = self.in_flight.clone().acquire_owned().await.ok();
        let recorder = self.recorder();
        let events: Vec<Event> = events.iter().map(kube_event).collect();
        tokio::spawn(async move {
            for event in &events {
                if let Err(e) = recorder.publish(event, &reference).await {
                    tracing::warn!(error = %e, reason = %event.reason, "could not publish event");
                }
            }
            drop(permit);
        });
    }
}

/// The Event kube's recorder publishes for a planned one.
fn kube_event(planned: &PlannedEvent) -> Event {
    Event {
        type_: match planned.kind {
            EventKind::Normal => EventType::Normal,
            EventKind::Warning => EventType::Warning,
        },
        reason: planned.reason.to_string(),
        // An Event note is limited in bytes.
        note: Some(shorten_bytes(&planned.message, 1000)),
        action: "Reconcile".into(),
        secondary: None,
    }
}
