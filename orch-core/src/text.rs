//! Shortening text to a number of characters (never inside a UTF-8 sequence): one rule for every
//! event field, tool result, log line and message the crate clips.

/// The first `max` characters of `s`, and whether anything was cut.
pub(crate) fn prefix_chars(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// `s` cut to `max` characters, with `marker` appended when something was cut.
pub(crate) fn clip_chars(s: &str, max: usize, marker: &str) -> String {
    match prefix_chars(s, max) {
        (head, true) => format!("{head}{marker}"),
        (whole, false) => whole.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_characters() {
        assert_eq!(prefix_chars("héllo", 2), ("hé", true));
        assert_eq!(prefix_chars("hé", 2), ("hé", false));
        assert_eq!(clip_chars("🚀🚀🚀", 1, "…"), "🚀…");
        assert_eq!(clip_chars("abc", 3, "…"), "abc");
    }
}
