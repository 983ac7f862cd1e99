//! What a client says to a running agent in streaming-input mode: a message
//! (a user turn, taken between the agent's turns or folded into the current
//! one) or an interrupt (stop the current turn, so a redirecting message can
//! follow).

use serde::{Deserialize, Serialize};

/// The most bytes of one message: 100 KiB, like a prompt.
pub const MAX_MESSAGE_BYTES: usize = super::MAX_PROMPT_BYTES;

/// What kind of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A user message.
    Message,
    /// Stop the current turn.
    Interrupt,
    /// agentd's own marker: the agent's input is closed, nothing more is
    /// accepted (its text says why).
    Closed,
}

impl InputKind {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Message => "message",
            InputKind::Interrupt => "interrupt",
            InputKind::Closed => "closed",
        }
    }

    /// The kind a stored name names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "message" => Some(InputKind::Message),
            "interrupt" => Some(InputKind::Interrupt),
            "closed" => Some(InputKind::Closed),
            _ => None,
        }
    }
}

/// One input, numbered in the order it was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInput {
    /// Its number within the execution, from 1.
    pub seq: u64,
    /// Message or interrupt.
    pub kind: InputKind,
    /// The message's text (empty for an interrupt).
    pub text: String,
    /// Who sent it: the API key's id, or `operator`.
    pub sender: String,
}
