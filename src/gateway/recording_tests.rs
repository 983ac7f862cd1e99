//! Recording through the real gateway socket against a small upstream written
//! by hand, so each framing of a streamed answer can be chosen: chunked,
//! `Content-Length` on a kept-alive connection, and close-delimited. Every
//! exchange must land in the cassette complete and in order; an answer that
//! breaks off upstream, or that the sandbox abandons, is marked interrupted.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::execution::GatewayUsage;
use crate::gateway::{
    Account, Cassette, CassetteRecorder, CassetteWriter, Credential, ExecutionSocket, Gateway,
    ModelLimits, NoObserver, Redactor, Route, Upstream,
};

const KEY: &str = "sk-ant-framing-test-0123456789";

/// How the upstream frames a streamed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Transfer-Encoding: chunked`, one chunk per event; the connection stays open.
    Chunked,
    /// `Content-Length`, the events written one by one; the connection stays open.
    ContentLength,
    /// Neither: the answer ends when the upstream closes the connection.
    CloseDelimited,
    /// A `Content-Length` longer than the events sent before the upstream hangs up.
    BrokenOff,
    /// Chunked, but silent after the first event until the client goes away.
    Stalls,
}

/// What the upstream did: the answers it sent, in order, and the connections it took.
#[derive(Debug, Default)]
struct Sent {
    answers: Vec<Vec<u8>>,
    connections: usize,
}

/// A Messages API upstream speaking raw HTTP/1.1 on a loopback port.
async fn upstream(framing: Framing) -> (String, Arc<Mutex<Sent>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(Mutex::new(Sent::default()));
    let log = sent.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            log.lock().unwrap().connections += 1;
            tokio::spawn(serve(stream, framing, log.clone()));
        }
    });
    (url, sent)
}

/// Answers requests on one connection until the client or the framing ends it.
async fn serve(stream: TcpStream, framing: Framing, sent: Arc<Mutex<Sent>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(body) = read_request(&mut stream).await else {
            return;
        };
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let turn = request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|message| message["role"] == "assistant")
            .count();
        let events = answer_events(turn);
        let whole = events.concat();
        sent.lock().unwrap().answers.push(whole.clone());
        let head = match framing {
            Framing::Chunked | Framing::Stalls => "Transfer-Encoding: chunked\r\n".to_string(),
            Framing::ContentLength => {
                format!(
                    "Content-Length: {}\r\nConnection: keep-alive\r\n",
                    whole.len()
                )
            }
            Framing::CloseDelimited => "Connection: close\r\n".to_string(),
            Framing::BrokenOff => format!("Content-Length: {}\r\n", whole.len() + 100),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_{turn}\r\n{head}\r\n"
        );
        let out = stream.get_mut();
        out.write_all(head.as_bytes()).await.unwrap();
        for event in &events {
            match framing {
                Framing::Chunked | Framing::Stalls => {
                    out.write_all(format!("{:x}\r\n", event.len()).as_bytes())
                        .await
                        .unwrap();
                    out.write_all(event).await.unwrap();
                    out.write_all(b"\r\n").await.unwrap();
                }
                Framing::ContentLength | Framing::CloseDelimited | Framing::BrokenOff => {
                    out.write_all(event).await.unwrap();
                }
            }
            out.flush().await.unwrap();
            if framing == Framing::Stalls {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match framing {
            Framing::Chunked | Framing::Stalls => out.write_all(b"0\r\n\r\n").await.unwrap(),
            Framing::ContentLength => {}
            Framing::CloseDelimited | Framing::BrokenOff => {
                let _ = out.shutdown().await;
                return;
            }
        }
        out.flush().await.unwrap();
    }
}

/// Reads one request's head and its `Content-Length` body; `None` once the client is gone.
async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut length = 0;
    let mut first = true;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if first {
            assert!(line.starts_with("POST /v1/messages"), "{line}");
            first = false;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// The server-sent events of turn `turn`'s answer, one event per item.
fn answer_events(turn: usize) -> Vec<Vec<u8>> {
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": format!("msg_{turn}"), "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
                "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": format!("answer {turn}")}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 5}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n").into_bytes())
        .collect()
}

/// A Messages request for conversation turn `turn` (that many assistant messages).
fn request_body(turn: usize) -> Vec<u8> {
    let mut messages = vec![json!({"role": "user", "content": "go"})];
    for index in 0..turn {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": format!("toolu_{index}"), "name": "Read", "input": {}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{index}"), "content": "ok"}]}));
    }
    serde_json::to_vec(&json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "messages": messages,
    }))
    .unwrap()
}

/// A client connection to the gateway's socket, as the CLI opens one.
async fn connect(socket: &Path) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A streamed request for turn `turn`, as the sandbox sends it.
fn ask(turn: usize) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post("/v1/messages?beta=true")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "placeholder")
        .body(Full::new(Bytes::from(request_body(turn))))
        .unwrap()
}

/// Sends turns 0, 1 and 2 over one kept-alive connection to the gateway's
/// socket, as the CLI does; the answers as received.
async fn converse(socket: &Path) -> Vec<Vec<u8>> {
    let mut sender = connect(socket).await;
    let mut answers = Vec::new();
    for turn in 0..3 {
        sender.ready().await.unwrap();
        let response = sender.send_request(ask(turn)).await.unwrap();
        assert_eq!(response.status(), 200, "turn {turn}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        answers.push(body.to_vec());
    }
    answers
}

/// A gateway recording into `dir/cassette.jsonl`, its socket at `dir/llm.sock`,
/// forwarding to `url`; the socket and the execution's account.
fn recording_gateway(dir: &Path, url: &str) -> (ExecutionSocket, Arc<Account>) {
    let gateway =
        Gateway::new(Upstream::new(url, Some(Credential::ApiKey(KEY.into()))).unwrap()).unwrap();
    let writer = Arc::new(CassetteWriter::create(&dir.join("cassette.jsonl")).unwrap());
    let redactor = Arc::new(Redactor::new([KEY]).unwrap());
    let account = Arc::new(Account::new(
        ModelLimits::default(),
        gateway.prices(),
        GatewayUsage::default(),
        Default::default(),
    ));
    let route = Route {
        upstream: gateway.upstream().clone(),
        account: account.clone(),
        observer: Arc::new(NoObserver),
        recorder: Some(Arc::new(CassetteRecorder::new(writer, redactor))),
        tenant: Default::default(),
        tool_uses: None,
    };
    let socket = gateway.open(&dir.join("llm.sock"), route).unwrap();
    (socket, account)
}

/// Records a three-turn conversation through the gateway against an upstream
/// framing its answers with `framing`, and checks the cassette holds every
/// exchange whole, in order.
async fn records_every_exchange(framing: Framing) {
    let (url, sent) = upstream(framing).await;
    let dir = tempfile::tempdir().unwrap();
    let (socket, account) = recording_gateway(dir.path(), &url);
    let received = converse(&dir.path().join("llm.sock")).await;
    socket.close().await;

    let sent = sent.lock().unwrap();
    assert_eq!(sent.answers.len(), 3, "{framing:?}");
    let expected_connections = match framing {
        Framing::CloseDelimited => 3,
        Framing::Chunked | Framing::ContentLength | Framing::BrokenOff | Framing::Stalls => 1,
    };
    assert_eq!(sent.connections, expected_connections, "{framing:?}");
    assert_eq!(
        received, sent.answers,
        "{framing:?}: the sandbox got every answer"
    );

    let recorded = Cassette::load(&dir.path().join("cassette.jsonl")).unwrap();
    // Whole and in order: each turn once, in file order, none cut short.
    let seen: Vec<_> = recorded
        .exchanges
        .iter()
        .map(|e| (e.seq, e.turn, e.interrupted.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [(0, Some(0), None), (1, Some(1), None), (2, Some(2), None)],
        "{framing:?}"
    );
    for (exchange, answer) in recorded.exchanges.iter().zip(&sent.answers) {
        assert_eq!((exchange.status, exchange.truncated), (200, false));
        assert_eq!(
            String::from_utf8_lossy(&exchange.response_body),
            String::from_utf8_lossy(answer),
            "{framing:?}: exchange {}",
            exchange.seq
        );
        assert_eq!(exchange.request_body, request_body(exchange.seq as usize));
    }
    recorded.assert_free_of(&[KEY]).unwrap();
    let totals = account.totals();
    assert_eq!(
        (totals.requests, totals.usage.output_tokens),
        (3, 15),
        "{framing:?}: every answer metered to its end"
    );
}

#[tokio::test]
async fn records_chunked_answers_whole_and_in_order() {
    records_every_exchange(Framing::Chunked).await;
}

#[tokio::test]
async fn records_content_length_answers_on_a_kept_alive_connection() {
    records_every_exchange(Framing::ContentLength).await;
}

#[tokio::test]
async fn records_close_delimited_answers() {
    records_every_exchange(Framing::CloseDelimited).await;
}

#[tokio::test]
async fn an_answer_shorter_than_its_length_is_recorded_as_broken_off() {
    let (url, sent) = upstream(Framing::BrokenOff).await;
    let dir = tempfile::tempdir().unwrap();
    let (socket, _) = recording_gateway(dir.path(), &url);
    let mut sender = connect(&dir.path().join("llm.sock")).await;
    let response = sender.send_request(ask(0)).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    let mut broke = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received.extend_from_slice(frame.data_ref().unwrap()),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "the sandbox sees the answer break, not end");
    socket.close().await;

    let recorded = Cassette::load(&dir.path().join("cassette.jsonl")).unwrap();
    assert_eq!(recorded.exchanges.len(), 1);
    let exchange = &recorded.exchanges[0];
    assert_eq!(
        exchange.interrupted.as_deref(),
        Some("the upstream answer broke off")
    );
    let sent = sent.lock().unwrap();
    assert_eq!(exchange.response_body, sent.answers[0]);
    assert_eq!(received, sent.answers[0]);
}

#[tokio::test]
async fn an_answer_the_sandbox_hangs_up_on_is_recorded_as_abandoned() {
    let (url, _) = upstream(Framing::Stalls).await;
    let dir = tempfile::tempdir().unwrap();
    let (socket, _) = recording_gateway(dir.path(), &url);
    let mut sender = connect(&dir.path().join("llm.sock")).await;
    let response = sender.send_request(ask(0)).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(
        first
            .data_ref()
            .unwrap()
            .starts_with(b"event: message_start")
    );
    drop((body, sender));

    let path = dir.path().join("cassette.jsonl");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while Cassette::load(&path).unwrap().exchanges.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hang-up is noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    socket.close().await;
    let recorded = Cassette::load(&path).unwrap();
    assert_eq!(recorded.exchanges.len(), 1);
    let exchange = &recorded.exchanges[0];
    assert_eq!(
        exchange.interrupted.as_deref(),
        Some("the answer was abandoned before its end")
    );
    assert!(exchange.response_body.starts_with(b"event: message_start"));
}
