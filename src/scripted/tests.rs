//! The scripted model driven over HTTP, the way a client sees it.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::{RecordedRequest, Scenario, ScriptedModel};
use crate::execution::Usage;

async fn serve(scenario: &str) -> ScriptedModel {
    let scenario = Scenario::from_json(scenario).unwrap();
    ScriptedModel::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A conversation that already holds `assistants` assistant messages, each
/// answered by a tool result, as the CLI sends it.
fn conversation(assistants: usize) -> Value {
    let mut messages = vec![json!({"role": "user", "content": "go"})];
    for turn in 0..assistants {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": format!("toolu_{turn}_0"), "name": "Bash", "input": {}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{turn}_0"), "content": "ok"}]}));
    }
    Value::Array(messages)
}

fn body(assistants: usize, stream: Option<bool>, tools: bool) -> Vec<u8> {
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are a test."}],
        "messages": conversation(assistants),
    });
    if let Some(stream) = stream {
        body["stream"] = json!(stream);
    }
    if tools {
        body["tools"] = json!([{"name": "Bash", "input_schema": {"type": "object"}}]);
    }
    serde_json::to_vec(&body).unwrap()
}

async fn post(model: &ScriptedModel, path: &str, body: Vec<u8>) -> reqwest::Response {
    client()
        .post(format!("{}{path}", model.base_url()))
        .header("content-type", "application/json")
        .header("x-api-key", "sk-test")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn message(model: &ScriptedModel, assistants: usize) -> Value {
    let response = post(model, "/v1/messages", body(assistants, None, true)).await;
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Parses an SSE body strictly: every event is `event: NAME\ndata: JSON\n\n`
/// and its data's `type` is its name.
fn parse_sse(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with("\n\n"), "{text:?}");
    text.split_terminator("\n\n")
        .map(|frame| {
            let (name_line, data_line) = frame.split_once('\n').unwrap();
            let name = name_line.strip_prefix("event: ").unwrap().to_string();
            let data: Value = serde_json::from_str(data_line.strip_prefix("data: ").unwrap())
                .unwrap_or_else(|e| panic!("{e}: {data_line}"));
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

async fn stream(model: &ScriptedModel, assistants: usize) -> Vec<(String, Value)> {
    let response = post(
        model,
        "/v1/messages?beta=true",
        body(assistants, Some(true), true),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(response.headers().get("content-length").is_none());
    parse_sse(&response.text().await.unwrap())
}

fn error_of(body: &[u8]) -> (String, String) {
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["type"], "error", "{body}");
    (
        body["error"]["type"].as_str().unwrap().to_string(),
        body["error"]["message"].as_str().unwrap().to_string(),
    )
}

const TOOL_TURN: &str = r#"{"turns":[
    {"content":[{"type":"thinking","thinking":"The user wants a file."},
                {"type":"text","text":"I'll create it."},
                {"type":"tool_use","name":"Write",
                 "input":{"file_path":"/workspace/repo/hello.txt","content":"hi ✓\n","n":[1,2,{"x":null}]}}],
     "usage":{"input_tokens":120,"output_tokens":30,"cache_creation_input_tokens":7,"cache_read_input_tokens":9}},
    {"content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":150,"output_tokens":10}}]}"#;

#[tokio::test]
async fn streams_a_turn_event_by_event() {
    let model = serve(TOOL_TURN).await;
    let events = stream(&model, 0).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let block = |deltas: usize| {
        let mut names = vec!["content_block_start"];
        names.extend(std::iter::repeat_n("content_block_delta", deltas));
        names.push("content_block_stop");
        names
    };
    let mut expected = vec!["message_start", "ping"];
    expected.extend(block(3)); // two thinking pieces and the signature
    expected.extend(block(2));
    expected.extend(block(3));
    expected.extend(["message_delta", "message_stop"]);
    assert_eq!(names, expected);

    let start = &events[0].1["message"];
    assert!(
        start["id"].as_str().unwrap().starts_with("msg_0_"),
        "{start}"
    );
    assert_eq!(start["type"], "message");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(
        start["usage"],
        json!({"input_tokens": 120, "cache_creation_input_tokens": 7,
               "cache_read_input_tokens": 9, "output_tokens": 1})
    );

    let deltas_of = |index: u64, field: &str| -> Vec<String> {
        events
            .iter()
            .filter(|(name, data)| name == "content_block_delta" && data["index"] == index)
            .filter_map(|(_, data)| data["delta"][field].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(deltas_of(0, "thinking").concat(), "The user wants a file.");
    assert_eq!(deltas_of(0, "signature").len(), 1);
    assert_eq!(deltas_of(1, "text").concat(), "I'll create it.");

    let tool_start = events
        .iter()
        .find(|(name, data)| name == "content_block_start" && data["index"] == 2)
        .map(|(_, data)| data)
        .unwrap();
    assert_eq!(
        tool_start["content_block"],
        json!({"type": "tool_use", "id": "toolu_0_2", "name": "Write", "input": {}})
    );
    let pieces = deltas_of(2, "partial_json");
    assert!(pieces.len() >= 2, "{pieces:?}");
    let input: Value = serde_json::from_str(&pieces.concat()).unwrap();
    let scripted = Scenario::from_json(TOOL_TURN).unwrap();
    let super::Block::ToolUse {
        input: scripted_input,
        ..
    } = &scripted.turns[0].content[2]
    else {
        panic!("the scenario's third block is a tool call");
    };
    assert_eq!(&input, scripted_input);

    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 30);
    model.shutdown().await;
}

#[tokio::test]
async fn picks_the_turn_by_assistant_count() {
    let model = serve(
        r#"{"model":"scripted-model","turns":[
            {"content":[{"type":"text","text":"zero"}]},
            {"content":[{"type":"text","text":"one"}]},
            {"content":[{"type":"text","text":"two"}]}]}"#,
    )
    .await;
    for assistants in [2, 0, 1, 1, 2] {
        let answer = message(&model, assistants).await;
        let expected = ["zero", "one", "two"][assistants];
        assert_eq!(answer["content"][0]["text"], expected);
        assert_eq!(answer["model"], "scripted-model");
    }
    let turns: Vec<Option<usize>> = model.requests().iter().map(|r| r.turn).collect();
    assert_eq!(turns, [Some(2), Some(0), Some(1), Some(1), Some(2)]);
}

#[tokio::test]
async fn answers_scripted_errors_before_each_turn() {
    let model = serve(
        r#"{"turns":[
            {"content":[{"type":"text","text":"a"}],
             "errors":[{"status":429,"type":"rate_limit_error","message":"slow down"},
                       {"status":529,"type":"overloaded_error","message":"busy"}]},
            {"content":[{"type":"text","text":"b"}],
             "errors":[{"status":500,"type":"api_error","message":"boom"}]}]}"#,
    )
    .await;
    let mut seen = Vec::new();
    for assistants in [0, 0, 0, 0, 1, 1] {
        let response = post(&model, "/v1/messages", body(assistants, Some(true), true)).await;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.bytes().await.unwrap();
        let kind = if status == 200 {
            parse_sse(std::str::from_utf8(&bytes).unwrap());
            "ok".to_string()
        } else {
            let (kind, message) = error_of(&bytes);
            assert!(!message.is_empty());
            kind
        };
        seen.push((status, kind, retry_after));
    }
    let zero = Some("0".to_string());
    assert_eq!(
        seen,
        vec![
            (429, "rate_limit_error".to_string(), zero.clone()),
            (529, "overloaded_error".to_string(), zero),
            (200, "ok".to_string(), None),
            (200, "ok".to_string(), None),
            (500, "api_error".to_string(), None),
            (200, "ok".to_string(), None),
        ]
    );
    let statuses: Vec<u16> = model.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 529, 200, 200, 500, 200]);
}

#[tokio::test]
async fn past_the_script_it_ends_with_zero_usage() {
    let model = serve(TOOL_TURN).await;
    let events = stream(&model, 2).await;
    let start = &events[0].1["message"];
    assert_eq!(start["usage"]["input_tokens"], 0);
    assert_eq!(start["usage"]["output_tokens"], 0);
    let text: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "scenario finished");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 0);
}

#[tokio::test]
async fn past_the_script_it_can_repeat_the_last_turn() {
    let model = serve(
        r#"{"after_last":"repeat_last","turns":[
            {"content":[{"type":"text","text":"first"}]},
            {"content":[{"type":"tool_use","name":"Bash","input":{"command":"true"}}],
             "usage":{"input_tokens":5,"output_tokens":3},
             "errors":[{"status":529,"type":"overloaded_error"}]}]}"#,
    )
    .await;
    let answer = message(&model, 4).await;
    assert_eq!(
        answer["content"],
        json!([{"type": "tool_use", "id": "toolu_4_0", "name": "Bash",
                "input": {"command": "true"}}])
    );
    assert_eq!(answer["usage"]["input_tokens"], 5);
    assert_eq!(answer["stop_reason"], "tool_use");
}

#[tokio::test]
async fn frames_streams_with_a_content_length_when_asked() {
    let script = r#"{"turns":[{"content":[{"type":"text","text":"same bytes"}]}]}"#;
    let chunked = serve(script).await;
    let framed = serve(
        r#"{"framing":"content_length","turns":[{"content":[{"type":"text","text":"same bytes"}]}]}"#,
    )
    .await;
    let expected = post(&chunked, "/v1/messages", body(0, Some(true), true))
        .await
        .text()
        .await
        .unwrap();
    // Two answers on one kept-alive connection, each framed by its length.
    let client = client();
    for _ in 0..2 {
        let response = client
            .post(format!("{}/v1/messages", framed.base_url()))
            .body(body(0, Some(true), true))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let length = response.headers()["content-length"].to_str().unwrap();
        assert_eq!(length, expected.len().to_string());
        assert!(response.headers().get("transfer-encoding").is_none());
        let text = response.text().await.unwrap();
        // Message ids carry a per-server serial; the rest is byte for byte the same.
        assert_eq!(text.replace("_000002", "_000001"), expected);
    }
    assert!(
        Scenario::from_json(
            r#"{"framing":"gzip","turns":[{"content":[{"type":"text","text":"x"}]}]}"#
        )
        .is_err(),
        "an unknown framing is refused"
    );
}

#[tokio::test]
async fn answers_a_whole_message_when_not_streaming() {
    let model = serve(TOOL_TURN).await;
    for stream in [None, Some(false)] {
        let response = post(&model, "/v1/messages", body(1, stream, true)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert!(answer["id"].as_str().unwrap().starts_with("msg_1_"));
        let expected = json!({
            "id": answer["id"], "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Done."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 150, "output_tokens": 10,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        });
        assert_eq!(answer, expected);
    }
}

/// A tool input a parsed value cannot hold: a lone surrogate escape.
const RAW_INPUT_TURN: &str = r#"{"turns":[{"content":[
    {"type":"tool_use","name":"Bash","input_json":"{\"command\":\"echo \\udc80\"}"}]}]}"#;

#[tokio::test]
async fn sends_a_raw_tool_input_exactly_as_written() {
    let raw = r#"{"command":"echo \udc80"}"#;
    let model = serve(RAW_INPUT_TURN).await;
    let events = stream(&model, 0).await;
    let pieces: Vec<&str> = events
        .iter()
        .filter(|(name, data)| name == "content_block_delta" && data["index"] == 0)
        .map(|(_, data)| data["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert!(pieces.len() >= 2, "{pieces:?}");
    assert_eq!(pieces.concat(), raw);

    let response = post(&model, "/v1/messages", body(0, None, true)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains(&format!(r#""input":{raw}"#)), "{text}");
    assert!(!text.contains("agentd input_json"), "{text}");
    // The same body with the escape repaired is the message the script describes.
    let answer: Value = serde_json::from_str(&text.replace(r"\udc80", r"\ufffd")).unwrap();
    assert_eq!(answer["content"][0]["input"]["command"], "echo \u{fffd}");
    assert_eq!(answer["content"][0]["name"], "Bash");
    assert_eq!(answer["stop_reason"], "tool_use");
}

#[tokio::test]
async fn side_requests_get_zero_usage_and_play_no_turn() {
    let model = serve(
        r#"{"turns":[{"content":[{"type":"text","text":"real"}],"usage":{"input_tokens":9,"output_tokens":9},
                      "errors":[{"status":429,"type":"rate_limit_error"}]}]}"#,
    )
    .await;
    let response = post(&model, "/v1/messages", body(0, None, false)).await;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_ne!(answer["content"][0]["text"], "real");
    let usage: Usage = serde_json::from_value(answer["usage"].clone()).unwrap();
    assert_eq!(usage, Usage::default());
    // The side request did not use up the turn's scripted error.
    let response = post(&model, "/v1/messages", body(0, None, true)).await;
    assert_eq!(response.status(), 429);
    let records = model.requests();
    assert_eq!((records[0].tools, records[0].turn), (false, None));
    assert_eq!((records[1].tools, records[1].turn), (true, Some(0)));
}

#[tokio::test]
async fn unknown_routes_and_bad_bodies_get_api_errors() {
    let model = serve(TOOL_TURN).await;
    let response = client()
        .get(format!("{}/v1/messages", model.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        error_of(&response.bytes().await.unwrap()).0,
        "not_found_error"
    );
    let response = post(&model, "/v1/complete", body(0, None, true)).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        error_of(&response.bytes().await.unwrap()).0,
        "not_found_error"
    );

    for (bad, problem) in [
        (b"{not json".to_vec(), "not valid JSON"),
        (br#"{"model":"m"}"#.to_vec(), "messages"),
        (
            br#"{"model":"m","messages":[],"tools":{}}"#.to_vec(),
            "tools",
        ),
    ] {
        let response = post(&model, "/v1/messages", bad).await;
        assert_eq!(response.status(), 400);
        let (kind, message) = error_of(&response.bytes().await.unwrap());
        assert_eq!(kind, "invalid_request_error");
        assert!(message.contains(problem), "{message}");
    }
}

#[tokio::test]
async fn counts_tokens_deterministically() {
    let model = serve(TOOL_TURN).await;
    let mut counts = Vec::new();
    for assistants in [1, 1, 3] {
        let response = post(
            &model,
            "/v1/messages/count_tokens",
            body(assistants, None, true),
        )
        .await;
        assert_eq!(response.status(), 200);
        let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        counts.push(answer["input_tokens"].as_u64().unwrap());
    }
    assert_eq!(counts[0], counts[1]);
    assert!(counts[2] > counts[1], "{counts:?}");
    assert!(model.requests().iter().all(|r| r.turn.is_none()));
}

#[tokio::test]
async fn records_every_request() {
    let model = serve(TOOL_TURN).await;
    let response = client()
        .post(format!("{}/v1/messages?beta=true", model.base_url()))
        .header("x-api-key", "sk-ant-dummy")
        .header("authorization", "Bearer t0ken")
        .body(body(1, Some(true), true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    post(&model, "/nowhere", Vec::new()).await;

    let expected = vec![
        RecordedRequest {
            method: "POST".into(),
            path: "/v1/messages".into(),
            query: Some("beta=true".into()),
            model: Some("claude-sonnet-4-5".into()),
            stream: true,
            turn: Some(1),
            messages: 3,
            tools: true,
            x_api_key: Some("sk-ant-dummy".into()),
            authorization: Some("Bearer t0ken".into()),
            status: 200,
            headers: Vec::new(),
        },
        RecordedRequest {
            method: "POST".into(),
            path: "/nowhere".into(),
            query: None,
            model: None,
            stream: false,
            turn: None,
            messages: 0,
            tools: false,
            x_api_key: Some("sk-test".into()),
            authorization: None,
            status: 404,
            headers: Vec::new(),
        },
    ];
    let without_headers = |records: Vec<RecordedRequest>| -> Vec<RecordedRequest> {
        records
            .into_iter()
            .map(|record| RecordedRequest {
                headers: Vec::new(),
                ..record
            })
            .collect()
    };
    let records = model.requests();
    let header = |name: &str| {
        records[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-api-key").as_deref(), Some("sk-ant-dummy"));
    assert_eq!(without_headers(records.clone()), expected);
    let served: Vec<RecordedRequest> = serde_json::from_slice(
        &client()
            .get(format!("{}/_scripted/requests", model.base_url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(served, records);
    assert_eq!(model.requests().len(), 2, "reading the log is not logged");
}

#[tokio::test]
async fn stops_serving_on_shutdown_and_on_drop() {
    let model = serve(TOOL_TURN).await;
    let url = format!("{}/v1/messages", model.base_url());
    model.shutdown().await;
    assert!(client().post(&url).send().await.is_err());

    let model = serve(TOOL_TURN).await;
    let url = format!("{}/v1/messages", model.base_url());
    drop(model);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(client().post(&url).send().await.is_err());
}

#[tokio::test]
async fn delays_the_first_byte() {
    let model =
        serve(r#"{"turns":[{"content":[{"type":"text","text":"slow"}],"delay_ms":300}]}"#).await;
    let started = std::time::Instant::now();
    let answer = message(&model, 0).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(answer["content"][0]["text"], "slow");
}
