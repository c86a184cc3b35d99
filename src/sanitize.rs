//! Making untrusted text safe to show: on a terminal, in a one-line message, or in a config-file comment.
//!
//! Everything from the list is hostile until proven otherwise (an organisation name can carry an escape
//! sequence that rewrites the admin's terminal, or a newline that starts a new directive in a config file).

/// Escapes control characters (including newlines, escape and the Unicode bidi/line-separator controls) so
/// the text prints as one harmless line. Printable text, Norwegian letters included, is left alone.
pub fn for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dangerous(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`for_terminal`], and shortened to at most `max` characters (with `…`) for use inside a warning.
pub fn excerpt(text: &str, max: usize) -> String {
    let escaped = for_terminal(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut short: String = escaped.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Free text reduced to one clean line: every control or invisible formatting character becomes a space,
/// runs of white space fold to one, and the ends are trimmed. Used for organisation names.
pub fn one_line(text: &str) -> String {
    // Fast path: printable ASCII with single inner spaces is already one clean line.
    let clean = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ");
    if clean {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || is_dangerous(c) {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Text fit for a comment line in any generated config file (Postfix and Exim `#`, PowerShell `#`):
/// one line, no control or invisible characters, and none of the characters that mean something to a
/// shell, a template engine or a config parser (`\\ ` `` ` `` `$ { } < > " |`), each replaced by `_`.
/// Cut to 160 characters. Letters of any script, digits and ordinary punctuation stay.
pub fn comment(text: &str) -> String {
    comment_cow(text).into_owned()
}

/// [`comment`], borrowing text that is already one clean line of safe characters.
pub fn comment_cow(text: &str) -> std::borrow::Cow<'_, str> {
    let clean = text.len() <= 160
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
        && text.chars().all(comment_safe);
    if clean {
        return text.into();
    }
    let line = one_line(text);
    let mut out = String::with_capacity(line.len());
    for c in line.chars().take(160) {
        out.push(if comment_safe(c) { c } else { '_' });
    }
    out.trim_end().to_string().into()
}

fn comment_safe(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || b" .,:;-_()&'/+@!?%=*[]#~^".contains(&(c as u8));
    }
    c.is_alphanumeric() && !is_dangerous(c)
}

/// Control characters, plus the Unicode characters that move or hide text on a terminal or in an editor:
/// line/paragraph separators, bidi overrides and isolates, zero-width characters and the BOM.
pub fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_controls_and_keeps_norwegian_letters() {
        assert_eq!(for_terminal("Sør\x1b[31mbank\n"), "Sør\\u{1b}[31mbank\\n");
        assert_eq!(for_terminal("Ærlig Øst Ås"), "Ærlig Øst Ås");
        assert_eq!(for_terminal("a\u{202E}b"), "a\\u{202e}b");
    }

    #[test]
    fn one_line_folds_breaks_and_controls() {
        assert_eq!(one_line("  Bank\r\n ASA\u{2028}x\t\0 "), "Bank ASA x");
        assert_eq!(one_line("\n\n"), "");
    }

    #[test]
    fn comment_text_is_one_inert_line() {
        assert_eq!(
            comment("Sør-Bank ASA (Oslo) & Co."),
            "Sør-Bank ASA (Oslo) & Co."
        );
        assert_eq!(comment("a\nmatch=x\r\u{2028}b"), "a match=x b");
        assert_eq!(
            comment("${run{/bin/sh}} `id` $(id) <#"),
            "__run_/bin/sh__ _id_ _(id) _#"
        );
        assert_eq!(comment("trailing\\"), "trailing_");
        assert_eq!(comment(&"x".repeat(500)).len(), 160);
        assert_eq!(
            comment("https://bits.no/a%20b.csv?v=1"),
            "https://bits.no/a%20b.csv?v=1"
        );
    }

    #[test]
    fn excerpt_shortens() {
        assert_eq!(excerpt("abcdef", 4), "abc…");
        assert_eq!(excerpt("abc", 4), "abc");
    }
}
