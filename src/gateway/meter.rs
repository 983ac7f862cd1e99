//! Counting the tokens of one upstream answer from the bytes upstream sent, as
//! they stream to the sandbox: the gateway's own figure, independent of what the
//! agent later claims.
//!
//! A streamed answer (`text/event-stream`) is read event by event and never kept
//! whole; a plain JSON answer is kept up to [`MAX_JSON_BODY`] and read at the end.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::sync::Arc;

use super::tool_uses::{ToolUseObserver, ToolUseReader};
use crate::execution::Usage;
use crate::wire::SseParser;

/// The largest JSON body the meter keeps to read at the end: 16 MiB. A larger
/// one is passed through unread (a Messages API answer is far smaller).
pub const MAX_JSON_BODY: usize = 16 << 20;

/// The most bytes one server-sent event may span before the meter stops reading
/// the stream: 16 MiB. Bounds the memory a stream that never ends its event can take.
pub const MAX_SSE_EVENT: usize = 16 << 20;

/// An error upstream reported, in the body (`{"type":"error","error":{…}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamError {
    /// Upstream's error type (`rate_limit_error`, `overloaded_error`, …); empty
    /// when upstream sent none.
    #[serde(rename = "type")]
    pub kind: String,
    /// Upstream's message; empty when upstream sent none.
    pub message: String,
}

/// What one upstream answer consumed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metered {
    /// The model that answered, as upstream named it.
    pub model: Option<String>,
    /// Tokens, with the output count as of the last usage upstream sent.
    pub usage: Usage,
    /// Why generation stopped (`end_turn`, `tool_use`, `max_tokens`, …).
    pub stop_reason: Option<String>,
    /// The error upstream reported, if any.
    pub error: Option<UpstreamError>,
    /// True when the answer arrived whole: a `message_stop` event, or a full
    /// JSON body. False for a stream cut short, whose usage is what arrived.
    pub complete: bool,
    /// Tool calls the model asked for in this answer (`tool_use` blocks).
    pub tool_uses: u64,
    /// The answer's text blocks, joined, up to [`MAX_ANSWER_TEXT`] bytes.
    pub text: String,
}

/// The most text of one answer the meter keeps: 64 KiB. It is what agentd
/// reports as the execution's result when this was the last answer.
pub const MAX_ANSWER_TEXT: usize = 64 << 10;

/// Reads one upstream response body, fed chunk by chunk (split anywhere).
#[derive(Debug)]
pub struct UsageMeter {
    mode: Mode,
    metered: Metered,
    calls: ToolUseReader,
}

#[derive(Debug)]
enum Mode {
    /// No content type: decided by the first non-blank byte.
    Sniff(Vec<u8>),
    Sse {
        parser: SseParser,
        /// Bytes fed since an event last completed.
        pending: usize,
    },
    Json(Vec<u8>),
    /// Not something the meter reads, or past a size cap.
    Off,
}

impl UsageMeter {
    /// A meter for a body of this `Content-Type`: `text/event-stream` is read as a
    /// stream of events, `application/json` (or any `+json`) as one JSON value;
    /// without a content type the first non-blank byte decides (`{` JSON, else
    /// events); any other type is not read.
    pub fn new(content_type: Option<&str>) -> UsageMeter {
        let mode = match content_type {
            None => Mode::Sniff(Vec::new()),
            Some(value) => {
                let media = value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                if media == "text/event-stream" {
                    Mode::sse()
                } else if media == "application/json" || media.ends_with("+json") {
                    Mode::Json(Vec::new())
                } else {
                    Mode::Off
                }
            }
        };
        UsageMeter {
            mode,
            metered: Metered::default(),
            calls: ToolUseReader::default(),
        }
    }

    /// The same meter, telling `observer` (when there is one) about each tool
    /// call of the answer as soon as its block is complete.
    pub fn observing_tool_uses(mut self, observer: Option<Arc<dyn ToolUseObserver>>) -> Self {
        self.calls = ToolUseReader::new(observer);
        self
    }

    /// Reads the next piece of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        if let Mode::Sniff(held) = &mut self.mode {
            match chunk.iter().find(|b| !b.is_ascii_whitespace()) {
                None => {
                    if held.len() + chunk.len() > MAX_JSON_BODY {
                        self.mode = Mode::Off;
                    } else {
                        held.extend_from_slice(chunk);
                    }
                    return;
                }
                Some(first) => {
                    let held = std::mem::take(held);
                    self.mode = if *first == b'{' {
                        Mode::Json(held)
                    } else {
                        Mode::sse()
                    };
                }
            }
        }
        match &mut self.mode {
            Mode::Sse { parser, pending } => {
                let events = parser.push(chunk);
                if events.is_empty() {
                    *pending = pending.saturating_add(chunk.len());
                    if *pending > MAX_SSE_EVENT {
                        self.mode = Mode::Off;
                    }
                } else {
                    *pending = 0;
                }
                for event in events {
                    self.event(&event.event, &event.data);
                }
            }
            Mode::Json(body) => {
                if body.len() + chunk.len() > MAX_JSON_BODY {
                    self.mode = Mode::Off;
                } else {
                    body.extend_from_slice(chunk);
                }
            }
            Mode::Sniff(_) | Mode::Off => {}
        }
    }

    /// What the body consumed. A last event missing only its closing blank line
    /// still counts: upstream produced (and bills) those tokens either way.
    pub fn finish(mut self) -> Metered {
        match std::mem::replace(&mut self.mode, Mode::Off) {
            Mode::Sse { mut parser, .. } => {
                for event in parser.push(b"\n\n") {
                    self.event(&event.event, &event.data);
                }
            }
            Mode::Json(body) => self.json_body(&body),
            Mode::Sniff(_) | Mode::Off => {}
        }
        self.metered
    }

    fn event(&mut self, name: &str, data: &str) {
        let Ok(data) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(name);
        let index = data.get("index").and_then(Value::as_u64);
        match kind {
            "message_start" => {
                if let Some(message) = data.get("message") {
                    self.message(message);
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.metered.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = data.get("usage") {
                    self.usage(usage);
                }
            }
            "message_stop" => self.metered.complete = true,
            "content_block_start" => {
                if let Some(block) = data.get("content_block") {
                    self.block(block);
                    self.calls.start(index, block);
                }
            }
            "content_block_stop" => self.calls.stop(index),
            "content_block_delta" => {
                if data.pointer("/delta/type").and_then(Value::as_str) == Some("input_json_delta")
                    && let Some(partial) =
                        data.pointer("/delta/partial_json").and_then(Value::as_str)
                {
                    self.calls.delta(index, partial);
                }
                if data.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta")
                    && let Some(text) = data.pointer("/delta/text").and_then(Value::as_str)
                {
                    self.text(text);
                }
            }
            "error" => self.error(&data),
            _ => {}
        }
    }

    /// A message object: `message_start`'s, or a whole non-streamed answer.
    fn message(&mut self, message: &Value) {
        if let Some(model) = message.get("model").and_then(Value::as_str) {
            self.metered.model = Some(model.to_string());
        }
        if let Some(reason) = message.get("stop_reason").and_then(Value::as_str) {
            self.metered.stop_reason = Some(reason.to_string());
        }
        if let Some(usage) = message.get("usage") {
            self.usage(usage);
        }
        if let Some(blocks) = message.get("content").and_then(Value::as_array) {
            for block in blocks {
                self.block(block);
                self.calls.whole(block);
            }
        }
    }

    /// One content block (whole, or as a stream starts it).
    fn block(&mut self, block: &Value) {
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use" | "server_tool_use") => self.metered.tool_uses += 1,
            Some("text") => {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    self.text(text);
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        let room = MAX_ANSWER_TEXT.saturating_sub(self.metered.text.len());
        let mut end = room.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.metered.text.push_str(&text[..end]);
    }

    /// Input and cache figures: the latest one sent wins. Output tokens are
    /// cumulative for the message, so the largest one sent wins.
    fn usage(&mut self, usage: &Value) {
        let figure = |name: &str| usage.get(name).and_then(Value::as_u64);
        let total = &mut self.metered.usage;
        if let Some(tokens) = figure("input_tokens") {
            total.input_tokens = tokens;
        }
        if let Some(tokens) = figure("cache_creation_input_tokens") {
            total.cache_creation_input_tokens = tokens;
        }
        if let Some(tokens) = figure("cache_read_input_tokens") {
            total.cache_read_input_tokens = tokens;
        }
        if let Some(tokens) = figure("output_tokens") {
            total.output_tokens = total.output_tokens.max(tokens);
        }
    }

    fn error(&mut self, body: &Value) {
        let error = body.get("error");
        let field = |name: &str| {
            error
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        self.metered.error = Some(UpstreamError {
            kind: field("type"),
            message: field("message"),
        });
    }

    fn json_body(&mut self, body: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        if !value.is_object() {
            return;
        }
        let is_error = value.get("type").and_then(Value::as_str) == Some("error")
            || value.get("error").is_some_and(Value::is_object);
        if is_error {
            self.error(&value);
        } else {
            self.message(&value);
        }
        self.metered.complete = true;
    }
}

impl Mode {
    fn sse() -> Mode {
        Mode::Sse {
            parser: SseParser::default(),
            pending: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sse(events: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        for data in events {
            let name = data["type"].as_str().unwrap();
            out.extend(format!("event: {name}\ndata: {data}\n\n").into_bytes());
        }
        out
    }

    /// The order the Messages API streams in (docs/reference: claude-code.md),
    /// with a text block holding multibyte characters and a tool_use block.
    fn reference_stream() -> Vec<Value> {
        vec![
            json!({"type": "message_start", "message": {
                "id": "msg_01", "type": "message", "role": "assistant",
                "model": "claude-opus-5-5", "content": [], "stop_reason": null,
                "usage": {"input_tokens": 33, "cache_creation_input_tokens": 3740,
                          "cache_read_input_tokens": 10200, "output_tokens": 1}}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": "Écrit: 日本語 🦀"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block":
                   {"type": "tool_use", "id": "toolu_01", "name": "Write", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta":
                   {"type": "input_json_delta", "partial_json": "{\"file_path\": \"/w/a\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta",
                   "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"output_tokens": 296}}),
            json!({"type": "message_stop"}),
        ]
    }

    fn expected_reference() -> Metered {
        Metered {
            model: Some("claude-opus-5-5".into()),
            usage: Usage {
                input_tokens: 33,
                output_tokens: 296,
                cache_creation_input_tokens: 3740,
                cache_read_input_tokens: 10200,
            },
            stop_reason: Some("tool_use".into()),
            error: None,
            complete: true,
            tool_uses: 1,
            text: "Écrit: 日本語 🦀".into(),
        }
    }

    fn meter(content_type: Option<&str>, chunks: &[&[u8]]) -> Metered {
        let mut meter = UsageMeter::new(content_type);
        for chunk in chunks {
            meter.feed(chunk);
        }
        meter.finish()
    }

    #[test]
    fn reference_stream_split_at_every_offset_meters_the_same() {
        let body = sse(&reference_stream());
        let expected = expected_reference();
        assert_eq!(meter(Some("text/event-stream"), &[&body]), expected);
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(
                meter(Some("text/event-stream; charset=utf-8"), &[a, b]),
                expected,
                "split at {split}"
            );
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(meter(Some("text/event-stream"), &bytes), expected);
        let crlf = String::from_utf8(body.clone())
            .unwrap()
            .replace('\n', "\r\n");
        assert_eq!(meter(None, &[crlf.as_bytes()]), expected);
    }

    #[test]
    fn message_delta_output_is_cumulative_and_newer_fields_replace() {
        let mut events = reference_stream();
        events.insert(
            8,
            json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": 120}}),
        );
        events[9]["usage"] = json!({"output_tokens": 296, "input_tokens": 40,
            "cache_creation_input_tokens": null, "cache_read_input_tokens": 10300});
        events.insert(
            10,
            json!({"type": "message_delta", "delta": {"stop_reason": null},
                   "usage": {"output_tokens": 200}}),
        );
        let metered = meter(Some("text/event-stream"), &[&sse(&events)]);
        assert_eq!(
            metered.usage,
            Usage {
                input_tokens: 40,
                output_tokens: 296,
                cache_creation_input_tokens: 3740,
                cache_read_input_tokens: 10300,
            }
        );
        assert_eq!(metered.stop_reason.as_deref(), Some("tool_use"));
    }

    #[test]
    fn a_stream_cut_short_reports_what_arrived() {
        let events = reference_stream();
        let before_delta = sse(&events[..8]);
        let metered = meter(Some("text/event-stream"), &[&before_delta]);
        assert!(!metered.complete);
        assert_eq!(metered.usage.input_tokens, 33);
        assert_eq!(metered.usage.output_tokens, 1);
        assert_eq!(metered.stop_reason, None);

        let mut before_stop = sse(&events[..9]);
        before_stop.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"mess");
        let metered = meter(Some("text/event-stream"), &[&before_stop]);
        assert!(!metered.complete);
        assert_eq!(metered.usage.output_tokens, 296);

        let mut no_blank_line = sse(&events);
        no_blank_line.truncate(no_blank_line.len() - 1);
        assert_eq!(
            meter(Some("text/event-stream"), &[&no_blank_line]),
            expected_reference()
        );
    }

    #[test]
    fn error_event_is_recorded() {
        let mut events = reference_stream()[..4].to_vec();
        events.push(json!({"type": "error", "error":
            {"type": "overloaded_error", "message": "Overloaded"}}));
        let metered = meter(Some("text/event-stream"), &[&sse(&events)]);
        assert_eq!(
            metered.error,
            Some(UpstreamError {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            })
        );
        assert!(!metered.complete);
        assert_eq!(metered.usage.cache_read_input_tokens, 10200);
    }

    #[test]
    fn json_message_body() {
        let body = json!({"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "hé"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 200, "output_tokens": 40,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 7,
            "service_tier": "standard"}})
        .to_string()
        .into_bytes();
        let expected = Metered {
            model: Some("claude-sonnet-4-5-20250929".into()),
            usage: Usage {
                input_tokens: 200,
                output_tokens: 40,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: 7,
            },
            stop_reason: Some("end_turn".into()),
            error: None,
            complete: true,
            tool_uses: 0,
            text: "hé".into(),
        };
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(meter(Some("application/json"), &[a, b]), expected);
        }
        assert_eq!(meter(None, &[b"\n ", &body]), expected);
        let count = meter(Some("application/json"), &[br#"{"input_tokens": 99}"#]);
        assert_eq!(
            count.usage,
            Usage::default(),
            "count_tokens is not consumption"
        );
        assert!(count.complete);
    }

    #[test]
    fn json_error_body() {
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"r"}"#;
        let metered = meter(Some("application/json"), &[&body[..10], &body[10..]]);
        assert_eq!(
            metered.error,
            Some(UpstreamError {
                kind: "rate_limit_error".into(),
                message: "slow down".into()
            })
        );
        assert!(metered.complete);
        assert_eq!(metered.usage, Usage::default());
        let bare = meter(
            Some("application/json"),
            &[br#"{"error":{"message":"no"}}"#],
        );
        assert_eq!(bare.error.unwrap().message, "no");
    }

    #[test]
    fn garbage_never_panics_and_meters_nothing() {
        let garbage: [&[u8]; 9] = [
            b"\xff\xfe\x00garbage\n\n",
            b"data: {not json}\n\ndata: [1,2]\n\ndata: null\n\n",
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":7}\n\n",
            b"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-5}}\n\n",
            b"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1.5e3}}\n\n",
            b"data: {\"type\":\"message_delta\",\"delta\":[],\"usage\":[]}\n\n",
            b"data: {\"type\":\"surprise\",\"usage\":{\"output_tokens\":9}}\n\n",
            b"data: {\"type\":\"message_start\",\"message\":{\"model\":5,\"usage\":\"x\"}}\n\n",
            b"",
        ];
        for body in garbage {
            for content_type in [Some("text/event-stream"), Some("application/json"), None] {
                let metered = meter(content_type, &[body]);
                assert_eq!(metered.usage, Usage::default(), "{body:?}");
                assert_eq!(metered.model, None);
                assert!(!metered.complete);
            }
        }
        let unread = meter(Some("text/html"), &[&sse(&reference_stream())]);
        assert_eq!(unread, Metered::default());
        let array = meter(
            Some("application/json"),
            &[b"[{\"usage\":{\"input_tokens\":1}}]"],
        );
        assert_eq!(array, Metered::default());
    }

    #[derive(Default)]
    struct Calls(std::sync::Mutex<Vec<crate::gateway::ToolUse>>);

    impl ToolUseObserver for Calls {
        fn tool_use(&self, call: crate::gateway::ToolUse) {
            self.0.lock().unwrap().push(call);
        }
    }

    #[test]
    fn tool_calls_are_assembled_from_their_deltas_at_any_split() {
        let body = sse(&reference_stream());
        for split in [0, 7, body.len() / 2, body.len() - 3, body.len()] {
            let calls = Arc::new(Calls::default());
            let mut meter =
                UsageMeter::new(Some("text/event-stream")).observing_tool_uses(Some(calls.clone()));
            meter.feed(&body[..split]);
            meter.feed(&body[split..]);
            meter.finish();
            let seen = calls.0.lock().unwrap().clone();
            assert_eq!(seen.len(), 1, "split at {split}");
            assert_eq!(seen[0].id, "toolu_01");
            assert_eq!(seen[0].name, "Write");
            assert_eq!(seen[0].input, Some(json!({"file_path": "/w/a"})));
        }
    }

    #[test]
    fn a_call_is_reported_when_its_block_stops_and_an_unreadable_input_is_none() {
        let calls = Arc::new(Calls::default());
        let mut meter =
            UsageMeter::new(Some("text/event-stream")).observing_tool_uses(Some(calls.clone()));
        let events = reference_stream();
        meter.feed(&sse(&events[..7]));
        assert!(
            calls.0.lock().unwrap().is_empty(),
            "not before its block stops"
        );
        meter.feed(&sse(&events[7..8]));
        assert_eq!(calls.0.lock().unwrap().len(), 1, "as soon as it stops");

        let calls = Arc::new(Calls::default());
        let mut meter =
            UsageMeter::new(Some("text/event-stream")).observing_tool_uses(Some(calls.clone()));
        meter.feed(&sse(&[
            json!({"type": "content_block_start", "index": 0, "content_block":
                   {"type": "tool_use", "id": "toolu_x", "name": "Bash", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta":
                   {"type": "input_json_delta", "partial_json": "{\"command\": "}}),
            json!({"type": "content_block_stop", "index": 0}),
        ]));
        let seen = calls.0.lock().unwrap().clone();
        assert_eq!(seen[0].input, None);
    }

    #[test]
    fn tool_calls_of_a_json_answer() {
        let calls = Arc::new(Calls::default());
        let mut meter =
            UsageMeter::new(Some("application/json")).observing_tool_uses(Some(calls.clone()));
        meter.feed(
            json!({"type": "message", "model": "m", "content": [
                {"type": "tool_use", "id": "toolu_j", "name": "Bash", "input": {"command": "ls"}}]})
            .to_string()
            .as_bytes(),
        );
        meter.finish();
        let seen = calls.0.lock().unwrap().clone();
        assert_eq!(seen[0].input, Some(json!({"command": "ls"})));
    }

    #[test]
    fn oversized_bodies_are_given_up_not_kept() {
        let mut json = UsageMeter::new(Some("application/json"));
        json.feed(br#"{"usage":{"input_tokens":5},"pad":""#);
        json.feed(&vec![b'a'; MAX_JSON_BODY]);
        json.feed(b"\"}");
        assert!(matches!(json.mode, Mode::Off));
        assert_eq!(json.finish(), Metered::default());

        let mut stream = UsageMeter::new(Some("text/event-stream"));
        stream.feed(&sse(&reference_stream()[..1]));
        stream.feed(b"data: ");
        for _ in 0..17 {
            stream.feed(&vec![b'x'; 1 << 20]);
        }
        assert!(matches!(stream.mode, Mode::Off));
        assert_eq!(stream.finish().usage.input_tokens, 33);
    }
}
