//! Recording one exchange while the forwarder streams it: the request up
//! front, then the response head, then body chunks as they pass.

use std::time::{Duration, Instant};

use hyper::HeaderMap;

use super::format::Exchange;
use super::key::RequestKey;

/// Largest response body kept per exchange: 64 MiB. Longer bodies are cut and
/// the exchange is marked truncated (replay refuses it); real Messages API
/// answers stay far below.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Request headers a replay or a reader needs. Credentials are never among them.
pub const KEPT_REQUEST_HEADERS: &[&str] = &["content-type", "anthropic-version", "anthropic-beta"];

/// Response headers a replay answers with.
pub const KEPT_RESPONSE_HEADERS: &[&str] = &["content-type", "request-id", "retry-after"];

/// Builds one [`Exchange`] as it happens. Get one from
/// [`CassetteWriter::recorder`](super::CassetteWriter::recorder) (or
/// [`new`](Self::new)), call [`on_response`](Self::on_response) when the
/// response head is known, [`on_chunk`](Self::on_chunk) for each body chunk,
/// [`on_error`](Self::on_error) if the body breaks, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct ExchangeRecorder {
    exchange: Exchange,
    started: Instant,
    responded: bool,
    cap: usize,
}

impl ExchangeRecorder {
    /// Starts an exchange now: `seq` is its number in the execution, `since_start`
    /// the time since the execution's first request, `path` includes the query,
    /// `body` is the whole request body. Only [`KEPT_REQUEST_HEADERS`] are kept.
    pub fn new(
        seq: u64,
        since_start: Duration,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ExchangeRecorder {
        let turn = RequestKey::of(method, path, body).turn;
        ExchangeRecorder {
            exchange: Exchange {
                seq,
                method: method.to_string(),
                path: path.to_string(),
                request_headers: kept(headers, KEPT_REQUEST_HEADERS),
                request_body: body.to_vec(),
                status: 0,
                response_headers: Vec::new(),
                response_body: Vec::new(),
                started_ms: millis(since_start),
                first_byte_ms: None,
                duration_ms: 0,
                turn,
                truncated: false,
                interrupted: None,
            },
            started: Instant::now(),
            responded: false,
            cap: MAX_RESPONSE_BYTES,
        }
    }

    /// Keeps at most `cap` response body bytes instead of [`MAX_RESPONSE_BYTES`].
    pub fn with_cap(mut self, cap: usize) -> ExchangeRecorder {
        self.cap = cap;
        self
    }

    /// The response status and headers (only [`KEPT_RESPONSE_HEADERS`] are kept).
    pub fn on_response(&mut self, status: u16, headers: &HeaderMap) {
        self.exchange.status = status;
        self.exchange.response_headers = kept(headers, KEPT_RESPONSE_HEADERS);
        self.responded = true;
    }

    /// One response body chunk as it passes; the first non-empty one sets the
    /// first-byte time.
    pub fn on_chunk(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if self.exchange.first_byte_ms.is_none() {
            self.exchange.first_byte_ms = Some(millis(self.started.elapsed()));
        }
        let room = self.cap.saturating_sub(self.exchange.response_body.len());
        if chunk.len() > room {
            self.exchange.truncated = true;
        }
        let kept = chunk.len().min(room);
        self.exchange
            .response_body
            .extend_from_slice(&chunk[..kept]);
    }

    /// The response body broke off (upstream reset, timeout); the first reason is kept.
    pub fn on_error(&mut self, reason: &str) {
        if self.exchange.interrupted.is_none() {
            self.exchange.interrupted = Some(reason.to_string());
        }
    }

    /// The finished exchange, timed now. Without a response head it is recorded
    /// as a 502 whose body broke off.
    pub fn finish(mut self) -> Exchange {
        self.exchange.duration_ms = millis(self.started.elapsed());
        if !self.responded {
            self.exchange.status = 502;
            self.on_error("no response");
        }
        self.exchange
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn kept(headers: &HeaderMap, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .flat_map(|name| {
            headers.get_all(*name).iter().map(move |value| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn request_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("sk-ant-secret"));
        headers.insert("authorization", HeaderValue::from_static("Bearer tok"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        headers.append("anthropic-beta", HeaderValue::from_static("a-2025"));
        headers.append("anthropic-beta", HeaderValue::from_static("b-2025"));
        headers.insert("user-agent", HeaderValue::from_static("claude-cli/2.1.330"));
        headers
    }

    const BODY: &[u8] = br#"{"model":"m","stream":true,"tools":[{"name":"Read"}],
        "messages":[{"role":"user","content":"go"},{"role":"assistant","content":[]},{"role":"user","content":[]}]}"#;

    #[test]
    fn builds_the_exchange_from_split_chunks() {
        let mut recorder = ExchangeRecorder::new(
            7,
            Duration::from_millis(1500),
            "POST",
            "/v1/messages?beta=true",
            &request_headers(),
            BODY,
        );
        let mut response = HeaderMap::new();
        response.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        response.insert("request-id", HeaderValue::from_static("req_1"));
        response.insert("set-cookie", HeaderValue::from_static("s=1"));
        recorder.on_response(200, &response);
        std::thread::sleep(Duration::from_millis(20));
        let stream =
            "event: message_start\ndata: {\"x\":\"é\"}\n\nevent: message_stop\ndata: {}\n\n";
        let bytes = stream.as_bytes();
        // Cut inside the two-byte é and inside an event.
        let cut = stream.find('é').unwrap() + 1;
        recorder.on_chunk(&bytes[..cut]);
        recorder.on_chunk(&[]);
        std::thread::sleep(Duration::from_millis(20));
        recorder.on_chunk(&bytes[cut..cut + 5]);
        recorder.on_chunk(&bytes[cut + 5..]);
        let exchange = recorder.finish();

        assert_eq!(exchange.seq, 7);
        assert_eq!(exchange.started_ms, 1500);
        assert_eq!(exchange.method, "POST");
        assert_eq!(exchange.path, "/v1/messages?beta=true");
        assert_eq!(
            exchange.request_headers,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("anthropic-version".to_string(), "2023-06-01".to_string()),
                ("anthropic-beta".to_string(), "a-2025".to_string()),
                ("anthropic-beta".to_string(), "b-2025".to_string()),
            ]
        );
        assert_eq!(exchange.request_body, BODY);
        assert_eq!(exchange.status, 200);
        assert_eq!(
            exchange.response_headers,
            vec![
                ("content-type".to_string(), "text/event-stream".to_string()),
                ("request-id".to_string(), "req_1".to_string()),
            ]
        );
        assert_eq!(exchange.response_body, bytes);
        assert_eq!(exchange.turn, Some(1));
        let first = exchange.first_byte_ms.unwrap();
        assert!(first >= 20, "{first}");
        assert!(exchange.duration_ms >= first + 20, "{exchange:?}");
        assert!(!exchange.truncated);
        assert_eq!(exchange.interrupted, None);
        assert!(!exchange.contains("sk-ant-secret"));
        assert!(!exchange.contains("Bearer"));
    }

    #[test]
    fn cuts_long_bodies_and_keeps_breaks() {
        let mut recorder = ExchangeRecorder::new(
            0,
            Duration::ZERO,
            "POST",
            "/v1/messages",
            &HeaderMap::new(),
            b"x",
        )
        .with_cap(10);
        recorder.on_response(200, &HeaderMap::new());
        recorder.on_chunk(b"0123456");
        recorder.on_chunk(b"789abc");
        recorder.on_chunk(b"def");
        recorder.on_error("connection reset");
        recorder.on_error("later");
        let exchange = recorder.finish();
        assert_eq!(exchange.response_body, b"0123456789");
        assert!(exchange.truncated);
        assert_eq!(exchange.interrupted.as_deref(), Some("connection reset"));
        assert_eq!(exchange.turn, None);

        let exact = {
            let mut recorder = ExchangeRecorder::new(
                0,
                Duration::ZERO,
                "GET",
                "/v1/models",
                &HeaderMap::new(),
                b"",
            )
            .with_cap(4);
            recorder.on_response(200, &HeaderMap::new());
            recorder.on_chunk(b"abcd");
            recorder.finish()
        };
        assert!(!exact.truncated);

        let unanswered = ExchangeRecorder::new(
            1,
            Duration::ZERO,
            "POST",
            "/v1/messages",
            &HeaderMap::new(),
            b"",
        )
        .finish();
        assert_eq!(unanswered.status, 502);
        assert_eq!(unanswered.first_byte_ms, None);
        assert!(unanswered.interrupted.is_some());
    }
}
