//! Making untrusted text (anything derived from a request or a queue file:
//! names, user names, parser messages, reasons) safe to show. Every place
//! that logs, prints or mails such text passes it through [`escape`], so a
//! newline cannot forge a log line and an escape sequence cannot reach
//! root's terminal.
//!
//! Control characters (C0, DEL, C1) and the invisible Unicode characters
//! that reorder or hide text (bidirectional overrides and isolates,
//! zero-width characters, line and paragraph separators) are written as
//! `\n`, `\r`, `\t` or `\u{hex}`. Everything else, backslashes included,
//! is kept, so escaping is idempotent: text escaped twice reads the same as
//! text escaped once. It is meant for display, not to be reversed.

use std::borrow::Cow;
use std::fmt::Write;

/// True for a character that must not reach a log or terminal as is: a
/// control character, or one that reorders or hides the text around it.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'              // Arabic letter mark
                | '\u{180e}'        // Mongolian vowel separator
                | '\u{200b}'..='\u{200f}' // zero-width characters, LRM, RLM
                | '\u{2028}'..='\u{202e}' // line/paragraph separators, bidi embeddings and overrides
                | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
                | '\u{2066}'..='\u{206f}' // bidi isolates, deprecated format characters
                | '\u{feff}'        // zero-width no-break space (BOM)
                | '\u{fff9}'..='\u{fffb}' // interlinear annotation
        )
}

/// `text` with every unsafe character (see [`is_unsafe_char`]) written as
/// an escape; borrowed when there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Bytes that should be text (a file name, a program's output): valid UTF-8
/// is escaped like [`escape`], each invalid byte is written as `\xHH`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe_char(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "home.dyn.example.com: zone has no A record (Grüße, 日本, \\n literal)";
        assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn line_breaks_cannot_start_a_new_log_line() {
        let forged = "x\n2026-01-01T00:00:00Z  INFO applied evil\r\u{85}\u{2028}";
        let escaped = escape(forged);
        assert_eq!(
            escaped,
            "x\\n2026-01-01T00:00:00Z  INFO applied evil\\r\\u{85}\\u{2028}"
        );
        assert_eq!(escaped.lines().count(), 1);
    }

    #[test]
    fn terminal_escapes_and_reordering_are_neutralised() {
        let evil = "eve\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}gnp.exe\u{2066}\u{200b}\u{feff}\u{7f}\0";
        let escaped = escape(evil);
        assert_eq!(
            escaped,
            "eve\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{202e}gnp.exe\\u{2066}\\u{200b}\\u{feff}\\u{7f}\\u{0}"
        );
        assert!(!escaped.chars().any(is_unsafe_char));
    }

    #[test]
    fn escaping_is_idempotent() {
        for text in [
            "a\nb",
            "\u{1b}[1m",
            "tab\there",
            "\\u{1b} literal",
            "\u{202e}x",
        ] {
            let once = escape(text).into_owned();
            assert_eq!(escape(&once), once, "{text:?}");
        }
    }

    #[test]
    fn bytes_show_invalid_utf8_as_hex() {
        assert_eq!(
            escape_bytes(b"bad\xffname\n_A.json"),
            "bad\\xffname\\n_A.json"
        );
        assert_eq!(escape_bytes("ok_ü".as_bytes()), "ok_ü");
        assert_eq!(escape_bytes(b"\xc3"), "\\xc3");
    }
}
