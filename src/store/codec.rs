//! Conversions between the store's records and what the columns hold, shared by
//! both dialects: counts, listing cursors, event bodies, the clock.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use super::StoreError;
use crate::execution::EventBody;

/// Listing page size when the caller gives none.
pub(super) const DEFAULT_PAGE: u32 = 50;
/// Largest listing page.
pub(super) const MAX_PAGE: u32 = 200;
/// Longest lease granted, whatever is asked (keeps the arithmetic in range).
const MAX_LEASE: Duration = Duration::from_secs(365 * 24 * 3600);

/// Now, to the microsecond: the precision both databases keep, so what a call
/// returns equals what a later read returns.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// When a lease taken `now` for `lease` runs out.
pub(super) fn lease_until(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    let lease = TimeDelta::from_std(lease.min(MAX_LEASE)).unwrap_or(TimeDelta::zero());
    (now + lease).trunc_subsecs(6)
}

/// A count as stored (signed 64-bit); counts beyond `i64::MAX` saturate.
pub(super) fn to_db_count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored count back; a negative one is corrupt.
pub(super) fn from_db_count(column: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(column, format!("negative count {value}")))
}

/// The page size actually used: 0 means the default, others are clamped.
pub(super) fn page_size(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.clamp(1, MAX_PAGE)
    }
}

/// The cursor that continues a listing of executions after `last_id`: the
/// id itself. Any text shaped like an id ([`EXECUTION_CURSOR_PATTERN`]) is
/// a cursor that can be read, so the API documents exactly what it takes.
pub(super) fn execution_cursor(last_id: &str) -> String {
    last_id.to_string()
}

/// The execution id a listing continues before.
pub(super) fn read_execution_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = cursor.as_bytes();
    let shaped = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        });
    shaped
        .then(|| cursor.to_string())
        .ok_or(StoreError::InvalidCursor)
}

/// The cursor that continues the audit log after the event `last_seq`.
pub(super) fn audit_cursor(last_seq: u64) -> String {
    last_seq.to_string()
}

/// The sequence number the audit log continues before: 1 to 18 digits
/// ([`AUDIT_CURSOR_PATTERN`]), so every one fits.
pub(super) fn read_audit_cursor(cursor: &str) -> Result<i64, StoreError> {
    if !(1..=18).contains(&cursor.len()) || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::InvalidCursor);
    }
    cursor.parse().map_err(|_| StoreError::InvalidCursor)
}

/// An event body as stored: its source and type for filtering, and the whole
/// body as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredBody {
    pub source: String,
    pub kind: String,
    pub json: String,
}

/// Splits an event body into its stored columns.
pub(super) fn encode_body(body: &EventBody) -> Result<StoredBody, StoreError> {
    let value = serde_json::to_value(body)
        .map_err(|err| corrupt("events.body", format!("cannot encode: {err}")))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(StoredBody {
        source: field("source"),
        kind: field("type"),
        json: value.to_string(),
    })
}

/// A stored event body back.
pub(super) fn decode_body(json: &str) -> Result<EventBody, StoreError> {
    serde_json::from_str(json).map_err(|err| corrupt("events.body", err.to_string()))
}

/// Free text from the agent, storable everywhere: PostgreSQL text cannot hold
/// NUL characters, so they become U+FFFD (on every backend, for one behaviour).
pub(super) fn storable_text(text: Option<&str>) -> Option<String> {
    text.map(|text| text.replace('\0', "\u{FFFD}"))
}

/// A [`StoreError::Corrupt`] for `column`.
pub(super) fn corrupt(column: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        column,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::AgentEvent;

    #[test]
    fn cursors_round_trip_and_match_their_documented_patterns() {
        let id = "0194f9a2-7c1e-7b3a-9d4e-123456789abc";
        assert_eq!(read_execution_cursor(&execution_cursor(id)).unwrap(), id);
        assert_eq!(read_audit_cursor(&audit_cursor(42)).unwrap(), 42);
        let execution = regex_lite::Regex::new(super::super::EXECUTION_CURSOR_PATTERN).unwrap();
        let audit = regex_lite::Regex::new(super::super::AUDIT_CURSOR_PATTERN).unwrap();
        // What the pattern admits the store reads, and nothing else.
        for text in [
            id,
            "",
            "!!!",
            "aGVsbG8",
            "0194F9A2-7c1e-7b3a-9d4e-123456789abc",
            "0194f9a2-7c1e-7b3a-9d4e-123456789ab",
            "0194f9a2x7c1e-7b3a-9d4e-123456789abc",
        ] {
            assert_eq!(
                read_execution_cursor(text).is_ok(),
                execution.is_match(text),
                "{text}"
            );
        }
        for text in [
            "0",
            "42",
            "999999999999999999",
            "9999999999999999999",
            "",
            "-1",
            "x",
        ] {
            assert_eq!(
                read_audit_cursor(text).is_ok(),
                audit.is_match(text),
                "{text}"
            );
        }
    }

    #[test]
    fn page_sizes_default_and_clamp() {
        assert_eq!(page_size(0), 50);
        assert_eq!(page_size(1), 1);
        assert_eq!(page_size(200), 200);
        assert_eq!(page_size(10_000), 200);
    }

    #[test]
    fn counts_saturate_and_refuse_negatives() {
        assert_eq!(to_db_count(7), 7);
        assert_eq!(to_db_count(u64::MAX), i64::MAX);
        assert_eq!(from_db_count("c", 7).unwrap(), 7);
        assert!(matches!(
            from_db_count("c", -1),
            Err(StoreError::Corrupt { column: "c", .. })
        ));
    }

    #[test]
    fn bodies_split_into_source_and_type() {
        let body = EventBody::Agent(AgentEvent::Text {
            message_id: None,
            text: "a\0b".into(),
        });
        let stored = encode_body(&body).unwrap();
        assert_eq!(stored.source, "agent");
        assert_eq!(stored.kind, "text");
        assert!(!stored.json.contains('\0'));
        assert_eq!(decode_body(&stored.json).unwrap(), body);
        assert!(matches!(
            decode_body("{}"),
            Err(StoreError::Corrupt {
                column: "events.body",
                ..
            })
        ));
    }

    #[test]
    fn clock_keeps_microseconds() {
        let at = now();
        assert_eq!(at.timestamp_subsec_nanos() % 1000, 0);
        let until = lease_until(at, Duration::from_millis(1500));
        assert_eq!(until - at, TimeDelta::milliseconds(1500));
        let far = lease_until(at, Duration::MAX);
        assert_eq!(far - at, TimeDelta::from_std(MAX_LEASE).unwrap());
    }

    #[test]
    fn nul_characters_are_replaced() {
        assert_eq!(storable_text(Some("a\0b")).as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(storable_text(None), None);
    }
}
