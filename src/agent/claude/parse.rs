//! Turning Claude Code's stream-json lines into agent events.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::surrogates::replace_lone_surrogates;
use super::text::{cap_bytes, ellipsize};
use crate::execution::{AgentEvent, AgentResult, Usage};

/// The most text one tool result, error or unreadable line keeps in an event.
/// Events are stored and streamed to every subscriber; the raw transcript keeps all.
const MAX_EVENT_TEXT_BYTES: usize = 64 * 1024;

type Object = Map<String, Value>;

/// Reads the stdout of `claude -p --output-format stream-json --verbose`, one
/// line at a time, into [`AgentEvent`]s.
///
/// It remembers which model messages it has already counted: the CLI prints one
/// API message over several lines sharing `message.id`, each repeating the usage,
/// and a [`AgentEvent::Usage`] must be emitted once per message. Use one parser per
/// session; a new one starts with nothing counted.
#[derive(Debug, Default)]
pub struct StreamParser {
    usage_counted: HashSet<String>,
}

impl StreamParser {
    /// The events one stdout line means, in order. A blank line means none; any
    /// other line gives at least one: a line that is not a JSON object becomes
    /// [`AgentEvent::Raw`], and a JSON line of a type, subtype or shape this parser
    /// does not know is kept whole as [`AgentEvent::Unknown`]. Within a known line,
    /// a content block of an unknown kind is kept as `Unknown` with that block.
    /// A lone surrogate escape (`\udc80`, which JavaScript writes and serde_json
    /// refuses) is read as U+FFFD rather than losing the line. Never panics.
    pub fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Vec::new();
        }
        let Some(value) = json_value(line) else {
            return vec![raw(line)];
        };
        let Some(object) = value.as_object() else {
            return vec![raw(line)];
        };
        let events = match (text(object, "type"), text(object, "subtype")) {
            (Some("system"), Some("init")) => vec![session_started(object)],
            (Some("system"), Some("api_retry")) => vec![api_retry(object)],
            (Some("assistant"), _) => self.assistant(object),
            (Some("user"), _) => user(object),
            (Some("result"), _) => vec![AgentEvent::Result(agent_result(object))],
            _ => Vec::new(),
        };
        if events.is_empty() {
            vec![AgentEvent::Unknown { raw: value }]
        } else {
            events
        }
    }

    /// Text, thinking and tool calls of one assistant line, then the message's
    /// usage if this is the first line of that message. Empty when nothing in the
    /// line is recognised, so the caller keeps it whole.
    fn assistant(&mut self, line: &Object) -> Vec<AgentEvent> {
        let Some(message) = line.get("message").and_then(Value::as_object) else {
            return Vec::new();
        };
        let Some(content) = message.get("content").and_then(Value::as_array) else {
            return Vec::new();
        };
        let message_id = text(message, "id").map(String::from);
        let parent_tool_use_id = text(line, "parent_tool_use_id").map(String::from);
        let mut recognised = false;
        let mut events: Vec<AgentEvent> = content
            .iter()
            .map(|block| {
                assistant_block(block, &message_id, &parent_tool_use_id)
                    .inspect(|_| recognised = true)
                    .unwrap_or_else(|| AgentEvent::Unknown { raw: block.clone() })
            })
            .collect();
        if let Some(usage) = message.get("usage").and_then(usage) {
            let first_time = match &message_id {
                Some(id) => self.usage_counted.insert(id.clone()),
                None => true,
            };
            if first_time {
                recognised = true;
                events.push(AgentEvent::Usage { message_id, usage });
            }
        }
        if recognised { events } else { Vec::new() }
    }
}

/// The JSON value of a line, read leniently: a line serde_json refuses only for
/// its lone surrogate escapes (which JavaScript writes) is read with each of them
/// replaced by U+FFFD, so the events in it are not lost.
fn json_value(line: &str) -> Option<Value> {
    serde_json::from_str(line)
        .ok()
        .or_else(|| serde_json::from_str(&replace_lone_surrogates(line)?).ok())
}

fn raw(line: &str) -> AgentEvent {
    AgentEvent::Raw {
        line: cap_bytes(line.to_string(), MAX_EVENT_TEXT_BYTES),
    }
}

fn session_started(line: &Object) -> AgentEvent {
    let tools = line
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    AgentEvent::SessionStarted {
        session_id: owned(line, "session_id"),
        model: owned(line, "model"),
        cwd: owned(line, "cwd"),
        tools,
        version: owned(line, "claude_code_version"),
        permission_mode: owned(line, "permissionMode"),
    }
}

fn api_retry(line: &Object) -> AgentEvent {
    AgentEvent::ApiRetry {
        attempt: lenient_u64(line.get("attempt")),
        max_retries: lenient_u64(line.get("max_retries")),
        retry_delay_ms: lenient_u64(line.get("retry_delay_ms")),
        error_status: lenient_u64(line.get("error_status")),
        error: line
            .get("error")
            .filter(|error| !error.is_null())
            .map(readable_error),
    }
}

fn assistant_block(
    block: &Value,
    message_id: &Option<String>,
    parent_tool_use_id: &Option<String>,
) -> Option<AgentEvent> {
    let block = block.as_object()?;
    match text(block, "type")? {
        "text" => Some(AgentEvent::Text {
            message_id: message_id.clone(),
            text: owned(block, "text")?,
        }),
        "thinking" => Some(AgentEvent::Thinking {
            message_id: message_id.clone(),
            text: owned(block, "thinking")?,
        }),
        "tool_use" => Some(AgentEvent::ToolCall {
            id: owned(block, "id")?,
            name: owned(block, "name")?,
            input: block
                .get("input")
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new())),
            parent_tool_use_id: parent_tool_use_id.clone(),
        }),
        _ => None,
    }
}

/// The tool results of one user line, other blocks kept as `Unknown`. Empty when
/// the line holds no tool result (a prompt, a subagent's input), so the caller
/// keeps it whole.
fn user(line: &Object) -> Vec<AgentEvent> {
    let Some(content) = line
        .get("message")
        .and_then(|message| message.get("content"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let events: Vec<(bool, AgentEvent)> = content
        .iter()
        .map(|block| match tool_result(block) {
            Some(event) => (true, event),
            None => (false, AgentEvent::Unknown { raw: block.clone() }),
        })
        .collect();
    if events.iter().any(|(is_result, _)| *is_result) {
        events.into_iter().map(|(_, event)| event).collect()
    } else {
        Vec::new()
    }
}

fn tool_result(block: &Value) -> Option<AgentEvent> {
    let block = block.as_object()?;
    if text(block, "type")? != "tool_result" {
        return None;
    }
    Some(AgentEvent::ToolResult {
        tool_use_id: owned(block, "tool_use_id")?,
        content: cap_bytes(flatten(block.get("content")), MAX_EVENT_TEXT_BYTES),
        is_error: block
            .get("is_error")
            .and_then(lenient_bool)
            .unwrap_or(false),
    })
}

/// A tool result's content as text: strings as they are, text blocks joined by
/// line breaks, other blocks as a placeholder such as `[image]`.
fn flatten(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|block| match block {
                Value::String(s) => s.clone(),
                Value::Object(object) => match (text(object, "type"), text(object, "text")) {
                    (Some("text"), Some(text)) => text.to_string(),
                    (Some(kind), _) if kind != "text" => format!("[{}]", ellipsize(kind, 40)),
                    _ => compact(block),
                },
                other => compact(other),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => compact(other),
    }
}

fn agent_result(line: &Object) -> AgentResult {
    let subtype = owned(line, "subtype").unwrap_or_else(|| "unknown".to_string());
    let is_error = line
        .get("is_error")
        .and_then(lenient_bool)
        .unwrap_or(subtype != "success");
    let permission_denials = match line.get("permission_denials") {
        Some(Value::Array(denials)) => denials.len() as u64,
        other => lenient_u64(other).unwrap_or(0),
    };
    AgentResult {
        is_error,
        num_turns: lenient_u64(line.get("num_turns")).unwrap_or(0),
        duration_ms: lenient_u64(line.get("duration_ms")),
        duration_api_ms: lenient_u64(line.get("duration_api_ms")),
        total_cost_usd: lenient_f64(line.get("total_cost_usd")),
        usage: line.get("usage").and_then(usage).unwrap_or_default(),
        result: match line.get("result") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(compact(other)),
        },
        errors: errors(line.get("errors")),
        permission_denials,
        session_id: owned(line, "session_id"),
        subtype,
    }
}

fn errors(value: Option<&Value>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|item| !item.is_null())
            .map(readable_error)
            .collect(),
        Some(other) => vec![readable_error(other)],
    }
}

/// An error as a person would want to read it: strings as they are, API error
/// objects as `type: message`, anything else as compact JSON.
fn readable_error(error: &Value) -> String {
    let readable = match error {
        Value::String(s) => s.clone(),
        Value::Object(object) => match (text(object, "message"), object.get("error")) {
            (Some(message), _) => match text(object, "type") {
                Some(kind) => format!("{kind}: {message}"),
                None => message.to_string(),
            },
            (None, Some(inner)) if !inner.is_null() => readable_error(inner),
            _ => compact(error),
        },
        other => compact(other),
    };
    cap_bytes(readable, MAX_EVENT_TEXT_BYTES)
}

/// Token counts from a usage object, each read leniently; absent counts are zero.
fn usage(value: &Value) -> Option<Usage> {
    let usage = value.as_object()?;
    let count = |key: &str| lenient_u64(usage.get(key)).unwrap_or(0);
    Some(Usage {
        input_tokens: count("input_tokens"),
        output_tokens: count("output_tokens"),
        cache_creation_input_tokens: count("cache_creation_input_tokens"),
        cache_read_input_tokens: count("cache_read_input_tokens"),
    })
}

fn text<'a>(object: &'a Object, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

fn owned(object: &Object, key: &str) -> Option<String> {
    text(object, key).map(String::from)
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A non-negative count from a number, a float or a numeric string.
fn lenient_u64(value: Option<&Value>) -> Option<u64> {
    let from_float = |f: f64| (f.is_finite() && f >= 0.0).then_some(f as u64);
    match value? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(from_float)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(from_float))
        }
        _ => None,
    }
}

/// A finite number from a number or a numeric string.
fn lenient_f64(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_are_read_leniently() {
        assert_eq!(lenient_u64(Some(&json!(7))), Some(7));
        assert_eq!(lenient_u64(Some(&json!(7.9))), Some(7));
        assert_eq!(lenient_u64(Some(&json!(" 12 "))), Some(12));
        assert_eq!(lenient_u64(Some(&json!("3.5"))), Some(3));
        assert_eq!(lenient_u64(Some(&json!(-1))), None);
        assert_eq!(lenient_u64(Some(&json!("-1"))), None);
        assert_eq!(lenient_u64(Some(&json!(1e300))), Some(u64::MAX));
        assert_eq!(lenient_u64(Some(&json!("NaN"))), None);
        assert_eq!(lenient_u64(Some(&json!(null))), None);
        assert_eq!(lenient_u64(None), None);
        assert_eq!(lenient_f64(Some(&json!("0.5"))), Some(0.5));
        assert_eq!(lenient_f64(Some(&json!("inf"))), None);
        assert_eq!(lenient_bool(&json!("true")), Some(true));
        assert_eq!(lenient_bool(&json!(1)), None);
    }

    #[test]
    fn errors_read_like_sentences() {
        let api = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(readable_error(&api), "overloaded_error: Overloaded");
        assert_eq!(readable_error(&json!({"message": "boom"})), "boom");
        assert_eq!(readable_error(&json!("unknown")), "unknown");
        assert_eq!(readable_error(&json!({"code": 5})), r#"{"code":5}"#);
        assert_eq!(readable_error(&json!(503)), "503");
    }

    #[test]
    fn tool_result_content_is_flattened_to_text() {
        let blocks = json!([
            {"type": "text", "text": "line one"},
            {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
            "plain",
            {"type": "text", "text": 5},
            42
        ]);
        assert_eq!(
            flatten(Some(&blocks)),
            "line one\n[image]\nplain\n{\"text\":5,\"type\":\"text\"}\n42"
        );
        assert_eq!(flatten(None), "");
        assert_eq!(flatten(Some(&json!({"a": 1}))), r#"{"a":1}"#);
    }
}
