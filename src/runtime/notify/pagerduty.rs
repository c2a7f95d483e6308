//! The PagerDuty Events API v2 event ([`super::WebhookFormat::Pagerduty`]), posted to
//! `https://events.pagerduty.com/v2/enqueue` (or a regional or proxy URL the destination gives).
//!
//! - `routing_key`: the integration key of the service, a secret read like a URL
//!   (`routingKeyFile`, `routingKeyEnv`); never logged.
//! - `event_action`: `trigger` for a rollback, a block, a step or a pause; `resolve` for a
//!   promotion.
//! - `dedup_key`: one per Rollout and version ([`Notification::pagerduty_dedup_key`]), not the
//!   idempotency key: PagerDuty folds every event with the same key into one alert, so a repeated
//!   delivery (at-least-once) never pages twice, a block and then a rollback of the same version
//!   are one incident, and that version's promotion `resolve`s the alert its block opened. (A
//!   per-transition key would leave every `resolve` pointing at nothing.) The idempotency key
//!   still travels in `custom_details.idempotencyKey`.
//! - `payload`: `summary` (the title and text, at most 1024 characters as PagerDuty allows),
//!   `source` (`tollgate/<namespace>/<name>`), `severity` (`error` for a rollback, `warning` for
//!   a block, `info` otherwise), `timestamp`, `component`, `group`, `class`, and the generic JSON
//!   payload as `custom_details`.

use serde_json::{json, Value};

use super::payload::{Notification, NotificationEvent};
use super::template::Templates;
use crate::util::text::shorten;

/// Longest `payload.summary` PagerDuty accepts.
pub const MAX_SUMMARY_CHARS: usize = 1024;

impl Notification {
    /// The PagerDuty Events v2 body for `self`, sent with `routing_key`.
    pub(super) fn pagerduty(&self, templates: &Templates, routing_key: &str) -> Value {
        let (action, severity) = match self.event {
            NotificationEvent::Promoted => ("resolve", "info"),
            NotificationEvent::RolledBack => ("trigger", "error"),
            NotificationEvent::Blocked => ("trigger", "warning"),
            _ => ("trigger", "info"),
        };
        let title = templates.title(self);
        let text = templates.text(self);
        let summary = if text.is_empty() {
            title
        } else {
            format!("{title}: {text}")
        };
        let details = serde_json::to_value(self).unwrap_or(Value::Null);
        json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": self.pagerduty_dedup_key(),
            "client": "tollgate",
            "payload": {
                "summary": shorten(&summary, MAX_SUMMARY_CHARS - 1),
                "source": format!("tollgate/{}/{}", self.namespace, self.name),
                "severity": severity,
                "timestamp": self.time.to_string(),
                "component": self.name,
                "group": self.namespace,
                "class": self.event.as_str(),
                "custom_details": details,
            },
        })
    }

    /// The alert this event belongs to: `tollgate/<namespace>/<name>/<version>`.
    pub fn pagerduty_dedup_key(&self) -> String {
        format!("tollgate/{}/{}/{}", self.namespace, self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn pagerduty_gets_an_events_v2_trigger_keyed_by_rollout_and_version() {
        let mut n = notification(rolled_back(), at(70)).unwrap();
        n.idempotency_key = Some("u.g3.RolledBack.1".into());
        let v = n.pagerduty(&Templates::default(), "R0UTINGKEY");
        assert_eq!(v["routing_key"], "R0UTINGKEY");
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], "tollgate/shop/checkout/2.4.0");
        let p = &v["payload"];
        assert_eq!(p["severity"], "error");
        assert_eq!(p["source"], "tollgate/shop/checkout");
        assert_eq!(p["class"], "RolledBack");
        assert_eq!(p["component"], "checkout");
        assert_eq!(p["group"], "shop");
        assert_eq!(p["timestamp"], at(70).to_string());
        assert!(p["summary"]
            .as_str()
            .unwrap()
            .starts_with("checkout 2.4.0 rolled back in shop: rolled back to 2.3.0"));
        assert_eq!(p["custom_details"]["event"], "RolledBack");
        assert_eq!(p["custom_details"]["idempotencyKey"], "u.g3.RolledBack.1");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "client",
                "dedup_key",
                "event_action",
                "payload",
                "routing_key"
            ]
        );
    }

    #[test]
    fn severities_actions_and_the_summary_limit() {
        let n = notification(blocked(), at(10)).unwrap();
        let v = n.pagerduty(&Templates::default(), "k");
        assert_eq!(
            (
                v["event_action"].as_str(),
                v["payload"]["severity"].as_str()
            ),
            (Some("trigger"), Some("warning"))
        );
        let blocked_key = v["dedup_key"].clone();
        let n = notification(promoted(), at(90)).unwrap();
        let v = n.pagerduty(&Templates::default(), "k");
        // The promotion resolves the alert the same version's block opened.
        assert_eq!(v["dedup_key"], blocked_key, "{v}");
        assert_eq!(
            (
                v["event_action"].as_str(),
                v["payload"]["severity"].as_str()
            ),
            (Some("resolve"), Some("info"))
        );
        let mut s = blocked();
        s.message = Some("x".repeat(5000));
        let n = notification(s, at(10)).unwrap();
        let v = n.pagerduty(&Templates::default(), "k");
        assert!(v["payload"]["summary"].as_str().unwrap().chars().count() <= MAX_SUMMARY_CHARS);
    }
}
