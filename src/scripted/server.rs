//! The HTTP side of the scripted model: the Messages API routes, the attempt
//! counters behind scripted errors, and the request log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::reply::Reply;
use super::request::{RecordedRequest, estimate_tokens};
use super::scenario::{AfterLast, ErrorAnswer, Framing, Scenario};
use super::sse;
use crate::wire::BackgroundServer;
use crate::wire::MessagesRequest;

/// Largest request body accepted: long conversations with many tools stay far below.
const MAX_BODY_BYTES: usize = 64 << 20;
/// The answer to side requests (title generation and the like).
const SIDE_TEXT: &str = "Scripted session";
/// The answer past the end of a script with [`AfterLast::End`].
const FINISHED_TEXT: &str = "scenario finished";
/// Where the request log is served.
const REQUESTS_PATH: &str = "/_scripted/requests";

/// A model server that plays a [`Scenario`] over the Messages API
/// (`POST /v1/messages`, streamed or not), for tests and the offline demo.
///
/// It serves until [`shutdown`](ScriptedModel::shutdown) or until dropped.
#[derive(Debug)]
pub struct ScriptedModel {
    server: BackgroundServer,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    scenario: Scenario,
    /// Attempts seen so far per turn index, to answer that turn's scripted errors first.
    attempts: Mutex<HashMap<usize, usize>>,
    requests: Mutex<Vec<RecordedRequest>>,
    serial: AtomicU64,
    stop: CancellationToken,
}

impl ScriptedModel {
    /// Binds `addr` (port 0 picks a free port) and serves the scenario in a task.
    pub async fn start(scenario: Scenario, addr: SocketAddr) -> std::io::Result<ScriptedModel> {
        let shared = Arc::new(Shared {
            scenario,
            attempts: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        let router = Router::new().fallback(dispatch).with_state(shared.clone());
        let server =
            BackgroundServer::start(addr, router, shared.stop.clone(), "scripted model").await?;
        Ok(ScriptedModel { server, shared })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The base URL a client puts in `ANTHROPIC_BASE_URL`, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Every request received so far, in arrival order of their answers.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Stops accepting, lets answers in flight finish (a few seconds at most), and returns.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A lock that survives a panicked holder: the data (counters, a log) stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    if parts.method == Method::GET && path == REQUESTS_PATH {
        return json_response(StatusCode::OK, &json!(*lock(&shared.requests)));
    }
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        model: None,
        stream: false,
        turn: None,
        messages: 0,
        tools: false,
        x_api_key: header_text(&parts.headers, "x-api-key"),
        authorization: header_text(&parts.headers, header::AUTHORIZATION.as_str()),
        status: 0,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect(),
    };
    let response = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Err(error) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!("cannot read the request body: {error}"),
        ),
        Ok(body) => match (parts.method.clone(), path.as_str()) {
            (Method::POST, "/v1/messages") => messages(&shared, &body, &mut record).await,
            (Method::POST, "/v1/messages/count_tokens") => count_tokens(&body, &mut record),
            (method, path) => error_response(
                StatusCode::NOT_FOUND,
                "not_found_error",
                &format!("no such endpoint: {method} {path}"),
            ),
        },
    };
    record.status = response.status().as_u16();
    lock(&shared.requests).push(record);
    response
}

async fn messages(shared: &Shared, body: &[u8], record: &mut RecordedRequest) -> Response {
    let request = match MessagesRequest::parse(body) {
        Ok(request) => request,
        Err(problem) => {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &problem);
        }
    };
    record.model = Some(request.model.clone());
    record.stream = request.stream;
    record.messages = request.messages;
    record.tools = request.tools;

    let serial = shared.serial.fetch_add(1, Ordering::Relaxed) + 1;
    let scenario = &shared.scenario;
    let model = scenario.model.clone().unwrap_or(request.model.clone());
    if !request.tools {
        let reply = Reply::plain_text(format!("msg_side_{serial:06}"), model, SIDE_TEXT);
        return reply_response(&reply, request.stream, scenario.framing, serial);
    }

    let index = request.assistant_messages;
    record.turn = Some(index);
    let turn = match scenario.turns.get(index) {
        Some(turn) => {
            if let Some(error) = next_error(shared, index, &turn.errors) {
                return scripted_error(&error);
            }
            if let Some(missing) = missing_expectation(body, &turn.expect) {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!(
                        "scripted expectation failed: turn {index}'s request lacks `{missing}` in its messages"
                    ),
                );
            }
            turn
        }
        None => match (scenario.after_last, scenario.turns.last()) {
            (AfterLast::RepeatLast, Some(last)) => last,
            _ => {
                let id = format!("msg_{index}_{serial:06}");
                let reply = Reply::plain_text(id, model, FINISHED_TEXT);
                return reply_response(&reply, request.stream, scenario.framing, serial);
            }
        },
    };
    if turn.delay_ms > 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(turn.delay_ms)) => {}
            _ = shared.stop.cancelled() => {}
        }
    }
    let reply = Reply::from_turn(turn, index, serial, model);
    reply_response(&reply, request.stream, scenario.framing, serial)
}

/// The first of `expected` that no string in the body's `messages` contains.
fn missing_expectation<'a>(body: &[u8], expected: &'a [String]) -> Option<&'a str> {
    if expected.is_empty() {
        return None;
    }
    fn strings<'v>(value: &'v serde_json::Value, into: &mut Vec<&'v str>) {
        match value {
            serde_json::Value::String(text) => into.push(text),
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, into)),
            serde_json::Value::Object(fields) => fields.values().for_each(|v| strings(v, into)),
            _ => {}
        }
    }
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut found = Vec::new();
    strings(&value["messages"], &mut found);
    expected
        .iter()
        .find(|want| !found.iter().any(|text| text.contains(want.as_str())))
        .map(String::as_str)
}

/// Counts one more attempt at turn `index`; the scripted error for that attempt, if any.
fn next_error(shared: &Shared, index: usize, errors: &[ErrorAnswer]) -> Option<ErrorAnswer> {
    let mut attempts = lock(&shared.attempts);
    let attempt = attempts.entry(index).or_insert(0);
    let error = errors.get(*attempt).cloned();
    *attempt = attempt.saturating_add(1);
    error
}

fn count_tokens(body: &[u8], record: &mut RecordedRequest) -> Response {
    match MessagesRequest::parse(body) {
        Ok(request) => {
            record.model = Some(request.model);
            record.messages = request.messages;
            record.tools = request.tools;
            json_response(
                StatusCode::OK,
                &json!({"input_tokens": estimate_tokens(body)}),
            )
        }
        Err(problem) => error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &problem),
    }
}

fn reply_response(reply: &Reply, stream: bool, framing: Framing, serial: u64) -> Response {
    let mut response = if stream {
        let events = sse::events(reply);
        let body = match framing {
            Framing::Chunked => Body::from_stream(futures::stream::iter(
                events.into_iter().map(Ok::<_, Infallible>),
            )),
            Framing::ContentLength => Body::from(events.concat()),
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        json_text_response(StatusCode::OK, reply.to_message_text())
    };
    if let Ok(id) = HeaderValue::from_str(&format!("req_scripted_{serial:06}")) {
        response.headers_mut().insert("request-id", id);
    }
    response
}

fn scripted_error(error: &ErrorAnswer) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error_response(status, &error.kind, &error.message);
    if matches!(error.status, 429 | 529) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
    }
    response
}

/// An error in the Messages API's shape.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text_response(status, body.to_string())
}

fn json_text_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}
