//! The outbox (`status.notifications.pending`): at-least-once delivery across restarts.
//!
//! - [`enqueue`] runs before the status write of a transition: it carries the stored outbox over
//!   and adds one entry per destination of the Rollout, so the entry is stored by the same write
//!   as the transition (no write, no entry; no entry, no notification).
//! - [`Notifier::deliver_pending`] runs after every reconcile's write (or when nothing needed
//!   writing): it posts each entry that is due and not already being sent by this process. A
//!   `2xx` removes the entry with a JSON patch that first tests the entry is still the one at
//!   that index; a failure records `attempts`, `nextAttemptAt` (30 s doubling to 30 min, so a
//!   receiver that is down is not hammered) and `lastError`. A restarted operator reads what is
//!   left and sends it: a crash between the write and the `2xx` repeats the POST, never loses it.
//! - Every body and request carries the entry's idempotency key (`idempotencyKey`, header
//!   `Idempotency-Key`), the same in every attempt, so receivers drop the duplicates that
//!   at-least-once delivery brings.
//! - An entry whose destination is no longer configured is removed, counted in
//!   `status.notifications.dropped` and returned to the caller for a warning Event.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use tracing::warn;

use super::delivery::{Delivery, Notifier};
use super::payload::{Evidence, Notification, NotificationEvent, MAX_MESSAGE_CHARS, PAYLOAD_KIND};
use crate::crd::{
    OutboxEntry, Rollout, RolloutStatus, MAX_OUTBOX_ERROR_CHARS, MAX_OUTBOX_MESSAGE_CHARS,
};
use crate::util::text::shorten;

/// The name of the destination `--webhook-url` configures.
pub const DEFAULT_DESTINATION: &str = "default";
/// Wait before the second delivery round of an entry; doubled per failed round.
pub const RETRY_BASE: Duration = Duration::from_secs(30);
/// Longest wait between delivery rounds.
pub const RETRY_MAX: Duration = Duration::from_secs(30 * 60);
/// How long this process remembers an entry it delivered, so a reconcile that read the
/// Rollout before the removal reached the cache does not send it again.
const REMEMBER_DELIVERED: Duration = Duration::from_secs(600);

/// The idempotency key of a transition: stable across attempts, restarts and replicas, and
/// distinct for every transition (the Rollout's uid, the generation, the event, the decision's
/// time in milliseconds).
pub fn idempotency_key(
    rollout: &Rollout,
    generation: Option<i64>,
    event: &str,
    at: Timestamp,
) -> String {
    let uid = rollout.metadata.uid.as_deref().unwrap_or("no-uid");
    format!(
        "{uid}.g{}.{event}.{}",
        generation.unwrap_or(0),
        at.as_millisecond()
    )
}

/// The version a notification of `event` is about, from the status entering it.
pub(super) fn version_for(status: &RolloutStatus, event: NotificationEvent, spec: &str) -> String {
    match event {
        NotificationEvent::Promoted => status.stable_version.clone(),
        NotificationEvent::RolledBack | NotificationEvent::Blocked => {
            status.rejected_version.clone()
        }
        NotificationEvent::StepStarted | NotificationEvent::Paused => status.canary_version.clone(),
    }
    .unwrap_or_else(|| spec.to_string())
}

/// Before the status write: `status` (the plan's) keeps the stored outbox (`previous`'s) and
/// gains one entry per destination for `event`. An empty outbox is left out of status.
pub fn enqueue(
    status: &mut RolloutStatus,
    previous: Option<&RolloutStatus>,
    rollout: &Rollout,
    event: Option<NotificationEvent>,
    destinations: &[String],
    now: Timestamp,
) {
    let mut outbox = previous
        .and_then(|p| p.notifications.clone())
        .unwrap_or_default();
    if let Some(event) = event {
        let key = idempotency_key(rollout, status.observed_generation, event.as_str(), now);
        for destination in destinations {
            outbox.push(OutboxEntry {
                key: key.clone(),
                destination: destination.clone(),
                event: event.as_str().to_string(),
                at: now,
                phase: status.phase,
                version: version_for(status, event, &rollout.spec.version),
                stable_version: status.stable_version.clone(),
                reason: status
                    .reason
                    .clone()
                    .unwrap_or_else(|| event.as_str().to_string()),
                message: shorten(
                    status.message.as_deref().unwrap_or_default(),
                    MAX_OUTBOX_MESSAGE_CHARS,
                ),
                generation: status.observed_generation,
                step: status.current_step_index,
                weight: status.current_weight,
                attempts: 0,
                next_attempt_at: None,
                last_error: None,
            });
        }
    }
    status.notifications = (!outbox.is_empty()).then_some(outbox);
}

/// When an entry that failed `attempts` rounds is due again.
pub fn next_attempt(attempts: i32, now: Timestamp) -> Timestamp {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    let wait = RETRY_BASE.saturating_mul(1u32 << exp).min(RETRY_MAX);
    let wait = jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::ZERO);
    now.checked_add(wait).unwrap_or(now)
}

impl Notification {
    /// The notification an outbox entry tells of. While the Rollout's status still is the one
    /// the transition wrote, the whole message and the evidence come from it; later (a
    /// restarted operator, a status that moved on) from what the entry kept. None for an event
    /// this operator does not know (written by a newer one).
    pub fn from_entry(rollout: &Rollout, entry: &OutboxEntry) -> Option<Notification> {
        let event = NotificationEvent::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == entry.event)?;
        let live = rollout
            .status
            .as_ref()
            .filter(|s| s.phase == entry.phase && s.phase_started_at == Some(entry.at));
        let message = live
            .and_then(|s| s.message.as_deref())
            .map_or_else(|| entry.message.clone(), |m| shorten(m, MAX_MESSAGE_CHARS));
        Some(Notification {
            kind: PAYLOAD_KIND,
            event,
            namespace: rollout.namespace().unwrap_or_default(),
            name: rollout.name_any(),
            version: entry.version.clone(),
            stable_version: entry.stable_version.clone(),
            phase: entry.phase,
            reason: entry.reason.clone(),
            message,
            time: entry.at,
            generation: entry.generation,
            idempotency_key: Some(entry.key.clone()),
            evidence: live.map(Evidence::from_status).unwrap_or_default(),
        })
    }
}

/// What this process knows of an entry beyond what the (possibly stale) cache says.
#[derive(Clone, Copy, Debug)]
pub(super) enum Local {
    /// Being sent.
    InFlight,
    /// Delivered at this instant (the removal may not have reached the cache yet).
    Delivered(std::time::Instant),
    /// Failed; not due before this time.
    RetryAt(Timestamp),
}

pub(super) type LocalState = HashMap<(String, String), Local>;

impl Notifier {
    /// Send every due entry of `rollout`'s outbox (as stored) not already being sent, each in
    /// its own task; the reconcile does not wait. Returns the entries whose destination is not
    /// configured: they are removed from the outbox (counted as dropped) and the caller
    /// publishes a warning Event for them.
    pub fn deliver_pending(
        &self,
        api: &Api<Rollout>,
        rollout: &Rollout,
        now: Timestamp,
    ) -> Vec<OutboxEntry> {
        let Some(outbox) = rollout
            .status
            .as_ref()
            .and_then(|s| s.notifications.as_ref())
        else {
            return Vec::new();
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Vec::new();
        };
        let inner = self.inner().clone();
        let name = rollout.name_any();
        let label = format!("{}/{}", rollout.namespace().unwrap_or_default(), name);
        let mut gone = Vec::new();
        for entry in &outbox.pending {
            let Some(destination) = inner.destinations.get(&entry.destination).cloned() else {
                // Once per entry: a reconcile that comes before the removal reached the cache
                // neither removes nor warns again.
                if claim(&inner.in_flight, entry, now) {
                    gone.push(entry.clone());
                }
                continue;
            };
            if entry.next_attempt_at.is_some_and(|t| t > now) {
                continue;
            }
            let id = (entry.key.clone(), entry.destination.clone());
            if !claim(&inner.in_flight, entry, now) {
                continue;
            }
            // At the bound of deliveries in flight, the entry waits in the outbox for the next
            // reconcile: nothing is lost.
            let Ok(permit) = inner.slots.clone().try_acquire_owned() else {
                forget(&inner.in_flight, &id);
                break;
            };
            let body = Notification::from_entry(rollout, entry)
                .and_then(|n| n.body_for(&destination).ok());
            let Some(body) = body else {
                // An event from a newer operator: leave it for that one.
                forget(&inner.in_flight, &id);
                continue;
            };
            let inner = inner.clone();
            let api = api.clone();
            let name = name.clone();
            let label = label.clone();
            let entry = entry.clone();
            runtime.spawn(async move {
                let delivery = inner
                    .deliver(&destination, &label, body, Some(&entry.key))
                    .await;
                inner.report_to(&destination, &label, &entry.event, &delivery);
                let (change, local) = match &delivery {
                    Delivery::Delivered { .. } => (
                        Change::Remove { dropped: false },
                        Local::Delivered(std::time::Instant::now()),
                    ),
                    Delivery::Refused { status, body, .. } => {
                        failed(&entry, format!("refused with {status}: {body}"))
                    }
                    Delivery::Failed { error, .. } => failed(&entry, error.clone()),
                };
                if let Ok(mut l) = inner.in_flight.lock() {
                    l.insert(id.clone(), local);
                }
                drop(permit);
                if let Err(e) = patch_entry(&api, &name, &entry, change).await {
                    warn!(rollout = %label, key = %entry.key, error = %e, "could not update the notification outbox; the next reconcile tries again");
                    forget(&inner.in_flight, &id);
                }
            });
        }
        if !gone.is_empty() {
            let api = api.clone();
            let removed = gone.clone();
            let metrics = inner.clone();
            runtime.spawn(async move {
                for entry in &removed {
                    metrics.count_named(&entry.event, "dropped");
                    let id = (entry.key.clone(), entry.destination.clone());
                    match patch_entry(&api, &name, entry, Change::Remove { dropped: true }).await {
                        Ok(()) => {
                            if let Ok(mut l) = metrics.in_flight.lock() {
                                l.insert(id, Local::Delivered(std::time::Instant::now()));
                            }
                        }
                        Err(e) => {
                            warn!(rollout = %label, key = %entry.key, error = %e, "could not drop a notification for a destination no longer configured");
                            forget(&metrics.in_flight, &id);
                        }
                    }
                }
            });
        }
        gone
    }
}

/// Mark `entry` as being handled by this process; false when it already is (or was).
fn claim(local: &std::sync::Mutex<LocalState>, entry: &OutboxEntry, now: Timestamp) -> bool {
    let Ok(mut l) = local.lock() else {
        return false;
    };
    l.retain(|_, s| match s {
        Local::Delivered(at) => at.elapsed() < REMEMBER_DELIVERED,
        Local::RetryAt(t) => *t > now,
        Local::InFlight => true,
    });
    let id = (entry.key.clone(), entry.destination.clone());
    if l.contains_key(&id) {
        return false;
    }
    l.insert(id, Local::InFlight);
    true
}

fn forget(local: &std::sync::Mutex<LocalState>, id: &(String, String)) {
    if let Ok(mut l) = local.lock() {
        l.remove(id);
    }
}

fn failed(entry: &OutboxEntry, error: String) -> (Change, Local) {
    let now = Timestamp::now();
    let attempts = entry.attempts.saturating_add(1);
    let next = next_attempt(attempts, now);
    (
        Change::Failed {
            attempts,
            next,
            error: shorten(&error, MAX_OUTBOX_ERROR_CHARS),
        },
        Local::RetryAt(next),
    )
}

/// What becomes of an outbox entry.
#[derive(Debug)]
enum Change {
    /// Delivered, or dropped (its destination is gone; counted).
    Remove { dropped: bool },
    /// A delivery round failed.
    Failed {
        attempts: i32,
        next: Timestamp,
        error: String,
    },
}

/// Apply `change` to `entry` in the stored outbox with a JSON patch that first tests the entry
/// is still the one at that index (a reconcile may have added or the cap dropped entries since):
/// on a failed test, read again, a few times. An entry no longer there is fine.
async fn patch_entry(
    api: &Api<Rollout>,
    name: &str,
    entry: &OutboxEntry,
    change: Change,
) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let current = api.get_status(name).await.map_err(|e| e.to_string())?;
        let Some(outbox) = current
            .status
            .as_ref()
            .and_then(|s| s.notifications.as_ref())
        else {
            return Ok(());
        };
        let Some(i) = outbox
            .pending
            .iter()
            .position(|e| e.key == entry.key && e.destination == entry.destination)
        else {
            return Ok(());
        };
        let at = format!("/status/notifications/pending/{i}");
        let mut ops = vec![
            json!({"op": "test", "path": format!("{at}/key"), "value": entry.key}),
            json!({"op": "test", "path": format!("{at}/destination"), "value": entry.destination}),
        ];
        match &change {
            Change::Remove { dropped } => {
                if outbox.pending.len() == 1 && outbox.dropped == 0 && !dropped {
                    // The last one: leave no empty outbox behind.
                    ops.push(json!({"op": "remove", "path": "/status/notifications"}));
                } else {
                    ops.push(json!({"op": "remove", "path": at}));
                }
                if *dropped {
                    ops.push(json!({"op": "add", "path": "/status/notifications/dropped",
                        "value": outbox.dropped.saturating_add(1)}));
                }
            }
            Change::Failed {
                attempts,
                next,
                error,
            } => {
                ops.push(json!({"op": "add", "path": format!("{at}/attempts"), "value": attempts}));
                ops.push(
                    json!({"op": "add", "path": format!("{at}/nextAttemptAt"), "value": next}),
                );
                ops.push(json!({"op": "add", "path": format!("{at}/lastError"), "value": error}));
            }
        }
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).map_err(|e| e.to_string())?;
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => return Ok(()),
            // The test failed (the outbox moved under us) or a conflict: read again.
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 409 => last = s.message,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("the outbox kept changing: {last}"))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::crd::{Phase, MAX_OUTBOX};

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_entry_per_destination_is_added_with_the_transition_and_the_outbox_is_carried() {
        let mut r = rollout(rolled_back());
        r.metadata.uid = Some("u-1".into());
        let mut status = rolled_back();
        enqueue(
            &mut status,
            None,
            &r,
            Some(NotificationEvent::RolledBack),
            &names(&["team-a", "oncall"]),
            at(70),
        );
        let outbox = status.notifications.clone().unwrap();
        assert_eq!(outbox.pending.len(), 2);
        let e = &outbox.pending[0];
        assert_eq!(
            e.key,
            format!("u-1.g3.RolledBack.{}", at(70).as_millisecond())
        );
        assert_eq!(
            (e.destination.as_str(), e.event.as_str(), e.version.as_str()),
            ("team-a", "RolledBack", "2.4.0")
        );
        assert_eq!(outbox.pending[1].key, e.key, "one key per transition");
        assert_eq!(e.phase, Phase::RolledBack);
        assert!(e.message.starts_with("rolled back to 2.3.0"));

        // The next pass with no event keeps them; a pass without destinations adds nothing.
        let mut next = promoted();
        enqueue(
            &mut next,
            Some(&status),
            &r,
            None,
            &names(&["team-a"]),
            at(80),
        );
        assert_eq!(next.notifications, Some(outbox.clone()));
        let mut next = promoted();
        enqueue(
            &mut next,
            None,
            &r,
            Some(NotificationEvent::Promoted),
            &[],
            at(80),
        );
        assert_eq!(next.notifications, None, "no empty outbox in status");
    }

    #[test]
    fn the_outbox_is_bounded_and_counts_what_it_dropped() {
        let r = rollout(blocked());
        let mut previous = blocked();
        for i in 0..(MAX_OUTBOX as i64 + 3) {
            let mut status = blocked();
            enqueue(
                &mut status,
                Some(&previous),
                &r,
                Some(NotificationEvent::Blocked),
                &names(&["default"]),
                at(i),
            );
            previous = status;
        }
        let outbox = previous.notifications.unwrap();
        assert_eq!(outbox.pending.len(), MAX_OUTBOX);
        assert_eq!(outbox.dropped, 3);
        assert_eq!(outbox.pending[0].at, at(3), "the oldest went first");
        // The same transition again (a write repeated) is not a second entry.
        let mut again = RolloutStatus {
            notifications: Some(outbox.clone()),
            ..blocked()
        };
        let last = outbox.pending.last().unwrap().clone();
        again.notifications.as_mut().unwrap().push(last);
        assert_eq!(again.notifications.unwrap().pending.len(), MAX_OUTBOX);
    }

    #[test]
    fn a_notification_from_an_entry_carries_its_key_and_live_evidence_only_while_current() {
        let mut r = rollout(rolled_back());
        r.metadata.uid = Some("u-1".into());
        let mut status = rolled_back();
        status.phase_started_at = Some(at(70));
        enqueue(
            &mut status,
            None,
            &r,
            Some(NotificationEvent::RolledBack),
            &names(&["default"]),
            at(70),
        );
        let entry = status.notifications.as_ref().unwrap().pending[0].clone();
        r.status = Some(status.clone());
        let n = Notification::from_entry(&r, &entry).unwrap();
        assert_eq!(n.idempotency_key.as_deref(), Some(entry.key.as_str()));
        assert!(
            n.evidence.analysis.is_some(),
            "the status is still this one"
        );
        let body: Value =
            serde_json::from_slice(&n.body(super::super::WebhookFormat::Json).unwrap()).unwrap();
        assert_eq!(body["idempotencyKey"], entry.key.as_str());
        let slack: Value =
            serde_json::from_slice(&n.body(super::super::WebhookFormat::Slack).unwrap()).unwrap();
        assert_eq!(slack["idempotencyKey"], entry.key.as_str());

        // The status moved on (a new version started): the entry's copy is used.
        let mut moved = analyzing();
        moved.phase_started_at = Some(at(100));
        moved.message = Some("something else".into());
        r.status = Some(moved);
        let later = Notification::from_entry(&r, &entry).unwrap();
        assert_eq!(later.message, entry.message);
        assert_eq!(later.version, "2.4.0");
        assert_eq!(later.evidence, Evidence::default());
        assert_eq!(later.idempotency_key, n.idempotency_key);

        let mut unknown = entry;
        unknown.event = "SomethingNewer".into();
        assert!(Notification::from_entry(&r, &unknown).is_none());
    }

    #[test]
    fn an_entry_is_claimed_once_until_forgotten_or_due_again() {
        let local = std::sync::Mutex::new(LocalState::default());
        let r = rollout(blocked());
        let mut status = blocked();
        enqueue(
            &mut status,
            None,
            &r,
            Some(NotificationEvent::Blocked),
            &names(&["d"]),
            at(0),
        );
        let entry = status.notifications.unwrap().pending[0].clone();
        let id = (entry.key.clone(), entry.destination.clone());
        assert!(claim(&local, &entry, at(0)));
        assert!(!claim(&local, &entry, at(1)), "in flight: not sent twice");
        local
            .lock()
            .unwrap()
            .insert(id.clone(), Local::RetryAt(at(30)));
        assert!(!claim(&local, &entry, at(10)), "not due yet");
        assert!(claim(&local, &entry, at(30)), "due again");
        local
            .lock()
            .unwrap()
            .insert(id.clone(), Local::Delivered(std::time::Instant::now()));
        assert!(
            !claim(&local, &entry, at(40)),
            "delivered: not again from a stale cache"
        );
        forget(&local, &id);
        assert!(claim(&local, &entry, at(40)));
    }

    #[test]
    fn failed_rounds_wait_longer_each_time_up_to_the_cap() {
        let now = at(0);
        let wait = |n| next_attempt(n, now).duration_since(now).as_secs();
        assert_eq!(wait(1), 30);
        assert_eq!(wait(2), 60);
        assert_eq!(wait(3), 120);
        assert_eq!(wait(10), 1800);
        assert_eq!(wait(1000), 1800);
    }
}
