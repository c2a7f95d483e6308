//! Building PromQL safely: label-value escaping, query templates with placeholders, durations.
//!
//! Everything here is pure.

use crate::analysis::providers::ProviderError;

/// Escape `value` for use *inside* a double-quoted PromQL string literal (a label matcher value).
///
/// PromQL double-quoted strings follow Go's escaping rules. We escape the backslash and the double
/// quote, write newline, carriage return and tab as `\n`, `\r`, `\t`, and every other control character
/// (C0, DEL, C1) as `\u00XX`. Everything else, including braces, commas, single quotes, backticks and
/// non-ASCII text, is literal inside a double-quoted string and needs no escape. The result can never
/// end the string early, so a hostile rollout name, namespace or version cannot add matchers, close
/// the selector or append PromQL.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A double-quoted PromQL string literal holding `value`.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", escape_label_value(value))
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`). Label *names* cannot
/// be escaped, so configured ones are validated instead.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A PromQL duration for a window of `millis` milliseconds: `60s` when whole seconds, else `1500ms`.
pub fn duration(millis: i64) -> String {
    if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// The placeholders a query template may use. Each expands to text that is safe where documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{{namespace}}`: the escaped namespace, for use inside double quotes.
    Namespace,
    /// `{{rollout}}`: the escaped rollout name, for use inside double quotes.
    Rollout,
    /// `{{track}}`: the escaped track value of the arm (`canary`, `baseline`, `stable`), inside quotes.
    Track,
    /// `{{window}}`: the window length as a PromQL duration (`60s`, `1500ms`).
    Window,
    /// `{{selector}}`: the arm's label matchers, comma-separated, without braces:
    /// `namespace="shop",rollout="checkout",track="canary"`.
    Selector,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "namespace" => Placeholder::Namespace,
            "rollout" => Placeholder::Rollout,
            "track" => Placeholder::Track,
            "window" => Placeholder::Window,
            "selector" => Placeholder::Selector,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hole(Placeholder),
}

/// A parsed query template. Placeholders are `{{name}}`; any other `{{identifier}}` is an error at
/// parse time, so a typo fails at configuration, not at the first look. Text between placeholders is
/// copied verbatim, and substituted values are never scanned again (a value containing `{{track}}`
/// stays literal text). PromQL's own braces are fine next to a placeholder: in `m{{{selector}}}` the
/// outer braces stay and the inner `{{selector}}` is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// The values a template is rendered with (raw, unescaped; rendering escapes them).
#[derive(Debug, Clone)]
pub struct Values<'a> {
    pub namespace: &'a str,
    pub rollout: &'a str,
    pub track: &'a str,
    pub window_millis: i64,
    /// The matchers for `{{selector}}`, already built and escaped.
    pub selector: &'a str,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, ProviderError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            // Find the first `{{name}}` starting at or after `open` (handles `{{{selector}}}`).
            let mut found = None;
            let mut search_from = open;
            while let Some(rel) = rest[search_from..].find("{{") {
                let at = search_from + rel;
                let after = &rest[at + 2..];
                let ident_len = after
                    .char_indices()
                    .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map(|(i, _)| i)
                    .unwrap_or(after.len());
                if ident_len > 0 && after[ident_len..].starts_with("}}") {
                    found = Some((at, &after[..ident_len]));
                    break;
                }
                // `{{{` etc.: step one character and look again.
                search_from = at + 1;
                if !rest[search_from..].starts_with('{') {
                    break;
                }
            }
            let Some((at, name)) = found else {
                // No placeholder here: keep the braces as text and move past them.
                text.push_str(&rest[..open + 2]);
                rest = &rest[open + 2..];
                continue;
            };
            let Some(ph) = Placeholder::parse(name) else {
                return Err(ProviderError::Config(format!(
                    "query template uses unknown placeholder {{{{{name}}}}} (known: namespace, rollout, track, window, selector): {source}"
                )));
            };
            text.push_str(&rest[..at]);
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Hole(ph));
            rest = &rest[at + 2 + name.len() + 2..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        if source.trim().is_empty() {
            return Err(ProviderError::Config("query template is empty".into()));
        }
        Ok(Self {
            source: source.to_string(),
            pieces,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Render with `values`, escaping names for use inside double quotes.
    pub fn render(&self, values: &Values<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + 64);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(Placeholder::Namespace) => {
                    out.push_str(&escape_label_value(values.namespace))
                }
                Piece::Hole(Placeholder::Rollout) => {
                    out.push_str(&escape_label_value(values.rollout))
                }
                Piece::Hole(Placeholder::Track) => out.push_str(&escape_label_value(values.track)),
                Piece::Hole(Placeholder::Window) => out.push_str(&duration(values.window_millis)),
                Piece::Hole(Placeholder::Selector) => out.push_str(values.selector),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undo `escape_label_value` the way Go's strconv.Unquote (and so PromQL's lexer) reads it.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                assert_ne!(c, '"', "unescaped quote in {s:?}");
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let cp = u32::from_str_radix(&hex, 16).expect("hex");
                    out.push(char::from_u32(cp).expect("char"));
                }
                other => panic!("bad escape {other:?} in {s:?}"),
            }
        }
        out
    }

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        assert_eq!(escape_label_value("plain-name.1"), "plain-name.1");
        assert_eq!(escape_label_value(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escape_label_value(r"a\b"), r"a\\b");
        assert_eq!(escape_label_value("a\nb\rc\td"), r"a\nb\rc\td");
        assert_eq!(escape_label_value("a\u{0}b\u{7f}"), r"a\u0000b\u007f");
        assert_eq!(escape_label_value("{x}'`,=~"), "{x}'`,=~");
        assert_eq!(escape_label_value("snø ☃"), "snø ☃");
        // A trailing backslash cannot swallow the closing quote.
        assert_eq!(quote("x\\"), r#""x\\""#);
    }

    #[test]
    fn escaping_round_trips_and_never_closes_the_string() {
        let hostile = [
            r#"x"} or vector(1) or {__name__=~".+"#,
            r#"\"} or up{job=""#,
            "a\\",
            "\\\\\"",
            "line\nbreak\"}",
            "}}{{selector}}{{",
            "\u{1b}[31m\u{85}",
            "",
        ];
        for h in hostile {
            let e = escape_label_value(h);
            assert_eq!(unescape(&e), h, "round trip of {h:?}");
            // Every quote in the escaped text is preceded by an odd number of backslashes.
            let bytes = e.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'"' {
                    let n = bytes[..i].iter().rev().take_while(|c| **c == b'\\').count();
                    assert_eq!(n % 2, 1, "quote at {i} would end the string in {e:?}");
                }
                assert!(*b >= 0x20 && *b != 0x7f, "raw control byte in {e:?}");
            }
        }
    }

    #[test]
    fn label_and_metric_names() {
        assert!(is_valid_label_name("track"));
        assert!(is_valid_label_name("_x9"));
        assert!(!is_valid_label_name("9x"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("a\"}"));
        assert!(is_valid_metric_name("http_requests_total"));
        assert!(is_valid_metric_name("job:rate:5m"));
        assert!(!is_valid_metric_name("a{b}"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(60_000), "60s");
        assert_eq!(duration(1_500), "1500ms");
        assert_eq!(duration(1), "1ms");
    }

    fn values<'a>(rollout: &'a str, selector: &'a str) -> Values<'a> {
        Values {
            namespace: "shop",
            rollout,
            track: "canary",
            window_millis: 30_000,
            selector,
        }
    }

    #[test]
    fn templates_substitute_and_escape() {
        let t = Template::parse(r#"sum(increase(m{namespace="{{namespace}}",rollout="{{rollout}}",track="{{track}}"}[{{window}}]))"#).unwrap();
        assert_eq!(
            t.render(&values(r#"a"b\c"#, "")),
            r#"sum(increase(m{namespace="shop",rollout="a\"b\\c",track="canary"}[30s]))"#
        );
        let t = Template::parse("sum(rate(m{{{selector}}}[{{window}}]))").unwrap();
        assert_eq!(
            t.render(&values("r", r#"a="1",b="2""#)),
            r#"sum(rate(m{a="1",b="2"}[30s]))"#
        );
        let t = Template::parse("sum(rate(m{ {{selector}}, code=~\"5..\" }[{{window}}]))").unwrap();
        assert_eq!(
            t.render(&values("r", r#"a="1""#)),
            r#"sum(rate(m{ a="1", code=~"5.." }[30s]))"#
        );
    }

    #[test]
    fn substituted_values_are_not_rescanned() {
        let t = Template::parse(r#"m{rollout="{{rollout}}"}"#).unwrap();
        assert_eq!(
            t.render(&values("{{track}}", "")),
            r#"m{rollout="{{track}}"}"#
        );
    }

    #[test]
    fn templates_reject_unknown_placeholders_and_keep_other_braces() {
        let e = Template::parse("m{x=\"{{namspace}}\"}").unwrap_err();
        assert!(e.to_string().contains("namspace"), "{e}");
        assert!(!e.is_transient());
        assert!(Template::parse("   ").is_err());
        // Braces that are not placeholders are kept verbatim.
        let t = Template::parse(r#"m{a=~"x{2}"} + {{ not a placeholder }}"#).unwrap();
        assert_eq!(
            t.render(&values("r", "")),
            r#"m{a=~"x{2}"} + {{ not a placeholder }}"#
        );
        let t = Template::parse("{{{{window}}").unwrap();
        assert_eq!(t.render(&values("r", "")), "{{30s");
    }
}
