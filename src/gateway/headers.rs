//! The request headers that pass the gateway: an allow-list of what the Claude
//! Code CLI sends, each with a bounded value. Everything else (the sandbox's
//! credentials, `cookie`, `x-forwarded-for`, workspace or organisation
//! selectors, anything new) is dropped.

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

/// The forwarded request headers and the longest value each may have, from the
/// headers Claude Code 2.1.330 sends (captured from a run, and the list its own
/// proxy forwards) plus what the Messages API documents: `anthropic-version`
/// and `anthropic-beta`. `content-type` is not on the list: the gateway sets it
/// itself (a body is always JSON), as it sets the credential and `accept-encoding`.
pub const FORWARDED_HEADERS: &[(&str, usize)] = &[
    ("accept", 128),
    ("anthropic-version", 32),
    // The CLI sends about 330 bytes of beta names; room for more.
    ("anthropic-beta", 2048),
    ("anthropic-dangerous-direct-browser-access", 8),
    ("user-agent", 256),
    ("x-app", 32),
    ("x-claude-code-session-id", 64),
    ("x-claude-code-agent-id", 64),
    ("x-claude-code-parent-agent-id", 64),
    ("x-client-request-id", 128),
    ("x-anthropic-additional-protection", 64),
    ("x-stainless-arch", 32),
    ("x-stainless-lang", 32),
    ("x-stainless-os", 32),
    ("x-stainless-package-version", 32),
    ("x-stainless-retry-count", 8),
    ("x-stainless-runtime", 32),
    ("x-stainless-runtime-version", 32),
    ("x-stainless-timeout", 16),
    ("x-stainless-helper", 64),
    ("x-stainless-helper-method", 64),
];

/// Why a request's headers were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderRefusal {
    /// An allowed header's value is longer than its bound.
    #[error("header `{name}` is longer than {max} bytes")]
    TooLong { name: &'static str, max: usize },
    /// An allowed header's value holds a byte outside printable ASCII.
    #[error("header `{0}` holds characters other than printable ASCII")]
    NotText(&'static str),
    /// An allowed header was sent more than once.
    #[error("header `{0}` was sent more than once")]
    Repeated(&'static str),
}

/// The allowed headers of `headers`, checked; everything else is left behind.
pub fn forwarded(headers: &HeaderMap) -> Result<Vec<(HeaderName, HeaderValue)>, HeaderRefusal> {
    let mut kept = Vec::new();
    for (name, max) in FORWARDED_HEADERS {
        let mut values = headers.get_all(*name).iter();
        let Some(value) = values.next() else {
            continue;
        };
        if values.next().is_some() {
            return Err(HeaderRefusal::Repeated(name));
        }
        if value.len() > *max {
            return Err(HeaderRefusal::TooLong { name, max: *max });
        }
        if !value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(HeaderRefusal::NotText(name));
        }
        kept.push((HeaderName::from_static(name), value.clone()));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn keeps_the_allowed_and_drops_the_rest() {
        let kept = forwarded(&map(&[
            ("anthropic-version", b"2023-06-01"),
            ("cookie", b"a=b"),
            ("x-forwarded-for", b"10.0.0.1"),
            ("x-api-key", b"sk-sandbox"),
            ("content-type", b"text/plain"),
            ("x-stainless-retry-count", b"2"),
        ]))
        .unwrap();
        let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["anthropic-version", "x-stainless-retry-count"]);
    }

    #[test]
    fn refuses_long_repeated_or_binary_values() {
        let long = "b".repeat(2049);
        assert_eq!(
            forwarded(&map(&[("anthropic-beta", long.as_bytes())])),
            Err(HeaderRefusal::TooLong {
                name: "anthropic-beta",
                max: 2048
            })
        );
        assert_eq!(
            forwarded(&map(&[("x-app", b"cli"), ("x-app", b"cli")])),
            Err(HeaderRefusal::Repeated("x-app"))
        );
        assert_eq!(
            forwarded(&map(&[("user-agent", b"\xff")])),
            Err(HeaderRefusal::NotText("user-agent"))
        );
        assert_eq!(
            forwarded(&map(&[("user-agent", b"a\tb")])),
            Err(HeaderRefusal::NotText("user-agent"))
        );
    }
}
