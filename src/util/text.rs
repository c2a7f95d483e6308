//! Text from elsewhere made fit to show: shortened on character boundaries, control characters
//! replaced, so a long or hostile body cannot flood a log line, an Event or a terminal.
//!
//! Two limits, for two kinds of reader: [`shorten`] counts characters (people, chat messages);
//! [`shorten_bytes`] counts bytes (APIs whose limits are in bytes, such as an Event's note).
//! Both mark a cut with `…`, never split a character, and leave text within the limit as it is.
//!
//! Two ways of making text harmless: [`printable`] turns control characters into spaces (a
//! one-line excerpt of a body), [`escape`] writes them out visibly (`\n`, `\u{1b}`), so what a
//! pod, the broker or Prometheus sent can be shown exactly without moving a terminal's cursor,
//! setting its title or reordering the line (bidirectional overrides are escaped too).
//! [`for_terminal`] and [`for_status`] are the one sanitizer every printed line and every
//! string stored in a Rollout's status goes through.

/// The mark appended where text was cut.
pub const ELLIPSIS: char = '…';

/// At most `max_chars` characters of `text`, then `…` when something was cut.
pub fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}{ELLIPSIS}", &text[..cut]),
        None => text.to_string(),
    }
}

/// At most `max_bytes` bytes of `text` (fewer when a character would be split), then `…` when
/// something was cut. The mark's own three bytes come on top of the limit.
pub fn shorten_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// `text` with every control character (line breaks, escapes, NUL) replaced by a space, so it
/// stays on one line and cannot move a terminal's cursor.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Whether `c` must not reach a terminal as it is: a control character (C0, DEL, C1), or a
/// bidirectional formatting character that can make a line read differently than it is.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unsafe character written out: `\n`, `\r`, `\t` and `\\` as in Rust, any
/// other as `\u{…}`. Text without such characters is returned as it is (a backslash alone is
/// kept, so ordinary paths and regexes read as they are).
pub fn escape(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Longest line [`for_terminal`] prints, in characters: far more than any line of a report
/// (a table row, a broker's reason), far less than a 64 KiB version string from a pod.
pub const MAX_TERMINAL_LINE: usize = 1000;

/// Text for a terminal (a whole report, or one line): every unsafe character escaped as
/// [`escape`] does, except the line breaks `\n` that separate the report's own lines, and each
/// line at most [`MAX_TERMINAL_LINE`] characters. An escape sequence, an OSC title or a carriage
/// return from outside is shown, never obeyed; a huge string is cut, not scrolled through.
pub fn for_terminal(text: &str) -> String {
    text.split('\n')
        .map(|line| for_status(line, MAX_TERMINAL_LINE))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Outside text as a Rollout's status (or an Event) may keep it: escaped, then at most
/// `max_chars` characters (an escape is never cut in half).
pub fn for_status(text: &str, max_chars: usize) -> String {
    // Shorten first (cheap on a huge body), then escape, then shorten what escaping grew.
    let head = shorten(text, max_chars);
    let escaped = escape(&head);
    if escaped.chars().count() <= max_chars {
        return escaped;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in head.chars() {
        let piece = escape(&c.to_string());
        let n = piece.chars().count();
        if used + n > max_chars {
            break;
        }
        used += n;
        out.push_str(&piece);
    }
    out.push(ELLIPSIS);
    out
}

/// `text` with every occurrence of each of `secrets` replaced by `[redacted]`, and also the
/// start of one where `text` was cut (a shortened excerpt ending in `…` that stopped inside a
/// secret would otherwise show its first characters).
pub fn redact<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().map(AsRef::as_ref).filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
        let Some(head) = out.strip_suffix(ELLIPSIS) else {
            continue;
        };
        // The longest proper prefix of the secret (4 characters or more) that ends the text.
        let cut = secret
            .char_indices()
            .map(|(i, _)| i)
            .chain([secret.len()])
            .filter(|&i| i >= 4 && i < secret.len())
            .rev()
            .find(|&i| head.ends_with(&secret[..i]));
        if let Some(i) = cut {
            out = format!("{}[redacted]{ELLIPSIS}", &head[..head.len() - i]);
        }
    }
    out
}

/// A one-line excerpt of a body for an error message: trimmed, printable, at most `max_chars`
/// characters.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    shorten(&printable(text.trim()), max_chars)
}

/// Outside text for an HTML page (element content or a quoted attribute value): unsafe
/// characters written out as [`for_terminal`] does (so a bidirectional override cannot reorder
/// what a reader sees) and cut at [`MAX_TERMINAL_LINE`] per line, then `&`, `<`, `>`, `"` and `'`
/// as character references, so nothing from a pod, the broker or Prometheus can open a tag, an
/// attribute or a script.
pub fn for_html(text: &str) -> String {
    let safe = for_terminal(text);
    let mut out = String::with_capacity(safe.len() + 16);
    for c in safe.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_by_characters() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("exactly", 7), "exactly");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("ééééé", 2), "éé…");
        assert_eq!(shorten("🦀🦀🦀", 1), "🦀…");
        assert_eq!(shorten("", 0), "");
        assert_eq!(shorten("a", 0), "…");
    }

    #[test]
    fn shortens_by_bytes_on_character_boundaries() {
        assert_eq!(shorten_bytes("abc", 5), "abc");
        assert_eq!(shorten_bytes("ééé", 3), "é…");
        assert_eq!(shorten_bytes("ééé", 6), "ééé");
        let long = "é".repeat(600);
        let cut = shorten_bytes(&long, 1000);
        assert!(cut.len() <= 1003 && cut.ends_with('…'), "{}", cut.len());
        assert_eq!(shorten_bytes("🦀", 2), "…");
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("abc\ndef", 100), "abc def");
        assert_eq!(excerpt("  abcdef\n", 3), "abc…");
        assert_eq!(excerpt("\u{1b}[2Jboom", 100), " [2Jboom");
        assert_eq!(printable("a\tb\r\nc\0"), "a b  c ");
    }

    #[test]
    fn terminal_lines_are_cut_after_escaping() {
        let hostile = format!("v\u{1b}]0;pwned\u{7}\r{}\nnext", "A".repeat(64 * 1024));
        let shown = for_terminal(&hostile);
        let lines: Vec<&str> = shown.split('\n').collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(
            lines[0].starts_with("v\\u{1b}]0;pwned\\u{7}\\rAAA"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[0].chars().count(), MAX_TERMINAL_LINE + 1);
        assert!(lines[0].ends_with(ELLIPSIS));
        assert_eq!(lines[1], "next");
        let short = "NAME  VERSION\nshop  1.0.0\n";
        assert_eq!(for_terminal(short), short);
    }

    #[test]
    fn escapes_what_could_drive_a_terminal() {
        let cases = [
            ("plain 1.2.3", "plain 1.2.3"),
            ("C:\\path", "C:\\path"),
            ("a\rc\td", "a\\rc\\td"),
            (
                "\u{1b}[2J\u{1b}]0;owned\u{7}",
                "\\u{1b}[2J\\u{1b}]0;owned\\u{7}",
            ),
            ("nul\0del\u{7f}c1\u{9b}", "nul\\u{0}del\\u{7f}c1\\u{9b}"),
            ("v1\u{202e}2.0", "v1\\u{202e}2.0"),
            ("é🦀", "é🦀"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape(raw), want, "{raw:?}");
            assert_eq!(for_terminal(raw), want);
            assert!(!for_terminal(raw).chars().any(is_unsafe));
        }
        assert_eq!(escape("a\nb"), "a\\nb", "one value: on one line");
        let report = "verdict: Pass\nreason: \u{1b}[31mred\r\n";
        assert_eq!(
            for_terminal(report),
            "verdict: Pass\nreason: \\u{1b}[31mred\\r\n"
        );
    }

    #[test]
    fn secrets_are_redacted_whole_and_where_an_excerpt_cut_them() {
        let secrets = ["tok-1234567890", "pw"];
        assert_eq!(
            redact("denied tok-1234567890 and pw", &secrets),
            "denied [redacted] and [redacted]"
        );
        let cut = format!("{}tok-12345…", "x".repeat(10));
        assert_eq!(
            redact(&cut, &secrets),
            format!("{}[redacted]…", "x".repeat(10))
        );
        // Too short a tail to tell from ordinary text, and no cut: left as it is.
        assert_eq!(redact("a to…", &secrets), "a to…");
        assert_eq!(redact("tok-12", &secrets), "tok-12");
        assert_eq!(redact("nothing", &[""]), "nothing");
    }

    #[test]
    fn status_text_is_escaped_and_capped() {
        assert_eq!(for_status("1.2.3", 64), "1.2.3");
        let pod = format!("2.0.0{}", "x".repeat(64 * 1024));
        let kept = for_status(&pod, 256);
        assert_eq!(kept.chars().count(), 257, "256 and the mark");
        assert!(kept.starts_with("2.0.0x") && kept.ends_with('…'));
        let hostile = "\u{1b}".repeat(100);
        let kept = for_status(&hostile, 20);
        assert!(kept.chars().count() <= 21, "{kept}");
        assert!(
            kept.starts_with("\\u{1b}\\u{1b}") && kept.ends_with('…'),
            "{kept}"
        );
        assert!(!kept.contains('\u{1b}'));
    }

    #[test]
    fn html_text_cannot_open_a_tag_an_attribute_or_reorder_a_line() {
        let hostile = "<script>alert('x')</script>\" onload=\"x\" &amp; \u{202e}evil\u{1b}[2J";
        let shown = for_html(hostile);
        assert!(!shown.contains(['<', '>', '"', '\'']), "{shown}");
        assert!(
            shown.contains("&lt;script&gt;") && shown.contains("&amp;amp;"),
            "{shown}"
        );
        assert!(
            shown.contains("\\u{202e}") && !shown.contains('\u{202e}'),
            "{shown}"
        );
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(for_html("plain text 1.0"), "plain text 1.0");
    }
}
