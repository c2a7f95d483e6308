//! Text from elsewhere made fit to show: shortened on character boundaries, control characters
//! replaced, so a long or hostile body cannot flood a log line, an Event or a terminal.
//!
//! Two limits, for two kinds of reader: [`shorten`] counts characters (people, chat messages);
//! [`shorten_bytes`] counts bytes (APIs whose limits are in bytes, such as an Event's note).
//! Both mark a cut with `…`, never split a character, and leave text within the limit as it is.

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

/// A one-line excerpt of a body for an error message: trimmed, printable, at most `max_chars`
/// characters.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    shorten(&printable(text.trim()), max_chars)
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
}
