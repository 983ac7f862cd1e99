//! How much of what the agent prints agentd keeps: every event's text is
//! capped, and an execution's agent events are bounded in number and bytes, so
//! no sandbox can fill agentd's database, memory or an operator's terminal.
//!
//! Events that decide what the run was (the session start, the agent's result)
//! and agentd's own events are always kept; the rest are dropped once the
//! budget is spent, counted, and reported by one event at the end.

use serde_json::Value;

use crate::execution::AgentEvent;
use crate::execution::EventBody;

/// Longest text kept in any one string of an event: 64 KiB (a tool result that
/// long is already more than a person reads; the model saw it whole).
pub const MAX_EVENT_TEXT: usize = 64 << 10;
/// Largest event kept, serialized: 256 KiB. A bigger one keeps its kind and a
/// cut-down copy of its content.
pub const MAX_EVENT_BYTES: usize = 256 << 10;
/// Most agent events stored per execution: 20,000 (a session of thousands of turns).
pub const MAX_AGENT_EVENTS: u64 = 20_000;
/// Most bytes of agent events stored per execution: 32 MiB.
pub const MAX_AGENT_EVENT_BYTES: u64 = 32 << 20;

/// The running tally of one execution's agent events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBudget {
    kept: u64,
    kept_bytes: u64,
    dropped: u64,
    dropped_bytes: u64,
    announced: bool,
}

impl EventBudget {
    /// Caps each event's text and keeps those the budget allows, in order. The
    /// first time events are dropped, a warning saying so is added in their place.
    pub fn admit(&mut self, bodies: Vec<EventBody>) -> Vec<EventBody> {
        let mut kept = Vec::with_capacity(bodies.len());
        for body in bodies {
            let body = cap_event(body);
            let EventBody::Agent(agent) = &body else {
                kept.push(body);
                continue;
            };
            let size = serde_json::to_vec(agent)
                .map(|v| v.len() as u64)
                .unwrap_or(0);
            let essential = matches!(
                agent,
                AgentEvent::Result(_) | AgentEvent::SessionStarted { .. }
            );
            let fits = self.kept < MAX_AGENT_EVENTS
                && self.kept_bytes.saturating_add(size) <= MAX_AGENT_EVENT_BYTES;
            if essential || fits {
                self.kept += 1;
                self.kept_bytes = self.kept_bytes.saturating_add(size);
                kept.push(body);
            } else {
                self.dropped += 1;
                self.dropped_bytes = self.dropped_bytes.saturating_add(size);
                if !self.announced {
                    self.announced = true;
                    kept.push(EventBody::warning(format!(
                        "the agent's output is over agentd's budget ({MAX_AGENT_EVENTS} events, \
                         {} MiB): further events are dropped and counted",
                        MAX_AGENT_EVENT_BYTES >> 20
                    )));
                }
            }
        }
        kept
    }

    /// Events dropped so far, and their bytes.
    pub fn dropped(&self) -> (u64, u64) {
        (self.dropped, self.dropped_bytes)
    }
}

/// The event with every string cut to [`MAX_EVENT_TEXT`] and, if it is still
/// larger than [`MAX_EVENT_BYTES`], its bulkiest content replaced by a note.
pub fn cap_event(body: EventBody) -> EventBody {
    let EventBody::Agent(event) = body else {
        return body;
    };
    let event = match event {
        AgentEvent::Text { message_id, text } => AgentEvent::Text {
            message_id,
            text: cap_text(text),
        },
        AgentEvent::Thinking { message_id, text } => AgentEvent::Thinking {
            message_id,
            text: cap_text(text),
        },
        AgentEvent::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => AgentEvent::ToolResult {
            tool_use_id: cap_text(tool_use_id),
            content: cap_text(content),
            is_error,
        },
        AgentEvent::Raw { line } => AgentEvent::Raw {
            line: cap_text(line),
        },
        AgentEvent::ToolCall {
            id,
            name,
            input,
            parent_tool_use_id,
        } => AgentEvent::ToolCall {
            id: cap_text(id),
            name: cap_text(name),
            input: cap_value(input),
            parent_tool_use_id: parent_tool_use_id.map(cap_text),
        },
        AgentEvent::Unknown { raw } => AgentEvent::Unknown {
            raw: cap_value(raw),
        },
        AgentEvent::Result(mut result) => {
            result.result = result.result.map(cap_text);
            result.errors = result.errors.into_iter().take(32).map(cap_text).collect();
            AgentEvent::Result(result)
        }
        other => other,
    };
    EventBody::Agent(event)
}

/// Cuts a text to [`MAX_EVENT_TEXT`] bytes (on a character boundary), saying how much went.
pub fn cap_text(text: String) -> String {
    if text.len() <= MAX_EVENT_TEXT {
        return text;
    }
    let mut end = MAX_EVENT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    let mut kept = text;
    kept.truncate(end);
    kept.push_str(&format!(" … [agentd: {cut} bytes cut]"));
    kept
}

/// Caps every string in a JSON value; if the whole is still too large, keeps a
/// cut-down rendering of it as one string.
fn cap_value(value: Value) -> Value {
    let value = cap_strings(value);
    let size = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0);
    if size <= MAX_EVENT_BYTES - 4096 {
        return value;
    }
    let text = serde_json::to_string(&value).unwrap_or_default();
    serde_json::json!({ "agentd_truncated": cap_text(text) })
}

fn cap_strings(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(cap_text(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(cap_strings).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (cap_text(k), cap_strings(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(len: usize) -> EventBody {
        EventBody::Agent(AgentEvent::Text {
            message_id: None,
            text: "é".repeat(len / 2),
        })
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let EventBody::Agent(AgentEvent::Text { text, .. }) = cap_event(text(5 << 20)) else {
            panic!()
        };
        assert!(text.len() < MAX_EVENT_TEXT + 64, "{}", text.len());
        assert!(text.ends_with("bytes cut]"));
        let short = cap_text("short".into());
        assert_eq!(short, "short");
    }

    #[test]
    fn a_huge_tool_input_is_kept_cut_down() {
        let input = Value::Array(
            (0..100_000)
                .map(|i| Value::String(format!("item {i}")))
                .collect(),
        );
        let body = cap_event(EventBody::Agent(AgentEvent::ToolCall {
            id: "t1".into(),
            name: "Bash".into(),
            input,
            parent_tool_use_id: None,
        }));
        let size = serde_json::to_vec(&body).unwrap().len();
        assert!(size <= MAX_EVENT_BYTES, "{size}");
    }

    #[test]
    fn the_budget_drops_ordinary_events_but_keeps_the_result_and_says_so() {
        let mut budget = EventBudget::default();
        let flood: Vec<EventBody> = (0..MAX_AGENT_EVENTS + 500).map(|_| text(10)).collect();
        let kept = budget.admit(flood);
        assert_eq!(
            kept.len() as u64,
            MAX_AGENT_EVENTS + 1,
            "the budget plus one warning"
        );
        assert_eq!(budget.dropped().0, 500);
        let result = EventBody::Agent(AgentEvent::Result(crate::execution::AgentResult {
            subtype: "success".into(),
            is_error: false,
            num_turns: 1,
            duration_ms: None,
            duration_api_ms: None,
            total_cost_usd: None,
            usage: Default::default(),
            result: Some("done".into()),
            errors: vec![],
            permission_denials: 0,
            session_id: None,
        }));
        let kept = budget.admit(vec![
            text(10),
            result.clone(),
            EventBody::progress("agentd's own"),
        ]);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[0], result);
        assert_eq!(budget.dropped().0, 501);
    }
}
