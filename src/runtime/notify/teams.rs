//! The Microsoft Teams message ([`super::WebhookFormat::Teams`]): what a Teams *workflow*
//! webhook ("When a Teams webhook request is received", the replacement of the retired Office
//! 365 connectors) posts to a channel: a `message` with one Adaptive Card attachment holding the
//! title, the text, the facts (rollout, version, stable version, reason, time) and the evidence
//! lines.
//!
//! Adaptive Card text blocks render a subset of Markdown; every piece of text from a Rollout
//! goes through [`teams_escape`] so a message cannot turn into links or formatting.

use serde_json::{json, Value};

use super::payload::{Notification, NotificationEvent};
use super::template::Templates;
use crate::util::text::shorten;

/// Adaptive Card schema version used: 1.4 is what Teams renders everywhere.
pub const ADAPTIVE_CARD_VERSION: &str = "1.4";

impl Notification {
    /// The Teams workflow message for `self`, with `templates`' title and text.
    pub(super) fn teams(&self, templates: &Templates) -> Value {
        let colour = match self.event {
            NotificationEvent::Promoted => "Good",
            NotificationEvent::RolledBack => "Attention",
            NotificationEvent::Blocked => "Warning",
            _ => "Default",
        };
        let mut facts = vec![
            json!({"title": "Rollout", "value": teams_escape(&format!("{}/{}", self.namespace, self.name))}),
            json!({"title": "Version", "value": teams_escape(&self.version)}),
        ];
        if let Some(stable) = &self.stable_version {
            facts.push(json!({"title": "Stable", "value": teams_escape(stable)}));
        }
        facts.push(json!({"title": "Reason", "value": teams_escape(&self.reason)}));
        facts.push(json!({"title": "Time", "value": self.time.to_string()}));
        let mut body = vec![
            json!({"type": "TextBlock", "text": teams_escape(&templates.title(self)),
                   "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true}),
        ];
        let text = templates.text(self);
        if !text.is_empty() {
            body.push(json!({"type": "TextBlock", "text": teams_escape(&shorten(&text, 2000)), "wrap": true}));
        }
        body.push(json!({"type": "FactSet", "facts": facts}));
        for line in self.evidence_lines() {
            body.push(
                json!({"type": "TextBlock", "text": format!("• {}", teams_escape(&line)),
                             "wrap": true, "isSubtle": true, "spacing": "None"}),
            );
        }
        let mut message = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": ADAPTIVE_CARD_VERSION,
                    "body": body,
                    "msteams": {"width": "Full"},
                },
            }],
        });
        if let Some(key) = &self.idempotency_key {
            message["idempotencyKey"] = Value::String(key.clone());
        }
        message
    }
}

/// Characters Adaptive Card Markdown acts on, made literal.
pub fn teams_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '`' | '#' | '<' | '>'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::WebhookFormat;

    #[test]
    fn teams_gets_a_message_with_one_adaptive_card() {
        let mut n = notification(rolled_back(), at(70)).unwrap();
        n.idempotency_key = Some("u.g3.RolledBack.1".into());
        let v = n.payload(WebhookFormat::Teams);
        assert_eq!(v["type"], "message");
        let attachments = v["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(
            attachments[0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachments[0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["type"], "TextBlock");
        assert_eq!(body[0]["text"], "checkout 2.4.0 rolled back in shop");
        assert_eq!(body[0]["color"], "Attention");
        assert!(body[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("rolled back to 2.3.0"));
        let facts = body.iter().find(|b| b["type"] == "FactSet").unwrap()["facts"]
            .as_array()
            .unwrap();
        let titles: Vec<&str> = facts.iter().map(|f| f["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["Rollout", "Version", "Stable", "Reason", "Time"]);
        assert_eq!(facts[0]["value"], "shop/checkout");
        assert!(v.to_string().contains("error-rate: Fail"), "{v}");
        assert_eq!(v["idempotencyKey"], "u.g3.RolledBack.1");
    }

    #[test]
    fn teams_text_cannot_become_markup() {
        let mut s = blocked();
        s.message = Some("see [here](http://evil.example) **now** <at>x</at>".into());
        let n = notification(s, at(10)).unwrap();
        let v = n.payload(WebhookFormat::Teams);
        let text = v["attachments"][0]["content"]["body"][1]["text"]
            .as_str()
            .unwrap();
        assert_eq!(
            text,
            r"see \[here\]\(http://evil.example\) \*\*now\*\* \<at\>x\</at\>"
        );
    }
}
