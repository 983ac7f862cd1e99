//! A request body, read whole and checked before anything goes upstream.
//!
//! A body must declare its length (the CLI always does), fit the Messages
//! API's own request limit, arrive within [`BODY_READ_TIMEOUT`], and — for the
//! Messages endpoints — be a JSON object with a `model` string and a `messages`
//! array. The bytes being read are counted against two budgets, the
//! execution's and the whole gateway's, so neither one sandbox nor many can
//! make agentd hold unbounded memory for bodies.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::{Body, Incoming};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::routes::Endpoint;

/// Largest request body: 32 MiB, the Messages API's own request size limit.
pub const MAX_REQUEST_BODY: usize = 32 << 20;

/// Request-body bytes one execution may hold at once: 64 MiB (two requests of
/// the largest size; the CLI sends one model request at a time, plus the
/// occasional side request).
pub const EXECUTION_BODY_BUDGET: usize = 2 * MAX_REQUEST_BODY;

/// Request-body bytes all executions together may hold at once: 256 MiB, so
/// a few hostile sandboxes cannot make agentd's memory grow past that for bodies.
pub const GATEWAY_BODY_BUDGET: usize = 8 * MAX_REQUEST_BODY;

/// Longest a request body may take to arrive (budget wait included), counted
/// from its head: 30 s. A 32 MiB body over the local socket takes well under
/// a second; a body that trickles is a sandbox holding the door.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest `model` value accepted: 256 bytes (model ids are under 64).
pub const MAX_MODEL_LEN: usize = 256;

/// Deepest nesting of arrays and objects accepted in a body: 128, the depth
/// common JSON parsers (serde_json's default among them) stop at. Tool input
/// schemas, the deepest part of the CLI's requests, nest a few dozen levels.
pub const MAX_JSON_DEPTH: usize = 128;

/// A byte budget shared by the bodies being read (a semaphore of bytes).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Bytes not held by any body now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    async fn take(&self, bytes: u32) -> Option<OwnedSemaphorePermit> {
        self.bytes.clone().acquire_many_owned(bytes).await.ok()
    }
}

/// A body read and checked; its bytes stay counted against the budgets until
/// this is dropped (once it has been sent upstream).
#[derive(Debug)]
pub struct ReadBody {
    /// The body.
    pub bytes: Bytes,
    _held: Vec<OwnedSemaphorePermit>,
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefusal {
    /// No `content-length` (e.g. chunked): the length must be known up front.
    #[error("a request body must declare its content-length")]
    LengthRequired,
    /// Declared larger than [`MAX_REQUEST_BODY`].
    #[error("request body of {0} bytes is larger than the {MAX_REQUEST_BODY}-byte limit")]
    TooLarge(u64),
    /// A `GET` with a body.
    #[error("this request takes no body")]
    Unexpected,
    /// The budgets stayed full until the deadline.
    #[error("the gateway is busy with other requests; retry")]
    Busy,
    /// The body did not arrive in time.
    #[error("request body not received within {} s", BODY_READ_TIMEOUT.as_secs())]
    Timeout,
    /// The connection failed while the body was read.
    #[error("cannot read the request body: {0}")]
    Read(String),
    /// Not a Messages request.
    #[error("the body is not a Messages request: {0}")]
    NotMessages(String),
    /// It asks upstream to reach the network or the organisation's files.
    #[error("refused: {0}")]
    Egress(#[from] super::egress::Egress),
}

impl BodyRefusal {
    /// The status to answer with: 411, 413, 529 (busy: the CLI retries) or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyRefusal::LengthRequired => StatusCode::LENGTH_REQUIRED,
            BodyRefusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyRefusal::Busy => {
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The Messages API error type for [`status`](Self::status).
    pub fn kind(&self) -> &'static str {
        match self {
            BodyRefusal::TooLarge(_) => "request_too_large",
            BodyRefusal::Busy => "overloaded_error",
            _ => "invalid_request_error",
        }
    }
}

/// Reads `body` for `endpoint` within `timeout`, holding its bytes against
/// every budget in `budgets`, and checks its shape.
pub async fn read(
    body: Incoming,
    endpoint: Endpoint,
    budgets: &[&BodyBudget],
    timeout: Duration,
) -> Result<ReadBody, BodyRefusal> {
    let deadline = Instant::now() + timeout;
    let declared = body.size_hint().exact();
    if !endpoint.takes_body() {
        return match declared {
            Some(0) => Ok(ReadBody {
                bytes: Bytes::new(),
                _held: Vec::new(),
            }),
            _ => Err(BodyRefusal::Unexpected),
        };
    }
    let length = declared.ok_or(BodyRefusal::LengthRequired)?;
    if length > MAX_REQUEST_BODY as u64 {
        return Err(BodyRefusal::TooLarge(length));
    }
    let length = length as usize;
    let mut held = Vec::with_capacity(budgets.len());
    for budget in budgets {
        let take = budget.take(length as u32);
        match tokio::time::timeout_at(deadline, take).await {
            Ok(Some(permit)) => held.push(permit),
            _ => return Err(BodyRefusal::Busy),
        }
    }
    let bytes = match tokio::time::timeout_at(deadline, collect(body, length)).await {
        Ok(result) => result?,
        Err(_) => return Err(BodyRefusal::Timeout),
    };
    check_messages_request(&bytes)?;
    super::egress::check(&bytes)?;
    Ok(ReadBody { bytes, _held: held })
}

async fn collect(mut body: Incoming, length: usize) -> Result<Bytes, BodyRefusal> {
    let mut bytes = BytesMut::with_capacity(length);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyRefusal::Read(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > length {
                return Err(BodyRefusal::Read("more bytes than declared".into()));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes.freeze())
}

/// The part of a Messages (or token-count) request the gateway insists on.
#[derive(Deserialize)]
struct Shape {
    model: String,
    #[allow(dead_code)]
    messages: Vec<IgnoredAny>,
}

/// A JSON object (nothing after it, nested at most [`MAX_JSON_DEPTH`] deep)
/// with a non-empty `model` string of at most [`MAX_MODEL_LEN`] bytes and a
/// `messages` array, each given once.
pub fn check_messages_request(body: &[u8]) -> Result<(), BodyRefusal> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(BodyRefusal::NotMessages(
            "the body must be a JSON object".into(),
        ));
    }
    if nesting_depth(body) > MAX_JSON_DEPTH {
        return Err(BodyRefusal::NotMessages(format!(
            "nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let shape: Shape =
        serde_json::from_slice(body).map_err(|e| BodyRefusal::NotMessages(e.to_string()))?;
    if shape.model.is_empty() || shape.model.len() > MAX_MODEL_LEN {
        return Err(BodyRefusal::NotMessages(format!(
            "model must be 1 to {MAX_MODEL_LEN} bytes"
        )));
    }
    Ok(())
}

/// The deepest nesting of `[` and `{` outside strings (the JSON itself is
/// checked by the parser; this only bounds what the parser would skip over).
fn nesting_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messages_request_has_a_model_and_messages() {
        assert!(check_messages_request(br#" {"model":"m","messages":[],"stream":true} "#).is_ok());
        assert!(
            check_messages_request(br#"{"model":"m\u0031","messages":[{"role":"user"}]}"#).is_ok()
        );
        // Brackets inside strings (an escaped quote included) do not nest.
        let text = format!(
            r#"{{"model":"m","messages":[{{"content":"\"{}"}}]}}"#,
            "[{".repeat(500)
        );
        assert!(check_messages_request(text.as_bytes()).is_ok());
        for bad in [
            &b"not json"[..],
            b"",
            b"[]",
            br#"["m", []]"#,
            br#"{"model":"m"}"#,
            br#"{"messages":[]}"#,
            br#"{"model":1,"messages":[]}"#,
            br#"{"model":"","messages":[]}"#,
            br#"{"model":"m","messages":{}}"#,
            br#"{"model":"m","messages":[]} x"#,
            br#"{"model":"a","model":"b","messages":[]}"#,
            format!(
                r#"{{"model":"m","messages":{}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            )
            .as_bytes(),
        ] {
            assert!(
                matches!(
                    check_messages_request(bad),
                    Err(BodyRefusal::NotMessages(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn a_budget_holds_bytes_until_released() {
        let budget = BodyBudget::new(100);
        let first = budget.take(60).await.unwrap();
        assert_eq!(budget.available(), 40);
        let waiting = tokio::time::timeout(Duration::from_millis(50), budget.take(60)).await;
        assert!(waiting.is_err(), "over budget: waits");
        drop(first);
        let second = tokio::time::timeout(Duration::from_millis(50), budget.take(60)).await;
        assert!(matches!(second, Ok(Some(_))));
    }
}
