//! Shortening text for events and live display without splitting a character.

/// The longest prefix of `s` that is at most `max_bytes` long and ends on a char boundary.
pub(super) fn prefix_within_bytes(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Caps `s` at `max_bytes`, saying how many bytes were dropped so a reader knows
/// the text is incomplete (the raw transcript keeps the whole of it).
pub(super) fn cap_bytes(s: String, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s;
    }
    let kept = prefix_within_bytes(&s, max_bytes);
    let dropped = s.len() - kept.len();
    format!("{kept}\n[… truncated by agentd: {dropped} more bytes]")
}

/// Shortens `s` to at most `max_chars` characters, ending with `…` when cut.
pub(super) fn ellipsize(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_string(),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let mut out: String = s.chars().take(keep).collect();
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_never_splits_a_character() {
        let s = "aé€😀";
        assert_eq!(prefix_within_bytes(s, 0), "");
        assert_eq!(prefix_within_bytes(s, 1), "a");
        assert_eq!(prefix_within_bytes(s, 2), "a");
        assert_eq!(prefix_within_bytes(s, 3), "aé");
        assert_eq!(prefix_within_bytes(s, 5), "aé");
        assert_eq!(prefix_within_bytes(s, 6), "aé€");
        assert_eq!(prefix_within_bytes(s, 9), "aé€");
        assert_eq!(prefix_within_bytes(s, 10), s);
        assert_eq!(prefix_within_bytes(s, 100), s);
    }

    #[test]
    fn cap_names_the_dropped_bytes() {
        assert_eq!(cap_bytes("short".into(), 5), "short");
        let capped = cap_bytes("€€€".into(), 4);
        assert_eq!(capped, "€\n[… truncated by agentd: 6 more bytes]");
    }

    #[test]
    fn ellipsize_counts_characters() {
        assert_eq!(ellipsize("abc", 3), "abc");
        assert_eq!(ellipsize("abcd", 3), "ab…");
        assert_eq!(ellipsize("日本語テキスト", 4), "日本語…");
        assert_eq!(ellipsize("", 0), "");
        assert_eq!(ellipsize("x", 0), "…");
    }
}
