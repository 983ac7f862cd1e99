//! Replay: a Messages API server that answers from a cassette instead of a model.
//!
//! A request is answered by the next unused recorded exchange with the same
//! [`RequestKey`] (kind and turn), in recorded order, with the recorded status,
//! headers and body bytes. Like the scripted model it needs no conversation
//! state beyond those queues, so a retried request gets what the retry got
//! when recording (a 429, then the 200).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use crate::wire::BackgroundServer;
use tokio_util::sync::CancellationToken;

use super::format::{Cassette, Exchange};
use super::key::RequestKey;
use crate::gateway::api_error;

/// Largest request body read: the same bound the scripted model uses.
const MAX_REQUEST_BYTES: usize = 64 << 20;

/// Whether a replay reproduces the recorded pace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplayTiming {
    /// Answer at once, and answer `retry-after` as `0` so clients retry at once:
    /// tests and demos should not wait on a recording's pace. The default.
    #[default]
    Immediate,
    /// Wait the recorded time to first byte, then spread the remaining events
    /// evenly over the recorded duration (per-event times are not recorded);
    /// headers are answered as recorded.
    AsRecorded,
}

/// A model server that replays a [`Cassette`] over the Messages API, for
/// deterministic re-runs of a recorded execution, tests and the offline demo.
///
/// It serves until [`shutdown`](ReplayModel::shutdown) or until dropped.
#[derive(Debug)]
pub struct ReplayModel {
    server: BackgroundServer,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    exchanges: Vec<Exchange>,
    /// Indexes into `exchanges` not yet answered, per key, in recorded order.
    queues: Mutex<HashMap<RequestKey, VecDeque<usize>>>,
    misses: Mutex<Vec<String>>,
    timing: ReplayTiming,
    stop: CancellationToken,
}

impl ReplayModel {
    /// Binds `addr` (port 0 picks a free port) and replays `cassette` at once
    /// ([`ReplayTiming::Immediate`]).
    pub async fn start(cassette: Cassette, addr: SocketAddr) -> std::io::Result<ReplayModel> {
        ReplayModel::start_with(cassette, addr, ReplayTiming::default()).await
    }

    /// Binds `addr` and replays `cassette` at the given pace. Fails with
    /// `InvalidData` when an exchange cannot be replayed faithfully (its body
    /// was truncated when recorded, or its status or a header is invalid).
    pub async fn start_with(
        cassette: Cassette,
        addr: SocketAddr,
        timing: ReplayTiming,
    ) -> std::io::Result<ReplayModel> {
        let mut exchanges = cassette.exchanges;
        for exchange in &exchanges {
            check_replayable(exchange)?;
        }
        exchanges.sort_by_key(|exchange| exchange.seq);
        let mut queues: HashMap<RequestKey, VecDeque<usize>> = HashMap::new();
        for (index, exchange) in exchanges.iter().enumerate() {
            let key = RequestKey::of(&exchange.method, &exchange.path, &exchange.request_body);
            queues.entry(key).or_default().push_back(index);
        }
        let shared = Arc::new(Shared {
            exchanges,
            queues: Mutex::new(queues),
            misses: Mutex::new(Vec::new()),
            timing,
            stop: CancellationToken::new(),
        });
        let router = Router::new().fallback(answer).with_state(shared.clone());
        let server =
            BackgroundServer::start(addr, router, shared.stop.clone(), "replay model").await?;
        Ok(ReplayModel { server, shared })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The base URL a client (or the gateway's upstream) uses, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Sequence numbers of the recorded exchanges not replayed yet, ascending.
    /// Empty after a faithful replay of the whole recording.
    pub fn unplayed(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = lock(&self.shared.queues)
            .values()
            .flatten()
            .map(|&index| self.shared.exchanges[index].seq)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// The requests that found no recorded answer (and got a 400), described
    /// by their key, in arrival order.
    pub fn misses(&self) -> Vec<String> {
        lock(&self.shared.misses).clone()
    }

    /// Stops accepting, lets answers in flight finish (a few seconds at most), and returns.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn check_replayable(exchange: &Exchange) -> std::io::Result<()> {
    let invalid = |problem: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("cassette exchange {}: {problem}", exchange.seq),
        )
    };
    if exchange.truncated {
        return Err(invalid(
            "its response body was cut when recorded (over the recording cap); it cannot be replayed"
                .into(),
        ));
    }
    StatusCode::from_u16(exchange.status)
        .map_err(|_| invalid(format!("invalid status {}", exchange.status)))?;
    for (name, value) in &exchange.response_headers {
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("invalid header name `{name}`")))?;
        HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| invalid(format!("invalid value of `{name}`")))?;
    }
    Ok(())
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                &format!("agentd replay: cannot read the request body: {error}"),
            )
            .map(Body::new);
        }
    };
    let key = RequestKey::of(parts.method.as_str(), &path, &body);
    let next = lock(&shared.queues)
        .get_mut(&key)
        .and_then(VecDeque::pop_front);
    let Some(index) = next else {
        tracing::warn!(%key, "replay: no recorded answer left");
        lock(&shared.misses).push(key.to_string());
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("agentd replay: the cassette holds no (more) answers for {key}"),
        )
        .map(Body::new);
    };
    let exchange = &shared.exchanges[index];
    if shared.timing == ReplayTiming::AsRecorded {
        let wait = exchange.first_byte_ms.unwrap_or(exchange.duration_ms);
        pause(&shared.stop, Duration::from_millis(wait)).await;
    }
    recorded_response(&shared, index)
}

async fn pause(stop: &CancellationToken, duration: Duration) {
    if duration.is_zero() {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.cancelled() => {}
    }
}

fn recorded_response(shared: &Arc<Shared>, index: usize) -> Response {
    let exchange = &shared.exchanges[index];
    let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let streamed = exchange.response_headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case(header::CONTENT_TYPE.as_str())
            && value.trim_start().starts_with("text/event-stream")
    });
    let body = if streamed || exchange.interrupted.is_some() {
        let pieces = if streamed {
            events(&exchange.response_body)
        } else {
            vec![Bytes::copy_from_slice(&exchange.response_body)]
        };
        let gap = match shared.timing {
            ReplayTiming::AsRecorded if pieces.len() > 1 => {
                let spread = exchange
                    .duration_ms
                    .saturating_sub(exchange.first_byte_ms.unwrap_or(exchange.duration_ms));
                Duration::from_millis(spread) / (pieces.len() as u32 - 1).max(1)
            }
            _ => Duration::ZERO,
        };
        Body::from_stream(paced(
            pieces,
            gap,
            exchange.interrupted.clone(),
            shared.stop.clone(),
        ))
    } else {
        Body::from(exchange.response_body.clone())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in &exchange.response_headers {
        let value = if shared.timing == ReplayTiming::Immediate
            && name.eq_ignore_ascii_case(header::RETRY_AFTER.as_str())
        {
            "0"
        } else {
            value.as_str()
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The pieces in order, each after `gap` (the first at once), yielding to the
/// runtime between them so each is written out on its own; then the recorded
/// break, if the recorded body broke off.
fn paced(
    pieces: Vec<Bytes>,
    gap: Duration,
    interrupted: Option<String>,
    stop: CancellationToken,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    let state = (pieces.into_iter().enumerate(), interrupted, stop);
    futures::stream::unfold(
        state,
        move |(mut pieces, mut interrupted, stop)| async move {
            match pieces.next() {
                Some((index, piece)) => {
                    if index > 0 {
                        pause(&stop, gap).await;
                        tokio::task::yield_now().await;
                    }
                    Some((Ok(piece), (pieces, interrupted, stop)))
                }
                None => {
                    let reason = interrupted.take()?;
                    // Let the recorded bytes go out before the connection breaks.
                    tokio::task::yield_now().await;
                    let error = std::io::Error::other(format!("recorded stream broke: {reason}"));
                    Some((Err(error), (pieces, None, stop)))
                }
            }
        },
    )
}

/// A server-sent event stream cut after each blank line, so each event goes
/// out as its own chunk; the pieces put together are the recorded bytes.
fn events(body: &[u8]) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + 1 < body.len() {
        if body[at] == b'\n' && body[at + 1] == b'\n' {
            pieces.push(Bytes::copy_from_slice(&body[start..at + 2]));
            start = at + 2;
            at = start;
        } else {
            at += 1;
        }
    }
    if start < body.len() {
        pieces.push(Bytes::copy_from_slice(&body[start..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_events_after_blank_lines_and_keeps_every_byte() {
        let body = b"event: a\ndata: {}\n\nevent: b\ndata: {}\n\n: tail";
        let pieces = events(body);
        assert_eq!(
            pieces,
            vec![
                Bytes::from_static(b"event: a\ndata: {}\n\n"),
                Bytes::from_static(b"event: b\ndata: {}\n\n"),
                Bytes::from_static(b": tail"),
            ]
        );
        assert_eq!(pieces.concat(), body);
        assert!(events(b"").is_empty());
        assert_eq!(events(b"\n\n\n\n").len(), 2);
    }
}
