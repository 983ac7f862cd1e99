//! One answer of the scripted model, before it is encoded as a JSON message or
//! as a stream of server-sent events.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::scenario::{Block, StopReason, Turn};
use crate::execution::Usage;

/// An assistant message with every id filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub id: String,
    pub model: String,
    pub content: Vec<Part>,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

/// One content block of a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        /// The input as the script wrote it, sent instead of `input`.
        input_json: Option<String>,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
}

impl Reply {
    /// The scripted `turn` answered as conversation turn `index`; `serial` keeps
    /// message ids unique per server.
    pub fn from_turn(turn: &Turn, index: usize, serial: u64, model: String) -> Reply {
        let content = turn
            .content
            .iter()
            .enumerate()
            .map(|(b, block)| match block {
                Block::Text { text } => Part::Text { text: text.clone() },
                Block::ToolUse {
                    id,
                    name,
                    input,
                    input_json,
                } => Part::ToolUse {
                    id: id.clone().unwrap_or_else(|| format!("toolu_{index}_{b}")),
                    name: name.clone(),
                    input: input.clone(),
                    input_json: input_json.clone(),
                },
                Block::Thinking {
                    thinking,
                    signature,
                } => Part::Thinking {
                    thinking: thinking.clone(),
                    signature: signature.clone().unwrap_or_else(|| signature_of(thinking)),
                },
            })
            .collect();
        Reply {
            id: format!("msg_{index}_{serial:06}"),
            model,
            content,
            stop_reason: turn.effective_stop_reason(),
            usage: turn.usage,
        }
    }

    /// A text answer with `end_turn` and zero usage: for side requests and for
    /// turns past the script, which must not change the scenario's token totals.
    pub fn plain_text(id: String, model: String, text: &str) -> Reply {
        Reply {
            id,
            model,
            content: vec![Part::Text {
                text: text.to_string(),
            }],
            stop_reason: StopReason::EndTurn,
            usage: Usage::default(),
        }
    }

    /// The non-streaming response body.
    pub fn to_message(&self) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self.content.iter().map(Part::to_json).collect::<Vec<_>>(),
            "stop_reason": self.stop_reason.as_str(),
            "stop_sequence": null,
            "usage": usage_json(&self.usage, self.usage.output_tokens),
        })
    }

    /// The non-streaming response body: [`Reply::to_message`] as text, with each
    /// tool input the script gave as `input_json` written exactly as given.
    pub fn to_message_text(&self) -> String {
        let mut message = self.to_message();
        let mut raw = Vec::new();
        for (index, part) in self.content.iter().enumerate() {
            if let Some(text) = part.input_json() {
                // A whole JSON string token (quotes inside strings are escaped, so
                // only a scripted string equal to it, NULs included, could match).
                let stand_in = json!(format!("\u{0}agentd input_json {index}\u{0}"));
                message["content"][index]["input"] = stand_in.clone();
                raw.push((stand_in.to_string(), text));
            }
        }
        let mut body = message.to_string();
        for (stand_in, text) in raw {
            body = body.replacen(&stand_in, text, 1);
        }
        body
    }
}

impl Part {
    /// A tool input to send as written, if the script gave one.
    pub fn input_json(&self) -> Option<&str> {
        match self {
            Part::ToolUse { input_json, .. } => input_json.as_deref(),
            _ => None,
        }
    }

    /// A tool input's JSON text as it is sent: as the script wrote it, or
    /// `input` serialised.
    pub fn input_text(&self) -> Option<String> {
        match self {
            Part::ToolUse {
                input, input_json, ..
            } => Some(input_json.clone().unwrap_or_else(|| input.to_string())),
            _ => None,
        }
    }

    /// The block as a complete message carries it.
    pub fn to_json(&self) -> Value {
        match self {
            Part::Text { text } => json!({"type": "text", "text": text}),
            Part::ToolUse {
                id, name, input, ..
            } => {
                json!({"type": "tool_use", "id": id, "name": name, "input": input})
            }
            Part::Thinking {
                thinking,
                signature,
            } => json!({"type": "thinking", "thinking": thinking, "signature": signature}),
        }
    }
}

/// Usage as the Messages API spells it, with `output_tokens` given separately
/// because a stream's first event reports only a provisional figure.
pub(crate) fn usage_json(usage: &Usage, output_tokens: u64) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": output_tokens,
    })
}

/// A stable, opaque-looking signature for scripted thinking.
fn signature_of(thinking: &str) -> String {
    let digest = Sha256::digest(format!("agentd scripted thinking\n{thinking}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripted::Scenario;

    #[test]
    fn fills_ids_and_signatures_deterministically() {
        let scenario = Scenario::from_json(
            r#"{"turns":[{"content":[
                {"type":"thinking","thinking":"plan"},
                {"type":"tool_use","name":"Bash","input":{"command":"ls"}},
                {"type":"tool_use","id":"toolu_mine","name":"Read","input":{"file_path":"/a"}}]}]}"#,
        )
        .unwrap();
        let a = Reply::from_turn(&scenario.turns[0], 3, 9, "m".into());
        let b = Reply::from_turn(&scenario.turns[0], 3, 9, "m".into());
        assert_eq!(a, b);
        assert_eq!(a.id, "msg_3_000009");
        let Part::ToolUse { id, .. } = &a.content[1] else {
            panic!("{:?}", a.content[1])
        };
        assert_eq!(id, "toolu_3_1");
        let Part::ToolUse { id, .. } = &a.content[2] else {
            panic!("{:?}", a.content[2])
        };
        assert_eq!(id, "toolu_mine");
        let message = a.to_message();
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(message["content"][0]["type"], "thinking");
        assert!(
            !message["content"][0]["signature"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
}
