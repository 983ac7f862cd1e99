//! Forwarding one request from the sandbox to the upstream Messages API.
//!
//! A request passes only if its target is an exact route of the table (see
//! [`super::routes`]); the upstream URL is rebuilt from that route, the
//! headers are cut down to an allow-list (see [`super::headers`]) and the real
//! credential is added here. Its body is read whole (bounded, see
//! [`super::body`]) and must be a Messages request before a byte goes
//! upstream; a request refused on any of these grounds is never counted. The
//! answer streams back unbuffered, so the first byte of a streamed answer
//! reaches the CLI as soon as upstream sends it. Before a model request goes
//! out the execution's account must admit it; its answer is metered as it
//! streams and settled when it ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::Gateway;
use super::account::{Account, Refusal};
use super::body::{self, BodyBudget};
use super::headers;
use super::meter::{Metered, UsageMeter};
use super::metered::{BodyTap, OnDone, metered};
use super::routes::{self, Allowed};
use super::tenant::{TenantRefusal, TenantRules};
use super::upstream::{Credential, Upstream};
use super::{Exchange, ExchangeObserver};
use crate::metrics::{GatewayError, GatewayOutcome};

/// The body type the gateway answers with.
pub type GatewayBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Longest request target kept in an [`Exchange`] and the log: 256 characters
/// (a refused target is the sandbox's text).
const MAX_REPORTED_TARGET: usize = 256;

/// Response headers passed back to the sandbox: what the CLI reads of an
/// answer (its type, request id, and the retry and rate-limit hints its retry
/// logic follows). Everything else upstream sends — organisation ids, cookies,
/// the hop's own headers, `content-length` (the gateway frames answers itself,
/// so an answer's end is where upstream's body ends, whatever its framing) — is
/// dropped.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "request-id",
    "x-request-id",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
];

/// Response header prefixes passed back: the rate-limit figures.
const FORWARDED_RESPONSE_PREFIXES: &[&str] = &["anthropic-ratelimit-"];

/// True for a response header the sandbox may see.
fn forwards_response_header(name: &str) -> bool {
    FORWARDED_RESPONSE_HEADERS.contains(&name)
        || FORWARDED_RESPONSE_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
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
    /// The tenant's policy: models, daily spend.
    pub tenant: TenantRules,
    /// Told about each tool call in the model's answers (tool policy), when on.
    pub tool_uses: Option<Arc<dyn super::ToolUseObserver>>,
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

/// A 429 asking the client to come back after `wait`.
fn throttled(
    mut exchange: Exchange,
    wait: Duration,
    why: &str,
    report: &impl Fn(Exchange, StatusCode, &str, String) -> Response<GatewayBody>,
) -> Response<GatewayBody> {
    exchange.refused = true;
    let mut response = report(
        exchange,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        format!("{why}; retry in {} s", wait.as_secs()),
    );
    if let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Forwards one request and reports the exchange to the observer.
pub(super) async fn forward(
    gateway: &Gateway,
    route: &Route,
    bodies: &BodyBudget,
    request: Request<Incoming>,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let target: String = request
        .uri()
        .to_string()
        .chars()
        .take(MAX_REPORTED_TARGET)
        .collect();
    let mut exchange = Exchange::new(&method, &target);
    let report = |mut exchange: Exchange, status: StatusCode, kind: &str, message: String| {
        exchange.status = Some(status.as_u16());
        exchange.error = Some(message.clone());
        exchange.duration = started.elapsed();
        route.observer.exchanged(&exchange);
        api_error(status, kind, &format!("agentd gateway: {message}"))
    };
    let allowed = match routes::admit(&method, request.uri()) {
        Ok(allowed) => allowed,
        Err(refusal) => {
            tracing::warn!(%method, %target, %refusal, "gateway refused a request target");
            refused(GatewayError::RefusedTarget);
            return report(
                exchange,
                refusal.status(),
                refusal.kind(),
                refusal.to_string(),
            );
        }
    };
    let forwarded = match headers::forwarded(request.headers()) {
        Ok(forwarded) => forwarded,
        Err(refusal) => {
            tracing::warn!(%method, %target, %refusal, "gateway refused a request's headers");
            refused(GatewayError::RefusedHeaders);
            return report(
                exchange,
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                refusal.to_string(),
            );
        }
    };
    let limits = gateway.limits();
    let budgets = [bodies, &gateway.inner.bodies];
    let body = match body::read(
        request.into_body(),
        allowed.endpoint,
        &budgets,
        limits.body_read_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(refusal) => {
            tracing::warn!(%method, %target, %refusal, "gateway refused a request body");
            refused(GatewayError::RefusedBody);
            return report(
                exchange,
                refusal.status(),
                refusal.kind(),
                refusal.to_string(),
            );
        }
    };
    let billable = allowed.is_billable();
    if billable {
        match route.account.admit() {
            Ok(()) => {}
            Err(Refusal::Exceeded(limit)) => {
                refused(GatewayError::BudgetExceeded);
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
                refused(GatewayError::Throttled);
                return throttled(exchange, wait, "requests_per_minute reached", &report);
            }
        }
        match route.tenant.admit(&body.bytes).await {
            Ok(()) => {}
            Err(TenantRefusal::DailySpend(limit)) => {
                refused(GatewayError::BudgetExceeded);
                exchange.refused = true;
                exchange.exceeded = Some(limit.clone());
                return report(
                    exchange,
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    format!("execution budget exceeded: {limit}"),
                );
            }
            Err(TenantRefusal::Model(message)) => {
                refused(GatewayError::ModelRefused);
                exchange.refused = true;
                return report(
                    exchange,
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    message,
                );
            }
            Err(TenantRefusal::Unknown(error)) => {
                tracing::warn!(%error, "cannot read the tenant's spend; the request waits");
                refused(GatewayError::Throttled);
                return throttled(
                    exchange,
                    Duration::from_secs(5),
                    "the tenant's spend cannot be checked",
                    &report,
                );
            }
        }
    }

    let upstream_target = allowed.upstream_target();
    let recording = route.recorder.as_ref().map(|recorder| {
        let mut recorded = hyper::HeaderMap::new();
        for (name, value) in &forwarded {
            recorded.append(name.clone(), value.clone());
        }
        recorder.begin(method.as_str(), &upstream_target, &recorded, &body.bytes)
    });
    let outgoing = Outgoing {
        method: method.clone(),
        allowed: &allowed,
        headers: forwarded,
        body: body.bytes.clone(),
    };
    let sent = send(&gateway.inner.client, &route.upstream, outgoing).await;
    // Sent (or failed): the body no longer counts against the budgets.
    drop(body);
    let response = match sent {
        Ok(response) => response,
        Err((status, kind, message)) => {
            let metrics = crate::metrics::global();
            metrics.gateway_request(GatewayOutcome::Failed);
            metrics.gateway_error(if status == StatusCode::GATEWAY_TIMEOUT {
                GatewayError::UpstreamTimeout
            } else {
                GatewayError::UpstreamUnreachable
            });
            if let Some(recording) = recording {
                recording.failed(status.as_u16(), &message);
            }
            return report(exchange, status, kind, message);
        }
    };
    let status = response.status().as_u16();
    exchange.status = Some(status);
    answered(status);
    exchange.duration = started.elapsed();

    let mut builder = Response::builder().status(status);
    for (name, value) in response.headers() {
        if forwards_response_header(name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let tap = recording.map(|recording| recording.respond(status, response.headers()));
    let meter = (billable || status >= 400).then(|| {
        let observer = (200..300)
            .contains(&status)
            .then(|| route.tool_uses.clone());
        UsageMeter::new(content_type.as_deref()).observing_tool_uses(observer.flatten())
    });
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
            exchange.priced_as = settled.priced_as;
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

/// Counts a request the gateway refused itself.
fn refused(why: GatewayError) {
    let metrics = crate::metrics::global();
    metrics.gateway_request(GatewayOutcome::Refused);
    metrics.gateway_error(why);
}

/// Counts a request upstream answered, and the answer if it is an error.
fn answered(status: u16) {
    let metrics = crate::metrics::global();
    metrics.gateway_request(GatewayOutcome::Forwarded);
    match status {
        400..=499 => metrics.gateway_error(GatewayError::UpstreamClientError),
        500.. => metrics.gateway_error(GatewayError::UpstreamServerError),
        _ => {}
    }
}

/// What goes upstream: rebuilt by the gateway from an admitted request.
struct Outgoing<'a> {
    method: hyper::Method,
    allowed: &'a Allowed,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

async fn send(
    client: &reqwest::Client,
    upstream: &Upstream,
    outgoing: Outgoing<'_>,
) -> Result<reqwest::Response, SendError> {
    let url = upstream
        .url_for_route(outgoing.allowed)
        .map_err(|e| (StatusCode::BAD_GATEWAY, "api_error", e.to_string()))?;
    let mut builder = client.request(outgoing.method, url);
    for (name, value) in outgoing.headers {
        builder = builder.header(name, value);
    }
    builder = builder.header(header::ACCEPT_ENCODING, "identity");
    if outgoing.allowed.endpoint.takes_body() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
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
    if outgoing.allowed.endpoint.takes_body() {
        builder = builder.body(outgoing.body);
    }
    builder.send().await.map_err(|error| {
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
