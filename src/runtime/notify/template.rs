//! Message templates: the human texts of a notification (its `title` and `text`), rendered
//! with [`minijinja`] from the notification's fields. A destination may override either; the
//! defaults are the texts tollgate always sent (`checkout 2.4.0 rolled back in shop` and
//! `status.message`).
//!
//! Templates are compiled when the operator starts, so a typo stops it (exit 3) instead of
//! failing every notification; a template that fails to render at run time (an undefined
//! filter, a type error) falls back to the default text with a warning, so the notification
//! still goes out. The rendered text is escaped for the destination's format afterwards (Slack's
//! `&`, `<`, `>`), so a field cannot inject markup whatever the template says.

use minijinja::{context, Environment, Value};
use tracing::warn;

use super::payload::{headline_verb, Notification};

/// The default `title`: what happened, in one line.
pub const DEFAULT_TITLE: &str = "{{ name }} {{ version }} {{ verb }} in {{ namespace }}";
/// The default `text`: the status message.
pub const DEFAULT_TEXT: &str = "{{ message }}";

/// A destination's templates, compiled. Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Templates {
    /// The `title` template (None: [`DEFAULT_TITLE`]).
    pub title: Option<String>,
    /// The `text` template (None: [`DEFAULT_TEXT`]).
    pub text: Option<String>,
}

/// A template that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("template {which}: {error}")]
pub struct TemplateError {
    which: &'static str,
    error: String,
}

impl Templates {
    /// Check that both templates compile.
    pub fn check(&self) -> Result<(), TemplateError> {
        let env = Environment::new();
        for (which, source) in [("title", &self.title), ("text", &self.text)] {
            if let Some(source) = source {
                env.template_from_str(source).map_err(|e| TemplateError {
                    which,
                    error: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// The title of `n`.
    pub fn title(&self, n: &Notification) -> String {
        render("title", self.title.as_deref(), DEFAULT_TITLE, n)
    }

    /// The text of `n`.
    pub fn text(&self, n: &Notification) -> String {
        render("text", self.text.as_deref(), DEFAULT_TEXT, n)
    }
}

/// What a template sees: every field of the JSON payload (camelCase, e.g. `stableVersion`,
/// `idempotencyKey`, `evidence`), plus `verb` ("promoted", "rolled back", ...) and
/// `evidenceLines` (the lines a chat message lists).
fn variables(n: &Notification) -> Value {
    context! {
        verb => headline_verb(n.event),
        evidenceLines => n.evidence_lines(),
        ..Value::from_serialize(n)
    }
}

fn render(which: &str, source: Option<&str>, default: &str, n: &Notification) -> String {
    let env = Environment::new();
    let vars = variables(n);
    if let Some(source) = source {
        match env.render_str(source, &vars) {
            Ok(text) => return text,
            Err(e) => warn!(
                template = which,
                error = %e,
                "notification template failed: the default text is used"
            ),
        }
    }
    env.render_str(default, &vars).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn the_defaults_are_today_s_texts() {
        let n = notification(rolled_back(), at(70)).unwrap();
        let t = Templates::default();
        assert_eq!(t.title(&n), n.headline());
        assert_eq!(t.title(&n), "checkout 2.4.0 rolled back in shop");
        assert_eq!(t.text(&n), n.message);
    }

    #[test]
    fn a_destination_s_templates_see_the_payload_fields() {
        let n = notification(rolled_back(), at(70)).unwrap();
        let t = Templates {
            title: Some("[{{ namespace }}] {{ name }}: {{ event }} ({{ reason }}) from {{ stableVersion }}".into()),
            text: Some("{% for l in evidenceLines %}- {{ l }}\n{% endfor %}looks: {{ evidence.analysis.looks }}".into()),
        };
        t.check().unwrap();
        assert_eq!(
            t.title(&n),
            "[shop] checkout: RolledBack (AnalysisFailed) from 2.3.0"
        );
        assert_eq!(
            t.text(&n),
            "- error-rate: Fail, estimate 3.100 [2.200, 4.400] (rate ratio above tolerance 1.2)\nlooks: 7"
        );
    }

    #[test]
    fn a_broken_template_is_refused_at_start_and_a_failing_one_falls_back() {
        let broken = Templates {
            title: Some("{{ name ".into()),
            text: None,
        };
        let e = broken.check().unwrap_err().to_string();
        assert!(e.starts_with("template title:"), "{e}");
        // Compiles, fails when rendered (an unknown filter): the default text.
        let failing = Templates {
            title: None,
            text: Some("{{ message | nosuchfilter }}".into()),
        };
        let n = notification(blocked(), at(10)).unwrap();
        assert_eq!(failing.text(&n), n.message);
    }
}
