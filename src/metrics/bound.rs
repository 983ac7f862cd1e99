//! Label values that come from outside the process, kept few: every distinct
//! value is a time series Prometheus stores for ever, so a label fed by a
//! tenant's or a sandbox's choices must not grow without end.

use std::collections::HashSet;
use std::sync::Mutex;

/// The value a label takes for anything past its bound.
pub const OTHER: &str = "other";

/// Longest value kept as given.
const MAX_LEN: usize = 64;

/// A label whose values are kept as given while they are plain (1 to 64 of
/// `A-Z a-z 0-9 . _ : / -`) and while fewer than `max` distinct ones were
/// seen; anything else is [`OTHER`].
#[derive(Debug)]
pub struct Bounded {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl Bounded {
    /// A bound of `max` distinct values (besides [`OTHER`]).
    pub fn new(max: usize) -> Bounded {
        Bounded {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// The label value for `raw`.
    pub fn value(&self, raw: &str) -> String {
        if !is_plain(raw) {
            return OTHER.to_string();
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(raw) {
            return raw.to_string();
        }
        if seen.len() >= self.max {
            return OTHER.to_string();
        }
        seen.insert(raw.to_string());
        raw.to_string()
    }
}

/// Short and made of characters that need no escaping anywhere.
fn is_plain(value: &str) -> bool {
    (1..=MAX_LEN).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'))
}

/// An HTTP method as a label: the standard ones as given, anything else
/// (extension methods are any token a client likes) is [`OTHER`].
pub fn http_method(method: &str) -> &str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_kept_until_the_bound() {
        let bound = Bounded::new(2);
        assert_eq!(bound.value("acme"), "acme");
        assert_eq!(bound.value("claude-sonnet-4-5"), "claude-sonnet-4-5");
        assert_eq!(bound.value("third"), OTHER);
        assert_eq!(bound.value("acme"), "acme", "a value seen stays itself");
    }

    #[test]
    fn odd_values_are_other() {
        let bound = Bounded::new(100);
        for odd in [
            "",
            "with space",
            "quote\"",
            "new\nline",
            "é",
            &"x".repeat(65),
        ] {
            assert_eq!(bound.value(odd), OTHER, "{odd:?}");
        }
        assert_eq!(bound.value(&"x".repeat(64)), "x".repeat(64));
    }

    #[test]
    fn unknown_http_methods_are_other() {
        assert_eq!(http_method("GET"), "GET");
        assert_eq!(http_method("PATCH"), "PATCH");
        assert_eq!(http_method("BREW"), OTHER);
        assert_eq!(http_method("get"), OTHER);
    }
}
