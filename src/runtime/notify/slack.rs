//! The Slack incoming-webhook message (`--webhook-format slack`): a short `text` for
//! notifications and `blocks` with the message and the evidence worth a line. Mattermost and
//! others that take Slack's format accept it too.
//!
//! Slack reads `&`, `<` and `>` as markup (`<!channel>` pings everyone), so every piece of text
//! from a Rollout is escaped; section text is kept under Slack's 3000-character limit.

use serde_json::{json, Value};

use super::payload::{headline_verb, Notification, NotificationEvent};
use super::template::Templates;
use crate::util::text::shorten;

impl Notification {
    fn emoji(&self) -> &'static str {
        match self.event {
            NotificationEvent::Promoted => ":white_check_mark:",
            NotificationEvent::RolledBack => ":rotating_light:",
            NotificationEvent::Blocked => ":no_entry:",
            NotificationEvent::StepStarted => ":arrow_forward:",
            NotificationEvent::Paused => ":double_vertical_bar:",
        }
    }

    /// The message posted for [`super::WebhookFormat::Slack`], with `templates`' title and
    /// text (the defaults are the headline and the status message).
    pub(super) fn slack_with(&self, templates: &Templates) -> Value {
        let emoji = self.emoji();
        let headline = templates.title(self);
        let message = templates.text(self);
        let text = match self.event {
            NotificationEvent::Promoted => format!("{emoji} {headline}"),
            _ => format!("{emoji} {headline}: {}", shorten(&message, 300)),
        };
        let title = match templates.title {
            None => format!(
                "{emoji} *{}* `{}` {} in `{}`",
                slack_escape(&self.name),
                slack_escape(&self.version),
                headline_verb(self.event),
                slack_escape(&self.namespace),
            ),
            Some(_) => format!("{emoji} {}", slack_escape(&headline)),
        };
        let mut blocks = vec![json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": shorten(&title, 2500)},
        })];
        if !message.is_empty() {
            blocks.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": shorten(&slack_escape(&message), 2500)},
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
        let mut message = json!({"text": slack_escape(&text), "blocks": blocks});
        // Slack ignores members it does not know; a relay in between can dedup on it.
        if let Some(key) = &self.idempotency_key {
            message["idempotencyKey"] = Value::String(key.clone());
        }
        message
    }
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {

    use super::super::fixtures::*;
    use super::super::payload::MAX_MESSAGE_CHARS;
    use super::super::WebhookFormat;

    #[test]
    fn slack_payload_has_a_short_sentence_and_blocks() {
        let n = notification(promoted(), at(90)).unwrap();
        let v = n.payload(WebhookFormat::Slack);
        assert_eq!(
            v["text"],
            ":white_check_mark: checkout 2.4.0 promoted in shop"
        );
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        assert_eq!(blocks.last().unwrap()["type"], "context");
        assert!(v.get("kind").is_none(), "Slack gets its own shape: {v}");

        let n = notification(rolled_back(), at(70)).unwrap();
        let v = n.payload(WebhookFormat::Slack);
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                ":rotating_light: checkout 2.4.0 rolled back in shop: rolled back to 2.3.0"
            ),
            "{text}"
        );
        let all = v.to_string();
        assert!(
            all.contains("error-rate: Fail, estimate 3.100 [2.200, 4.400]"),
            "{all}"
        );
        // A passing metric is not news in a rollback message.
        assert!(!all.contains("latency-p99"), "{all}");

        let n = notification(blocked(), at(10)).unwrap();
        let v = n.payload(WebhookFormat::Slack);
        assert!(v["text"]
            .as_str()
            .unwrap()
            .starts_with(":no_entry: checkout 2.4.0 blocked in shop: can-i-deploy"));
        // The message quotes the broker already: no second copy.
        assert_eq!(n.evidence_lines(), Vec::<String>::new());
        let mut s = blocked();
        s.message = Some("blocked".into());
        let n = notification(s, at(10)).unwrap();
        let v = n.payload(WebhookFormat::Slack);
        assert!(
            v.to_string().contains("contract gate: payments 1.2 fails"),
            "{v}"
        );
    }

    #[test]
    fn slack_text_escapes_its_control_characters_and_long_messages_are_cut() {
        let mut s = blocked();
        s.message = Some(format!("<!channel> a & b > c {}", "x".repeat(5000)));
        let n = notification(s, at(10)).unwrap();
        assert_eq!(n.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(n.message.ends_with('…'));
        let v = n.payload(WebhookFormat::Slack);
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt; a &amp; b &gt; c"), "{text}");
        assert!(!v.to_string().contains("<!channel>"));
        for block in v["blocks"].as_array().unwrap() {
            if let Some(t) = block["text"]["text"].as_str() {
                assert!(
                    t.chars().count() <= 3000,
                    "Slack refuses longer section text"
                );
            }
        }
    }
}
