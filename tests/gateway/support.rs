//! A gateway socket in front of a scripted upstream, and ways to talk to it:
//! through an HTTP client, or byte for byte as a hostile sandbox would.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd::execution::GatewayUsage;
use agentd::gateway::{
    Account, Credential, Exchange, ExchangeObserver, ExecutionSocket, Gateway, GatewayLimits,
    ModelLimits, Route, Upstream,
};
use agentd::scripted::{RecordedRequest, Scenario, ScriptedModel};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Collects every exchange the gateway reports.
#[derive(Default)]
pub struct Seen(pub Mutex<Vec<Exchange>>);

impl ExchangeObserver for Seen {
    fn exchanged(&self, exchange: &Exchange) {
        self.0.lock().unwrap().push(exchange.clone());
    }
}

/// A route through `gateway` with `limits`, reporting to `observer`.
pub fn route(gateway: &Gateway, observer: Arc<dyn ExchangeObserver>, limits: ModelLimits) -> Route {
    Route {
        upstream: gateway.upstream().clone(),
        account: Arc::new(Account::new(
            limits,
            gateway.prices(),
            GatewayUsage::default(),
            Default::default(),
        )),
        observer,
        recorder: None,
        tenant: Default::default(),
        tool_uses: None,
    }
}

/// A body the Messages API accepts.
pub fn messages_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "stream": true,
        "max_tokens": 100,
        "tools": [{"name": "Write", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "hello"}]
    })
}

/// One execution's socket in front of a scripted model that answers every turn
/// with a short text (the real key is `sk-real-key`).
pub struct Door {
    pub model: ScriptedModel,
    pub socket: ExecutionSocket,
    pub path: PathBuf,
    pub seen: Arc<Seen>,
    _dir: tempfile::TempDir,
}

impl Door {
    pub async fn open() -> Door {
        Door::open_with(GatewayLimits::default()).await
    }

    /// A door whose gateway applies `limits`.
    pub async fn open_with(limits: GatewayLimits) -> Door {
        let scenario = Scenario::from_json(
            &json!({"turns": [{"content": [{"type": "text", "text": "hi there"}],
                                "usage": {"input_tokens": 5, "output_tokens": 2}}],
                    "after_last": "repeat_last"})
            .to_string(),
        )
        .unwrap();
        let model = ScriptedModel::start(scenario, ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let upstream = Upstream::new(
            &model.base_url(),
            Some(Credential::ApiKey("sk-real-key".into())),
        )
        .unwrap();
        let gateway = Gateway::new(upstream).unwrap().with_limits(limits);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.sock");
        let seen = Arc::new(Seen::default());
        let socket = gateway
            .open(&path, route(&gateway, seen.clone(), ModelLimits::default()))
            .unwrap();
        Door {
            model,
            socket,
            path,
            seen,
            _dir: dir,
        }
    }

    /// What reached upstream so far.
    pub fn upstream_saw(&self) -> Vec<RecordedRequest> {
        self.model.requests()
    }

    pub async fn close(self) {
        self.socket.close().await;
        self.model.shutdown().await;
    }
}

/// A POST through an HTTP client; the status and body of the answer.
pub async fn post(
    socket: &Path,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, String) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::post(path)
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(
            request
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Writes `request` byte for byte and reads until the gateway closes the
/// connection (or `limit` passes); the answer's status (0 for none) and text.
pub async fn raw_within(socket: &Path, request: &[u8], limit: Duration) -> (u16, String) {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    // The gateway may answer and close before reading everything: that is fine.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// [`raw_within`] with 10 s to answer.
pub async fn raw(socket: &Path, request: &[u8]) -> (u16, String) {
    raw_within(socket, request, Duration::from_secs(10)).await
}

/// A request head with `Connection: close`, then `body`.
pub fn head(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text =
        format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The answer is an error in the Messages API's shape.
pub fn assert_api_error(text: &str) {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("not a JSON error body ({e}):\n{text}"));
    assert_eq!(value["type"], "error", "{text}");
    assert!(value["error"]["type"].is_string(), "{text}");
    assert!(value["error"]["message"].is_string(), "{text}");
}
