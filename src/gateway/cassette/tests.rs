//! Recording a conversation with the scripted model through [`ExchangeRecorder`],
//! then replaying the cassette to other clients.

use std::time::{Duration, Instant};

use futures::StreamExt;
use hyper::HeaderMap;
use hyper::header::HeaderValue;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::{Cassette, CassetteHeader, CassetteWriter, Exchange, ReplayModel, ReplayTiming};
use crate::scripted::{Scenario, ScriptedModel};

const SECRET: &str = "sk-ant-test-0123456789";

const SCENARIO: &str = r#"{"turns":[
    {"content":[{"type":"text","text":"Reading ✓"},
                {"type":"tool_use","name":"Read","input":{"file_path":"/workspace/repo/README.md"}}],
     "usage":{"input_tokens":12,"output_tokens":40},
     "errors":[{"status":429,"type":"rate_limit_error","message":"slow down"}]},
    {"content":[{"type":"tool_use","name":"Write","input":{"file_path":"/workspace/repo/A.md","content":"a\n"}}],
     "usage":{"input_tokens":20,"output_tokens":30}},
    {"content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":30,"output_tokens":5}}]}"#;

fn addr() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A request as a client sends it: `assistants` assistant messages so far;
/// `note` changes the body without changing its turn.
#[derive(Debug, Clone)]
struct Ask {
    path: &'static str,
    assistants: usize,
    stream: bool,
    tools: bool,
    note: &'static str,
}

const fn ask(assistants: usize) -> Ask {
    Ask {
        path: "/v1/messages?beta=true",
        assistants,
        stream: true,
        tools: true,
        note: "first run",
    }
}

impl Ask {
    fn body(&self) -> Vec<u8> {
        let mut messages = vec![json!({"role": "user", "content": format!("go ({})", self.note)})];
        for turn in 0..self.assistants {
            messages.push(json!({"role": "assistant", "content": [
                {"type": "tool_use", "id": format!("toolu_{turn}_1"), "name": "Read", "input": {}}]}));
            messages.push(json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": format!("toolu_{turn}_1"), "content": "ok"}]}));
        }
        let mut body =
            json!({"model": "claude-sonnet-4-5", "max_tokens": 1000, "messages": messages});
        if self.stream {
            body["stream"] = json!(true);
        }
        if self.tools {
            body["tools"] = json!([{"name": "Read", "input_schema": {"type": "object"}}]);
        }
        serde_json::to_vec(&body).unwrap()
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        headers.insert("x-api-key", HeaderValue::from_static(SECRET));
        headers
    }
}

/// What a client got: status, content-type, retry-after, body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap().to_string())
}

/// Sends `ask` to `base_url`, feeding a recorder (when given) as the body streams.
async fn send(
    base_url: &str,
    ask: &Ask,
    writer: Option<&CassetteWriter>,
) -> (Answer, Option<Exchange>) {
    let body = ask.body();
    let headers = ask.headers();
    let mut recorder = writer.map(|w| w.recorder("POST", ask.path, &headers, &body));
    let response = client()
        .post(format!("{base_url}{}", ask.path))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if let Some(recorder) = recorder.as_mut() {
        recorder.on_response(status, response.headers());
    }
    let content_type = header(response.headers(), "content-type");
    let retry_after = header(response.headers(), "retry-after");
    let mut stream = response.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(recorder) = recorder.as_mut() {
            recorder.on_chunk(&chunk);
        }
        bytes.extend_from_slice(&chunk);
    }
    let exchange = recorder.map(|recorder| recorder.finish());
    if let (Some(writer), Some(exchange)) = (writer, &exchange) {
        writer.append(exchange).unwrap();
    }
    let answer = Answer {
        status,
        content_type,
        retry_after,
        body: bytes,
    };
    (answer, exchange)
}

/// The recorded run: a side request, turn 0 rate-limited then retried, a token
/// count, turn 1 streamed, turn 2 not streamed.
fn recorded_run() -> Vec<Ask> {
    vec![
        Ask {
            tools: false,
            stream: false,
            ..ask(0)
        },
        ask(0),
        ask(0),
        Ask {
            path: "/v1/messages/count_tokens",
            stream: false,
            ..ask(1)
        },
        ask(1),
        Ask {
            stream: false,
            ..ask(2)
        },
    ]
}

async fn record(dir: &std::path::Path) -> (std::path::PathBuf, Vec<Answer>) {
    let scripted = ScriptedModel::start(Scenario::from_json(SCENARIO).unwrap(), addr())
        .await
        .unwrap();
    let path = dir.join("cassette.jsonl");
    let writer = CassetteWriter::create(&path).unwrap();
    let mut answers = Vec::new();
    for ask in recorded_run() {
        answers.push(send(&scripted.base_url(), &ask, Some(&writer)).await.0);
    }
    scripted.shutdown().await;
    (path, answers)
}

#[tokio::test]
async fn records_what_the_client_saw_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (path, answers) = record(dir.path()).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 429, 200, 200, 200, 200]);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(SECRET));
    assert!(!text.contains("x-api-key"));
    let cassette = Cassette::load(&path).unwrap();
    cassette.assert_free_of(&[SECRET]).unwrap();
    assert_eq!(cassette.header.cassette, 1);
    let seen: Vec<(u64, u16, Option<usize>)> = cassette
        .exchanges
        .iter()
        .map(|e| (e.seq, e.status, e.turn))
        .collect();
    assert_eq!(
        seen,
        [
            (0, 200, Some(0)),
            (1, 429, Some(0)),
            (2, 200, Some(0)),
            (3, 200, Some(1)),
            (4, 200, Some(1)),
            (5, 200, Some(2)),
        ]
    );
    for (exchange, (answer, ask)) in cassette
        .exchanges
        .iter()
        .zip(answers.iter().zip(recorded_run()))
    {
        assert_eq!(exchange.response_body, answer.body);
        assert_eq!(exchange.request_body, ask.body());
        assert_eq!(exchange.path, ask.path);
        assert!(exchange.first_byte_ms.unwrap() <= exchange.duration_ms);
        assert!(
            exchange
                .request_headers
                .contains(&("anthropic-version".into(), "2023-06-01".into()))
        );
    }
    let started: Vec<u64> = cassette.exchanges.iter().map(|e| e.started_ms).collect();
    assert_eq!(started[0], 0);
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "{started:?}");
    assert_eq!(
        header_of(&cassette.exchanges[1], "retry-after").as_deref(),
        Some("0")
    );
    assert!(header_of(&cassette.exchanges[4], "request-id").is_some());
}

fn header_of(exchange: &Exchange, name: &str) -> Option<String> {
    exchange
        .response_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// The recorded run as another client sends it: different text, same turns.
fn replayed_run() -> Vec<Ask> {
    recorded_run()
        .into_iter()
        .map(|ask| Ask {
            note: "replay",
            ..ask
        })
        .collect()
}

async fn replay(cassette: &Cassette, asks: &[Ask]) -> (Vec<Answer>, ReplayModel) {
    let model = ReplayModel::start(cassette.clone(), addr()).await.unwrap();
    let mut answers = Vec::new();
    for ask in asks {
        answers.push(send(&model.base_url(), ask, None).await.0);
    }
    (answers, model)
}

#[tokio::test]
async fn replays_byte_identical_answers_in_recorded_order() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recorded) = record(dir.path()).await;
    let cassette = Cassette::load(&path).unwrap();
    assert_ne!(recorded_run()[1].body(), replayed_run()[1].body());

    let (first, model) = replay(&cassette, &replayed_run()).await;
    assert_eq!(first, recorded);
    assert_eq!(
        first[1].status, 429,
        "the first ask for turn 0 gets the 429"
    );
    assert_eq!(first[2].status, 200, "its retry gets the answer");
    assert_eq!(first[1].retry_after.as_deref(), Some("0"));
    assert!(
        first[4]
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(model.unplayed().is_empty(), "{:?}", model.unplayed());
    assert!(model.misses().is_empty());
    model.shutdown().await;

    let (second, model) = replay(&cassette, &replayed_run()).await;
    assert_eq!(second, first, "two replays answer alike");
    model.shutdown().await;
}

#[tokio::test]
async fn kinds_keep_their_own_queues() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recorded) = record(dir.path()).await;
    let cassette = Cassette::load(&path).unwrap();
    // Another order across kinds; within turn 0 the 429 still comes first.
    let run = replayed_run();
    let order = [5, 3, 1, 4, 0, 2];
    let asks: Vec<Ask> = order.iter().map(|&i| run[i].clone()).collect();
    let (answers, model) = replay(&cassette, &asks).await;
    for (answer, &i) in answers.iter().zip(&order) {
        assert_eq!(answer, &recorded[i], "request {i}");
    }
    assert!(model.unplayed().is_empty());
}

#[tokio::test]
async fn an_unrecorded_turn_gets_an_invalid_request_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recorded) = record(dir.path()).await;
    let cassette = Cassette::load(&path).unwrap();
    let model = ReplayModel::start(cassette, addr()).await.unwrap();
    let url = model.base_url();

    let (answer, _) = send(&url, &ask(7), None).await;
    assert_eq!(answer.status, 400);
    let error: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("turn 7"), "{message}");

    // Turn 1 was recorded once: a second ask for it has no answer left.
    assert_eq!(send(&url, &ask(1), None).await.0, recorded[4]);
    let (again, _) = send(&url, &ask(1), None).await;
    assert_eq!(again.status, 400);
    assert!(String::from_utf8_lossy(&again.body).contains("turn 1"));
    // A non-streamed ask for a turn recorded streamed is another kind.
    let (other_kind, _) = send(
        &url,
        &Ask {
            stream: false,
            ..ask(0)
        },
        None,
    )
    .await;
    assert_eq!(other_kind.status, 400);
    assert_eq!(model.misses().len(), 3);
    assert_eq!(model.unplayed(), vec![0, 1, 2, 3, 5]);
}

fn crafted(exchanges: Vec<Exchange>) -> Cassette {
    Cassette {
        header: CassetteHeader::now(),
        exchanges,
    }
}

fn exchange(seq: u64, ask: &Ask) -> Exchange {
    Exchange {
        seq,
        method: "POST".into(),
        path: ask.path.into(),
        request_headers: Vec::new(),
        request_body: ask.body(),
        status: 200,
        response_headers: Vec::new(),
        response_body: Vec::new(),
        started_ms: 0,
        first_byte_ms: Some(0),
        duration_ms: 0,
        turn: Some(ask.assistants),
        truncated: false,
        interrupted: None,
    }
}

const EVENTS: &str =
    "event: message_start\ndata: {}\n\nevent: ping\ndata: {}\n\nevent: message_stop\ndata: {}\n\n";

/// Reads a streamed answer; the times (since `started`) at which chunks arrived.
async fn chunk_times(url: &str, ask: &Ask) -> (Vec<Duration>, Vec<u8>) {
    let started = Instant::now();
    let response = client()
        .post(format!("{url}{}", ask.path))
        .body(ask.body())
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let (mut times, mut body) = (Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
        times.push(started.elapsed());
    }
    (times, body)
}

#[tokio::test]
async fn honours_recorded_timing_when_asked() {
    let mut paced = exchange(0, &ask(0));
    paced.response_headers = vec![("content-type".into(), "text/event-stream".into())];
    paced.response_body = EVENTS.as_bytes().to_vec();
    paced.first_byte_ms = Some(150);
    paced.duration_ms = 450;
    let cassette = crafted(vec![paced]);

    let model = ReplayModel::start_with(cassette.clone(), addr(), ReplayTiming::AsRecorded)
        .await
        .unwrap();
    let (times, body) = chunk_times(&model.base_url(), &ask(0)).await;
    assert_eq!(body, EVENTS.as_bytes());
    assert_eq!(times.len(), 3, "one chunk per event: {times:?}");
    assert!(times[0] >= Duration::from_millis(150), "{times:?}");
    assert!(
        times[1] - times[0] >= Duration::from_millis(140),
        "{times:?}"
    );
    assert!(times[2] >= Duration::from_millis(450), "{times:?}");

    let model = ReplayModel::start(cassette, addr()).await.unwrap();
    let (times, body) = chunk_times(&model.base_url(), &ask(0)).await;
    assert_eq!(body, EVENTS.as_bytes());
    assert!(
        times[times.len() - 1] < Duration::from_millis(150),
        "{times:?}"
    );
}

#[tokio::test]
async fn retry_after_is_zero_unless_timing_is_as_recorded() {
    let mut limited = exchange(0, &ask(0));
    limited.status = 429;
    limited.response_headers = vec![
        ("content-type".into(), "application/json".into()),
        ("retry-after".into(), "7".into()),
    ];
    limited.response_body =
        br#"{"type":"error","error":{"type":"rate_limit_error","message":"x"}}"#.to_vec();
    limited.first_byte_ms = Some(0);
    let cassette = crafted(vec![limited]);
    for (timing, expected) in [
        (ReplayTiming::Immediate, "0"),
        (ReplayTiming::AsRecorded, "7"),
    ] {
        let model = ReplayModel::start_with(cassette.clone(), addr(), timing)
            .await
            .unwrap();
        let (answer, _) = send(&model.base_url(), &ask(0), None).await;
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after.as_deref(), Some(expected), "{timing:?}");
        assert_eq!(answer.body, cassette.exchanges[0].response_body);
    }
}

#[tokio::test]
async fn replays_binary_bodies_and_broken_streams_as_recorded() {
    let mut binary = exchange(0, &ask(0));
    binary.response_headers = vec![("content-type".into(), "application/octet-stream".into())];
    binary.response_body = vec![0xff, 0x00, 0xfe, b'\n'];
    let mut broken = exchange(1, &ask(1));
    broken.response_headers = vec![("content-type".into(), "text/event-stream".into())];
    broken.response_body = b"event: message_start\ndata: {}\n\nevent: content_blo".to_vec();
    broken.interrupted = Some("connection reset".into());
    // Through a file, so the binary body takes its base64 form on the way.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let writer = CassetteWriter::create(&path).unwrap();
    writer.append(&binary).unwrap();
    writer.append(&broken).unwrap();
    let cassette = Cassette::load(&path).unwrap();
    let model = ReplayModel::start(cassette, addr()).await.unwrap();

    let (answer, _) = send(&model.base_url(), &ask(0), None).await;
    assert_eq!(answer.body, [0xff, 0x00, 0xfe, b'\n']);

    let response = client()
        .post(format!("{}{}", model.base_url(), ask(1).path))
        .body(ask(1).body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = Vec::new();
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(_) => failed = true,
        }
    }
    assert!(failed, "the client sees the stream break");
    assert_eq!(received, broken.response_body);
}

#[tokio::test]
async fn refuses_truncated_recordings() {
    let mut cut = exchange(3, &ask(0));
    cut.truncated = true;
    let error = ReplayModel::start(crafted(vec![exchange(0, &ask(1)), cut]), addr())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("exchange 3"), "{error}");
}
