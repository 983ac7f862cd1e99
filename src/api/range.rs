//! The `Range` header of a download (RFC 9110 §14): one range of bytes is
//! served as `206 Partial Content`; a range wholly past the end is `416`;
//! anything else (another unit, several ranges, a malformed header) is
//! ignored and the whole file served, as the RFC allows.

use std::ops::Range;

use axum::http::HeaderValue;

/// What a download sends, for a file of a known size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The whole file (200).
    Whole,
    /// These bytes (206).
    Part(Range<u64>),
    /// Nothing: the range starts past the end (416).
    Unsatisfiable,
}

/// The part of a file of `size` bytes that `header` asks for.
pub fn wanted(header: Option<&HeaderValue>, size: u64) -> Wanted {
    let Some(spec) = header
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().strip_prefix("bytes="))
    else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(size.saturating_sub(suffix)..size)
            }
        }
        // bytes=A- and bytes=A-B.
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|end| end < start) {
                return Wanted::Whole;
            }
            if start >= size {
                return Wanted::Unsatisfiable;
            }
            let end = end.map_or(size, |end| end.saturating_add(1).min(size));
            Wanted::Part(start..end)
        }
        _ => Wanted::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(text: &str, size: u64) -> Wanted {
        wanted(Some(&HeaderValue::from_str(text).unwrap()), size)
    }

    #[test]
    fn one_range_of_bytes_is_served_and_the_rest_ignored() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(asked("bytes=0-3", 10), Wanted::Part(0..4));
        assert_eq!(asked("bytes=4-", 10), Wanted::Part(4..10));
        assert_eq!(asked("bytes=4-400", 10), Wanted::Part(4..10));
        assert_eq!(asked("bytes=-3", 10), Wanted::Part(7..10));
        assert_eq!(asked("bytes=-30", 10), Wanted::Part(0..10));
        assert_eq!(asked("bytes=9-9", 10), Wanted::Part(9..10));
        assert_eq!(asked("bytes=10-", 10), Wanted::Unsatisfiable);
        assert_eq!(asked("bytes=10-20", 10), Wanted::Unsatisfiable);
        assert_eq!(asked("bytes=-0", 10), Wanted::Unsatisfiable);
        assert_eq!(asked("bytes=0-", 0), Wanted::Unsatisfiable);
        for ignored in [
            "bytes=0-1,4-5",
            "items=0-3",
            "bytes=5-2",
            "bytes=a-b",
            "bytes=",
            "bytes=-",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(asked(ignored, 10), Wanted::Whole, "{ignored}");
        }
    }
}
