//! What agentd's gateway observed of an execution's model use: the figures
//! agentd reports, independent of what the agent claims.

use serde::{Deserialize, Serialize};

use crate::execution::Usage;

/// What the gateway itself counted from the upstream's answers: authoritative,
/// independent of what the agent reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayUsage {
    /// Model requests forwarded upstream.
    pub requests: u64,
    /// Tokens, summed over every metered answer.
    pub usage: Usage,
    /// Cost from the price table (absent while no request had a priced model).
    pub cost_usd: Option<f64>,
}

/// What the gateway saw of the conversation itself: how many answers the model
/// gave, how the last one ended and what it said. Observed outside the sandbox,
/// so it is what agentd reports, whatever the agent claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Complete model answers (successful `POST /v1/messages`).
    pub answers: u64,
    /// Tool calls the model asked for, over all answers.
    pub tool_uses: u64,
    /// How the last complete answer ended (`end_turn`, `tool_use`, `max_tokens`, …).
    pub stop_reason: Option<String>,
    /// The last complete answer's text (capped at 64 KiB).
    pub text: Option<String>,
}

impl Conversation {
    /// True when the model's last answer ended its turn rather than asking for
    /// a tool or running out of tokens.
    pub fn finished(&self) -> bool {
        matches!(
            self.stop_reason.as_deref(),
            Some("end_turn" | "stop_sequence")
        )
    }
}
