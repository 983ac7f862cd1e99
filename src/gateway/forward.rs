//! Forwarding one request from the sandbox to the upstream Messages API.
//!
//! Bodies stream both ways (nothing is buffered whole, so the first byte of a
//! streamed answer reaches the CLI as soon as upstream sends it; only a request
//! being recorded is read whole first). The sandbox's own credential headers
//! are dropped and the real one is added here. Before a model request goes out
//! the execution's account must admit it; its answer is metered as it streams
//! and settled when it ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyDataStream, BodyExt, Full, Limited, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::account::{Account, Refusal};
use super::meter::{Metered, UsageMeter};
use super::metered::{BodyTap, OnDone, metered};
use super::upstream::{Credential, Upstream};
use super::{Exchange, ExchangeObserver};

/// The body type the gateway answers with.
pub type GatewayBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus the
/// ones the gateway owns.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "x-api-key",
    "authorization",
    "accept-encoding",
];

/// Response headers never forwarded: those of one hop, and `content-length`,
/// because the gateway frames its answer to the sandbox itself (chunked). Hyper
/// then reads the body until the upstream's body ends, whatever its framing,
/// and that end is what settles the account and completes a recording (with the
/// length forwarded, hyper stops reading once it is reached and drops the body
/// as if the answer had been cut short).
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// True for the request paths the sandbox may reach: the Messages API family and
/// the model list. Everything else is refused.
pub fn is_allowed(method: &Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    match *method {
        Method::POST => path == "/v1/messages" || path == "/v1/messages/count_tokens",
        Method::GET => path == "/v1/models" || path.starts_with("/v1/models/"),
        _ => false,
    }
}

/// An answer in the Messages API error shape, so the CLI's own error handling
/// and retry logic apply to gateway failures too.
pub fn api_error(status: StatusCode, kind: &str, message: &str) -> Response<GatewayBody> {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": kind, "message": message},
    });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never: Infallible| match never {})
                .boxed_unsync(),
        )
        .unwrap_or_else(|_| Response::new(empty()))
}

fn empty() -> GatewayBody {
    Full::new(Bytes::new())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// Everything one execution's socket forwards with.
pub struct Route {
    /// Where requests go (the gateway's upstream, or a replay server).
    pub upstream: Upstream,
    /// The execution's account: limits and metering.
    pub account: Arc<Account>,
    /// Told about every exchange.
    pub observer: Arc<dyn ExchangeObserver>,
    /// Records exchanges into a cassette, when recording is on.
    pub recorder: Option<Arc<dyn Recorder>>,
}

/// Starts the recording of one exchange (see [`super::cassette`]).
pub trait Recorder: Send + Sync {
    /// A new exchange with its request; returns the tap its answer flows through.
    fn begin(
        &self,
        method: &str,
        path: &str,
        headers: &hyper::HeaderMap,
        body: &[u8],
    ) -> Box<dyn RecordingExchange>;
}

/// One exchange being recorded.
pub trait RecordingExchange: Send {
    /// The answer's status and headers arrived.
    fn respond(
        self: Box<Self>,
        status: u16,
        headers: &reqwest::header::HeaderMap,
    ) -> Box<dyn BodyTap>;
    /// The request failed before an answer (the gateway answered itself).
    fn failed(self: Box<Self>, status: u16, body: &str);
}

/// Largest request body buffered for a recording: 32 MiB (model requests are
/// JSON of a few MB at most); larger ones are refused while recording.
pub const MAX_RECORDED_REQUEST: usize = 32 << 20;

/// True for requests that cost model tokens (and count against the limits).
fn is_billable(method: &Method, path: &str) -> bool {
    *method == Method::POST && path.split('?').next() == Some("/v1/messages")
}

/// Forwards one request and reports the exchange to the observer.
pub async fn forward(
    client: &reqwest::Client,
    route: &Route,
    request: Request<Incoming>,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let mut exchange = Exchange::new(&method, &path);
    let report = |mut exchange: Exchange, status: StatusCode, kind: &str, message: String| {
        exchange.status = Some(status.as_u16());
        exchange.error = Some(message.clone());
        exchange.duration = started.elapsed();
        route.observer.exchanged(&exchange);
        api_error(status, kind, &format!("agentd gateway: {message}"))
    };
    if !is_allowed(&method, &path) {
        tracing::warn!(%method, %path, "gateway refused a request outside the Messages API");
        return report(
            exchange,
            StatusCode::FORBIDDEN,
            "permission_error",
            format!("{method} {path} is not allowed"),
        );
    }
    let billable = is_billable(&method, &path);
    if billable {
        match route.account.admit() {
            Ok(()) => {}
            Err(Refusal::Exceeded(limit)) => {
                exchange.refused = true;
                exchange.exceeded = Some(limit.clone());
                // The CLI does not retry a 400: it stops, and agentd stops the sandbox.
                return report(
                    exchange,
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    format!("execution budget exceeded: {limit}"),
                );
            }
            Err(Refusal::Throttled(wait)) => {
                exchange.refused = true;
                let mut response = report(
                    exchange,
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    format!("requests_per_minute reached; retry in {} s", wait.as_secs()),
                );
                if let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
        }
    }

    let (parts, body) = request.into_parts();
    let (body, recording) = match &route.recorder {
        Some(recorder) => {
            let bytes = match Limited::new(body, MAX_RECORDED_REQUEST).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return report(
                        exchange,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request_too_large",
                        "request too large to record".into(),
                    );
                }
            };
            let recording = recorder.begin(method.as_str(), &path, &parts.headers, &bytes);
            (reqwest::Body::from(bytes), Some(recording))
        }
        None => (reqwest::Body::wrap_stream(BodyDataStream::new(body)), None),
    };
    let response = match send(client, &route.upstream, parts, body, &path).await {
        Ok(response) => response,
        Err((status, kind, message)) => {
            if let Some(recording) = recording {
                recording.failed(status.as_u16(), &message);
            }
            return report(exchange, status, kind, message);
        }
    };
    let status = response.status().as_u16();
    exchange.status = Some(status);
    exchange.duration = started.elapsed();

    let mut builder = Response::builder().status(status);
    for (name, value) in response.headers() {
        if !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let tap = recording.map(|recording| recording.respond(status, response.headers()));
    let meter = (billable || status >= 400).then(|| UsageMeter::new(content_type.as_deref()));
    let account = route.account.clone();
    let observer = route.observer.clone();
    let on_done: OnDone = Box::new(move |metered: Metered, total| {
        exchange.total = total;
        exchange.model = metered.model.clone();
        if let Some(error) = &metered.error {
            exchange.error = Some(format!("{}: {}", error.kind, error.message));
        }
        if billable {
            if (200..300).contains(&status) && metered.complete && metered.error.is_none() {
                exchange.conversation = Some(account.observe(&metered));
            }
            let settled = account.settle(metered.model.as_deref(), &metered.usage);
            exchange.usage = Some(metered.usage);
            exchange.cost_usd = settled.cost_usd;
            exchange.unpriced = settled.unpriced;
            exchange.totals = Some(settled.totals);
            exchange.exceeded = settled.exceeded;
        }
        observer.exchanged(&exchange);
    });
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    builder
        .body(metered(stream, meter, tap, on_done, started))
        .unwrap_or_else(|_| {
            api_error(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "bad upstream response",
            )
        })
}

type SendError = (StatusCode, &'static str, String);

async fn send(
    client: &reqwest::Client,
    upstream: &Upstream,
    parts: hyper::http::request::Parts,
    body: reqwest::Body,
    path: &str,
) -> Result<reqwest::Response, SendError> {
    let url = upstream.url_for(path).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.to_string(),
        )
    })?;
    let mut builder = client.request(parts.method, url);
    for (name, value) in &parts.headers {
        if !DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    builder = builder.header(header::ACCEPT_ENCODING, "identity");
    match upstream.credential() {
        Some(Credential::ApiKey(key)) => {
            builder = builder.header(HeaderName::from_static("x-api-key"), sensitive(key)?);
        }
        Some(Credential::BearerToken(token)) => {
            builder = builder.header(
                header::AUTHORIZATION,
                sensitive(&format!("Bearer {token}"))?,
            );
        }
        None => {}
    }
    builder.body(body).send().await.map_err(|error| {
        if error.is_timeout() {
            (
                StatusCode::GATEWAY_TIMEOUT,
                "api_error",
                "upstream timed out".to_string(),
            )
        } else if error.is_connect() {
            (
                StatusCode::BAD_GATEWAY,
                "api_error",
                format!("upstream unreachable: {}", without_url(&error)),
            )
        } else {
            (
                StatusCode::BAD_GATEWAY,
                "api_error",
                format!("upstream request failed: {}", without_url(&error)),
            )
        }
    })
}

fn sensitive(value: &str) -> Result<HeaderValue, SendError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "the configured credential is not a valid header value".to_string(),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// reqwest errors carry the URL; keep the message, drop the rest of the chain.
fn without_url(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    if message.is_empty() {
        "request error".to_string()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_messages_family_is_allowed() {
        assert!(is_allowed(&Method::POST, "/v1/messages?beta=true"));
        assert!(is_allowed(&Method::POST, "/v1/messages/count_tokens"));
        assert!(is_allowed(&Method::GET, "/v1/models"));
        assert!(!is_allowed(&Method::GET, "/v1/messages"));
        assert!(!is_allowed(&Method::POST, "/v1/messages/batches"));
        assert!(!is_allowed(&Method::POST, "/v1/complete"));
        assert!(!is_allowed(&Method::POST, "/api/oauth/token"));
    }
}
