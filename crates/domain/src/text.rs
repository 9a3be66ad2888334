//! Text rules shared by several entities.
//!
//! Two kinds of free text:
//! - **multi-line text** ([`bounded`], [`optional`]: descriptions, welcome
//!   messages, disclaimers, personas): no control characters other than
//!   TAB, LF and CR;
//! - **single-line display text** ([`single_line`]: site, tenant and
//!   content names, audiences, fonts): no control characters at all, no
//!   line or paragraph separators, and no invisible formatting characters
//!   that can disguise what a name shows ([`is_hidden_format`]: bidi
//!   overrides, embeddings, isolates and marks, zero-width spaces, the
//!   byte-order mark).
//!
//! Both are checked on the text as sent, before trimming, so a control
//! character is never silently dropped from either end.

/// The message for a control character in multi-line text.
pub const CONTROL_MESSAGE: &str =
    "must not contain control characters (only tabs and line breaks are allowed)";
/// The message for a control character or line break in single-line text.
pub const SINGLE_LINE_MESSAGE: &str =
    "must be a single line without control characters or line breaks";
/// The message for an invisible formatting character in single-line text.
pub const HIDDEN_FORMAT_MESSAGE: &str =
    "must not contain invisible formatting characters such as bidi overrides or zero-width spaces";

/// Whether `c` is allowed in multi-line text: anything but a control
/// character (C0, DEL, C1), except TAB, LF and CR.
pub fn is_multi_line_char(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// Whether `c` is an invisible formatting character that may not appear in
/// a display name: the bidi embeddings and overrides (U+202A–U+202E),
/// isolates (U+2066–U+2069) and marks (U+200E, U+200F, U+061C); the
/// zero-width space (U+200B), word joiner and invisible operators
/// (U+2060–U+2064); the byte-order mark (U+FEFF); the Mongolian vowel
/// separator (U+180E); the interlinear annotation marks (U+FFF9–U+FFFB).
///
/// The zero-width joiner and non-joiner (U+200D, U+200C) stay allowed:
/// emoji sequences and several scripts (Persian, Indic) need them.
pub fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Checks multi-line text for control characters (TAB, LF and CR allowed).
pub fn check_multi_line(raw: &str) -> Result<(), String> {
    if raw.chars().all(is_multi_line_char) {
        Ok(())
    } else {
        Err(CONTROL_MESSAGE.into())
    }
}

/// Checks single-line display text: no control characters (TAB, LF and CR
/// included), no line or paragraph separators (U+2028, U+2029), no
/// [hidden formatting characters](is_hidden_format).
pub fn check_single_line(raw: &str) -> Result<(), String> {
    if raw
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(SINGLE_LINE_MESSAGE.into());
    }
    if raw.chars().any(is_hidden_format) {
        return Err(HIDDEN_FORMAT_MESSAGE.into());
    }
    Ok(())
}

fn trimmed_within(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        if min == 1 {
            return Err("must not be empty".into());
        }
        return Err(format!("must be at least {min} characters"));
    }
    if len > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(value.to_string())
}

/// Multi-line text: no control characters but TAB, LF and CR; trimmed; a
/// length in characters within `min..=max`.
pub fn bounded(raw: &str, min: usize, max: usize) -> Result<String, String> {
    check_multi_line(raw)?;
    trimmed_within(raw, min, max)
}

/// Like [`bounded`] with no minimum, but an empty result becomes `None`.
pub fn optional(raw: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(raw) => {
            let value = bounded(raw, 0, max)?;
            Ok((!value.is_empty()).then_some(value))
        }
    }
}

/// Single-line display text ([`check_single_line`]); trimmed; a length in
/// characters within `min..=max`.
pub fn single_line(raw: &str, min: usize, max: usize) -> Result<String, String> {
    check_single_line(raw)?;
    trimmed_within(raw, min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_counts_characters_not_bytes() {
        assert_eq!(bounded(" héllo ", 1, 5), Ok("héllo".into()));
        assert!(bounded("héllo!", 1, 5).is_err());
        assert_eq!(bounded("", 1, 5), Err("must not be empty".into()));
        assert_eq!(
            bounded("ab", 3, 5),
            Err("must be at least 3 characters".into())
        );
        assert_eq!(single_line(" héllo ", 1, 5), Ok("héllo".into()));
        assert!(single_line("héllo!", 1, 5).is_err());
    }

    #[test]
    fn optional_maps_blank_to_none() {
        assert_eq!(optional(None, 5), Ok(None));
        assert_eq!(optional(Some("  "), 5), Ok(None));
        assert_eq!(optional(Some(" a "), 5), Ok(Some("a".into())));
        assert!(optional(Some("abcdef"), 5).is_err());
        assert_eq!(
            optional(Some("a\u{0}"), 5),
            Err(CONTROL_MESSAGE.to_string())
        );
    }

    /// (text, valid as multi-line, valid as single-line)
    const TABLE: &[(&str, bool, bool)] = &[
        // Near misses that must stay valid.
        ("Plain name", true, true),
        ("Café crème", true, true),
        ("Ünïcödé Ñame", true, true),
        ("日本語のガイド", true, true),
        ("导出数据", true, true),
        ("مرحبا بك", true, true),
        ("שלום", true, true),
        ("Rocket 🚀", true, true),
        ("Dev \u{1F469}\u{200D}\u{1F4BB} team", true, true), // ZWJ emoji sequence
        (
            "Family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            true,
            true,
        ), // ZWJ emoji sequence
        (
            "\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}",
            true,
            true,
        ), // ZWNJ in Persian
        ("Flag 🇫🇷", true, true),
        (
            "England \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            true,
            true,
        ), // tag sequence
        ("a\u{00A0}b", true, true), // no-break space
        ("x < y & z", true, true),
        // Line breaks and tabs: multi-line only.
        ("line one\nline two", true, false),
        ("windows\r\nline", true, false),
        ("tab\tseparated", true, false),
        ("trailing newline\n", true, false),
        ("\n leading newline", true, false),
        ("line\u{2028}separator", true, false),
        ("paragraph\u{2029}separator", true, false),
        // Control characters: never.
        ("nul\u{0}", false, false),
        ("\u{0}", false, false),
        ("bell\u{7}", false, false),
        ("escape\u{1b}[31m", false, false),
        ("backspace\u{8}", false, false),
        ("delete\u{7f}", false, false),
        ("next line\u{85}", false, false),
        ("\u{85}", false, false),
        ("c1 csi\u{9b}", false, false),
        ("vertical\u{b}tab", false, false),
        ("form\u{c}feed", false, false),
        // Invisible formatting: multi-line text may carry it (right-to-left
        // prose needs marks), display names may not.
        ("evil\u{202E}gnp.exe", true, false),
        ("\u{202A}embedded", true, false),
        ("\u{202B}embedded", true, false),
        ("\u{202C}pop", true, false),
        ("\u{202D}override", true, false),
        ("isolate\u{2066}x\u{2069}", true, false),
        ("\u{2067}rtl isolate", true, false),
        ("\u{2068}first strong", true, false),
        ("zero\u{200B}width", true, false),
        ("lrm\u{200E}", true, false),
        ("rlm\u{200F}", true, false),
        ("alm\u{061C}", true, false),
        ("\u{FEFF}bom", true, false),
        ("word\u{2060}joiner", true, false),
        ("mongolian\u{180E}", true, false),
        ("annotation\u{FFF9}", true, false),
    ];

    #[test]
    fn character_rules() {
        for (text, multi, single) in TABLE {
            assert_eq!(
                check_multi_line(text).is_ok(),
                *multi,
                "multi-line {text:?}"
            );
            assert_eq!(
                check_single_line(text).is_ok(),
                *single,
                "single-line {text:?}"
            );
            assert_eq!(bounded(text, 1, 100).is_ok(), *multi, "bounded {text:?}");
            assert_eq!(
                single_line(text, 1, 100).is_ok(),
                *single,
                "single_line {text:?}"
            );
        }
    }

    #[test]
    fn messages_say_what_is_wrong() {
        assert_eq!(
            single_line("a\nb", 1, 10),
            Err(SINGLE_LINE_MESSAGE.to_string())
        );
        assert_eq!(
            single_line("a\u{202E}b", 1, 10),
            Err(HIDDEN_FORMAT_MESSAGE.to_string())
        );
        assert_eq!(bounded("a\u{1b}b", 1, 10), Err(CONTROL_MESSAGE.to_string()));
    }

    #[test]
    fn control_characters_are_not_trimmed_away() {
        // `trim` would drop a trailing LF, TAB or NEL (U+0085 is
        // whitespace); the check runs first.
        for raw in ["name\n", "\tname", "name\u{85}", "\u{85}name"] {
            assert!(single_line(raw, 1, 20).is_err(), "{raw:?}");
        }
        assert!(bounded("name\u{85}", 1, 20).is_err());
        assert_eq!(bounded("name\n", 1, 20), Ok("name".into()));
    }
}
