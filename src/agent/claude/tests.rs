//! The parser against real Claude Code output and against hostile input.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::StreamParser;
use crate::execution::{AgentEvent, AgentResult, Usage};

/// A real 2-turn session (Write, then text) of Claude Code 2.1.330.
const TRANSCRIPT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/claude-code-2.1.330-stream-json.jsonl"
));

/// Real single lines of Claude Code 2.1.330 from failing runs: an API retry, a
/// permission denial and its tool result, a synthetic API-error message and its
/// result, and an `error_max_turns` result.
const EDGE_LINES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/claude-code-2.1.330-edge-lines.jsonl"
));

const SESSION: &str = "c4b55b77-1e5f-4777-bfe5-680b810b2092";

fn parse_all(text: &str) -> Vec<Vec<AgentEvent>> {
    let mut parser = StreamParser::default();
    text.lines().map(|line| parser.parse_line(line)).collect()
}

fn only(events: Vec<AgentEvent>) -> AgentEvent {
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

#[test]
fn real_transcript_gives_the_exact_events() {
    let lines = parse_all(TRANSCRIPT);
    assert_eq!(lines.len(), 5);
    let mut lines = lines.into_iter();

    let AgentEvent::SessionStarted {
        session_id,
        model,
        cwd,
        tools,
        version,
        permission_mode,
    } = only(lines.next().unwrap())
    else {
        panic!("first line is not the session start");
    };
    assert_eq!(session_id.as_deref(), Some(SESSION));
    assert_eq!(model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(cwd.as_deref(), Some("/workspace"));
    assert_eq!(version.as_deref(), Some("2.1.330"));
    assert_eq!(permission_mode.as_deref(), Some("bypassPermissions"));
    assert_eq!(tools.len(), 22);
    assert_eq!(tools.first().map(String::as_str), Some("Task"));
    assert!(tools.iter().any(|t| t == "Write") && tools.iter().any(|t| t == "Bash"));

    assert_eq!(
        lines.next().unwrap(),
        vec![
            AgentEvent::ToolCall {
                id: "toolu_01".into(),
                name: "Write".into(),
                input: json!({"file_path": "/workspace/hello.txt", "content": "hello from agent\n"}),
                parent_tool_use_id: None,
            },
            AgentEvent::Usage {
                message_id: Some("msg_1".into()),
                usage: Usage {
                    input_tokens: 100,
                    output_tokens: 1,
                    ..Usage::default()
                },
            },
        ]
    );
    assert_eq!(
        lines.next().unwrap(),
        vec![AgentEvent::ToolResult {
            tool_use_id: "toolu_01".into(),
            content: "File created successfully at: /workspace/hello.txt (file state is current \
                      in your context — no need to Read it back)"
                .into(),
            is_error: false,
        }]
    );
    // Same message id as the tool call: its usage was already counted.
    assert_eq!(
        lines.next().unwrap(),
        vec![AgentEvent::Text {
            message_id: Some("msg_1".into()),
            text: "Done: wrote hello.txt".into(),
        }]
    );
    let AgentEvent::Result(result) = only(lines.next().unwrap()) else {
        panic!("last line is not the result");
    };
    assert_eq!(
        result,
        AgentResult {
            subtype: "success".into(),
            is_error: false,
            num_turns: 2,
            duration_ms: Some(221),
            duration_api_ms: Some(46),
            total_cost_usd: Some(0.0016),
            usage: Usage {
                input_tokens: 200,
                output_tokens: 40,
                ..Usage::default()
            },
            result: Some("Done: wrote hello.txt".into()),
            errors: vec![],
            permission_denials: 0,
            session_id: Some(SESSION.into()),
        }
    );
    assert!(result.succeeded());
}

#[test]
fn real_failure_lines_are_understood() {
    let mut lines = parse_all(EDGE_LINES).into_iter();
    assert_eq!(
        only(lines.next().unwrap()),
        AgentEvent::ApiRetry {
            attempt: Some(1),
            max_retries: Some(10),
            retry_delay_ms: Some(570),
            error_status: None,
            error: Some("unknown".into()),
        }
    );
    let AgentEvent::Unknown { raw } = only(lines.next().unwrap()) else {
        panic!("system/permission_denied is not a known line");
    };
    assert_eq!(raw["subtype"], "permission_denied");
    assert_eq!(
        only(lines.next().unwrap()),
        AgentEvent::ToolResult {
            tool_use_id: "toolu_1".into(),
            content: "Permission to use Bash with command echo denied now has been denied.".into(),
            is_error: true,
        }
    );
    let api_error = lines.next().unwrap();
    assert!(
        matches!(&api_error[0], AgentEvent::Text { text, .. } if text == "API Error: 400 scripted stop")
    );
    assert!(matches!(&api_error[1], AgentEvent::Usage { usage, .. } if *usage == Usage::default()));

    let AgentEvent::Result(result) = only(lines.next().unwrap()) else {
        panic!("not a result");
    };
    assert_eq!(
        (result.subtype.as_str(), result.is_error),
        ("success", true)
    );
    assert!(!result.succeeded());

    let AgentEvent::Result(result) = only(lines.next().unwrap()) else {
        panic!("not a result");
    };
    assert_eq!(result.subtype, "error_max_turns");
    assert_eq!(result.errors, vec!["Reached maximum number of turns (1)"]);
    assert_eq!(result.result, None);
    assert_eq!(
        result.failure_reason(),
        "error_max_turns: Reached maximum number of turns (1)"
    );
}

#[test]
fn usage_is_counted_once_per_message_but_always_when_unnamed() {
    let mut parser = StreamParser::default();
    let line = |id: &str, text: &str| {
        json!({"type": "assistant", "message": {"id": id, "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 3, "output_tokens": 4}}})
        .to_string()
    };
    let usages = |events: &[AgentEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, AgentEvent::Usage { .. }))
            .count()
    };
    assert_eq!(usages(&parser.parse_line(&line("m1", "a"))), 1);
    assert_eq!(usages(&parser.parse_line(&line("m1", "b"))), 0);
    assert_eq!(usages(&parser.parse_line(&line("m2", "c"))), 1);
    let unnamed = r#"{"type":"assistant","message":{"content":[],"usage":{"input_tokens":1}}}"#;
    assert_eq!(usages(&parser.parse_line(unnamed)), 1);
    assert_eq!(usages(&parser.parse_line(unnamed)), 1);
    assert_eq!(
        usages(&StreamParser::default().parse_line(&line("m1", "a"))),
        1
    );
}

#[test]
fn thinking_subagent_calls_and_unknown_blocks() {
    let line = json!({"type": "assistant", "parent_tool_use_id": "toolu_parent",
    "message": {"id": "m", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "server_tool_use", "id": "srv", "name": "web_search"},
        {"type": "tool_use", "id": "t1", "name": "Read"}
    ]}});
    let events = StreamParser::default().parse_line(&line.to_string());
    assert_eq!(
        events,
        vec![
            AgentEvent::Thinking {
                message_id: Some("m".into()),
                text: "hmm".into()
            },
            AgentEvent::Unknown {
                raw: json!({"type": "server_tool_use", "id": "srv", "name": "web_search"})
            },
            AgentEvent::ToolCall {
                id: "t1".into(),
                name: "Read".into(),
                input: json!({}),
                parent_tool_use_id: Some("toolu_parent".into()),
            },
        ]
    );
}

#[test]
fn unknown_types_and_shapes_are_kept_whole() {
    let lines = [
        json!({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}}),
        json!({"type": "stream_event", "event": {"type": "message_start"}}),
        json!({"type": "system", "subtype": "compact_boundary"}),
        json!({"type": "system"}),
        json!({"no_type": true}),
        json!({"type": "assistant", "message": {"content": "not an array"}}),
        json!({"type": "assistant", "message": {"id": "x", "content": [{"type": "text"}]}}),
        json!({"type": "user", "message": {"role": "user", "content": "a prompt"}}),
        json!({"type": "user", "message": {"content": [{"type": "text", "text": "subagent input"}]}}),
        json!({"type": "user", "message": {"content": [{"type": "tool_result", "content": "no id"}]}}),
    ];
    for line in lines {
        let events = StreamParser::default().parse_line(&line.to_string());
        assert_eq!(
            events,
            vec![AgentEvent::Unknown { raw: line.clone() }],
            "{line}"
        );
    }
}

#[test]
fn wrong_types_in_known_lines_are_filled_as_far_as_possible() {
    let line = json!({"type": "result", "num_turns": "3", "total_cost_usd": "0.5",
        "duration_ms": 12.7, "is_error": "false", "usage": {"input_tokens": "10", "output_tokens": null},
        "errors": "boom", "permission_denials": {"n": 1}, "result": {"a": 1}, "session_id": 5});
    let AgentEvent::Result(result) = only(StreamParser::default().parse_line(&line.to_string()))
    else {
        panic!("not a result");
    };
    assert_eq!(result.subtype, "unknown");
    assert!(!result.is_error && !result.succeeded());
    assert_eq!(result.num_turns, 3);
    assert_eq!(result.total_cost_usd, Some(0.5));
    assert_eq!(result.duration_ms, Some(12));
    assert_eq!(result.usage.input_tokens, 10);
    assert_eq!(result.errors, vec!["boom"]);
    assert_eq!(result.permission_denials, 0);
    assert_eq!(result.result.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(result.session_id, None);

    let retry = json!({"type": "system", "subtype": "api_retry", "attempt": "2",
        "error_status": 529, "error": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}});
    assert_eq!(
        only(StreamParser::default().parse_line(&retry.to_string())),
        AgentEvent::ApiRetry {
            attempt: Some(2),
            max_retries: None,
            retry_delay_ms: None,
            error_status: Some(529),
            error: Some("overloaded_error: Overloaded".into()),
        }
    );
    let denials = json!({"type": "result", "subtype": "success", "permission_denials": [{}, {}]});
    let AgentEvent::Result(result) = only(StreamParser::default().parse_line(&denials.to_string()))
    else {
        panic!("not a result");
    };
    assert_eq!(result.permission_denials, 2);
    assert!(result.succeeded());
}

#[test]
fn lines_that_are_not_json_objects_are_raw() {
    let mut parser = StreamParser::default();
    for line in [
        "not json",
        "{\"type\":",
        "42",
        "\"text\"",
        "[1,2]",
        "null",
        "\u{feff}{}",
    ] {
        assert_eq!(
            parser.parse_line(line),
            vec![AgentEvent::Raw { line: line.into() }]
        );
    }
    assert_eq!(
        parser.parse_line("oops\r"),
        vec![AgentEvent::Raw {
            line: "oops".into()
        }]
    );
    for blank in ["", "   ", "\r", "\r\n", "\t \u{a0}"] {
        assert_eq!(parser.parse_line(blank), vec![], "{blank:?}");
    }
}

#[test]
fn crlf_lines_parse_like_lf_lines() {
    let with_cr: Vec<Vec<AgentEvent>> = {
        let mut parser = StreamParser::default();
        TRANSCRIPT
            .lines()
            .map(|l| parser.parse_line(&format!("{l}\r")))
            .collect()
    };
    assert_eq!(with_cr, parse_all(TRANSCRIPT));
}

#[test]
fn huge_tool_results_and_raw_lines_are_capped_with_a_marker() {
    let body = "é".repeat(50_000); // 100 000 bytes
    let line = json!({"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": body}]}]}});
    let AgentEvent::ToolResult { content, .. } =
        only(StreamParser::default().parse_line(&line.to_string()))
    else {
        panic!("not a tool result");
    };
    let (kept, marker) = content.split_once('\n').unwrap();
    assert_eq!(kept.len(), 65_536);
    assert_eq!(marker, "[… truncated by agentd: 34464 more bytes]");

    let garbage = "x".repeat(200_000);
    let AgentEvent::Raw { line } = only(StreamParser::default().parse_line(&garbage)) else {
        panic!("not raw");
    };
    assert!(line.len() < 66_000 && line.ends_with("[… truncated by agentd: 134464 more bytes]"));
}

/// A tool call whose input holds a lone surrogate, as Claude Code prints it:
/// `JSON.stringify` escapes the unpaired `\udc80`, which serde_json refuses.
const LONE_SURROGATE_CALL: &str = r#"{"type":"assistant","message":{"id":"msg_4","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"tool_use","id":"toolu_04","name":"Bash","input":{"command":"printf '\udc80' > x; echo \\udc80 \ud83d\ude00","description":"lone \udc80"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},"context_management":null},"parent_tool_use_id":null,"session_id":"c4b55b77-1e5f-4777-bfe5-680b810b2092","uuid":"b8cc47a1-4b93-45ea-aa74-a71d08907a21"}"#;

#[test]
fn a_lone_surrogate_does_not_lose_the_tool_call() {
    assert!(serde_json::from_str::<Value>(LONE_SURROGATE_CALL).is_err());
    assert_eq!(
        StreamParser::default().parse_line(LONE_SURROGATE_CALL),
        vec![
            AgentEvent::ToolCall {
                id: "toolu_04".into(),
                name: "Bash".into(),
                // The lone one becomes U+FFFD; the escaped backslash's text and
                // the pair (😀) are read as they are.
                input: json!({
                    "command": "printf '\u{fffd}' > x; echo \\udc80 😀",
                    "description": "lone \u{fffd}"
                }),
                parent_tool_use_id: None,
            },
            AgentEvent::Usage {
                message_id: Some("msg_4".into()),
                usage: Usage {
                    input_tokens: 7,
                    output_tokens: 2,
                    ..Usage::default()
                },
            },
        ]
    );
}

#[test]
fn every_tool_call_is_counted_whatever_its_surrogates() {
    let calls = [
        LONE_SURROGATE_CALL.replace("toolu_04", "toolu_a"),
        LONE_SURROGATE_CALL
            .replace("toolu_04", "toolu_b")
            .replace(r"\udc80", r"\ud800"),
        LONE_SURROGATE_CALL
            .replace("toolu_04", "toolu_c")
            .replace(r"\udc80", r"\ud83d\ude00"),
        LONE_SURROGATE_CALL.replace("toolu_04", "toolu_d"),
    ];
    // A tool output cut in the middle of an emoji leaves a lone high surrogate.
    let result = r#"{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_a","type":"tool_result","content":"cut \ud83d"}]}}"#;
    let mut parser = StreamParser::default();
    let mut events: Vec<AgentEvent> = calls
        .iter()
        .flat_map(|line| parser.parse_line(line))
        .collect();
    events.extend(parser.parse_line(result));
    let ids: Vec<&str> = events
        .iter()
        .filter_map(|event| match event {
            AgentEvent::ToolCall { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["toolu_a", "toolu_b", "toolu_c", "toolu_d"]);
    assert_eq!(
        events.last(),
        Some(&AgentEvent::ToolResult {
            tool_use_id: "toolu_a".into(),
            content: "cut \u{fffd}".into(),
            is_error: false,
        })
    );
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every value of a JSON tree with one node replaced by `substitute`, one copy per node.
fn with_each_node_replaced(value: &Value, substitute: &Value) -> Vec<Value> {
    let mut out = vec![substitute.clone()];
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                for replaced in with_each_node_replaced(child, substitute) {
                    let mut copy = map.clone();
                    copy.insert(key.clone(), replaced);
                    out.push(Value::Object(copy));
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                for replaced in with_each_node_replaced(child, substitute) {
                    let mut copy = items.clone();
                    copy[i] = replaced;
                    out.push(Value::Array(copy));
                }
            }
        }
        _ => {}
    }
    out
}

fn hostile_inputs() -> Vec<String> {
    let reference: Vec<&str> = TRANSCRIPT.lines().chain(EDGE_LINES.lines()).collect();
    let mut inputs = Vec::new();
    for line in &reference {
        for (end, _) in line.char_indices() {
            inputs.push(line[..end].to_string());
        }
    }
    let substitutes = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!("12"),
        json!(""),
        json!([]),
        json!({}),
        json!([1, "x", null, {"type": "text"}]),
        json!({"type": "tool_result", "content": [{"type": "image"}]}),
    ];
    for line in &reference {
        let value: Value = serde_json::from_str(line).unwrap();
        for substitute in &substitutes {
            for mutated in with_each_node_replaced(&value, substitute) {
                inputs.push(mutated.to_string());
            }
        }
    }
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let alphabet: Vec<char> = "{}[]\":,.-+eE0123456789 truefalsnl\\\r\t€😀\u{0}"
        .chars()
        .collect();
    for _ in 0..3_000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
        inputs.push(
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect(),
        );
    }
    let fragments = [
        r"\ud800",
        r"\udbff",
        r"\udc80",
        r"\udfff",
        r"\u",
        r"\\",
        r"\",
        "\"",
        "{",
        "}",
        ":",
        ",",
        "[",
        "]",
        "x",
        "😀",
        r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t","name":"n","input":{"a":""#,
        r#""}}]}}"#,
    ];
    for _ in 0..3_000 {
        inputs.push(
            (0..rng.below(16))
                .map(|_| fragments[rng.below(fragments.len())])
                .collect(),
        );
    }
    for depth in [127, 128, 129, 10_000, 200_000] {
        inputs.push("[".repeat(depth) + &"]".repeat(depth));
        inputs.push("{\"a\":".repeat(depth) + "1" + &"}".repeat(depth));
        inputs.push(format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"t","content":{}1{}}}]}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ));
    }
    let huge = "\"".to_string() + &"\\u00e9".repeat(300_000) + "\"";
    inputs.push(format!(
        r#"{{"type":"result","subtype":{huge},"errors":[{huge}],"result":{huge}}}"#
    ));
    inputs.push(format!(
        r#"{{"type":"system","subtype":"api_retry","error":{huge}}}"#
    ));
    inputs.push(format!(
        r#"{{"type":"assistant","message":{{"id":{huge},"content":[{{"type":{huge}}}]}}}}"#
    ));
    inputs
}

#[test]
fn hostile_input_never_panics_and_every_line_gives_an_event() {
    let inputs = hostile_inputs();
    assert!(inputs.len() > 20_000, "only {} inputs", inputs.len());
    let mut parser = StreamParser::default();
    for input in &inputs {
        let events = parser.parse_line(input);
        let blank = input.trim_end_matches(['\r', '\n']).trim().is_empty();
        assert_eq!(events.is_empty(), blank, "input: {:.200}", input);
        for event in &events {
            if let AgentEvent::ToolResult { content, .. } | AgentEvent::Raw { line: content } =
                event
            {
                assert!(
                    content.len() <= 64 * 1024 + 64,
                    "uncapped text from {:.200}",
                    input
                );
            }
            serde_json::to_string(event).expect("every event serialises");
        }
    }
}
