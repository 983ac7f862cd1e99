//! The typed events an agent adapter turns its CLI's output into.
//!
//! These are agentd's vocabulary, not any one CLI's: every adapter maps its own
//! format onto them, and whatever it cannot map is kept as [`AgentEvent::Unknown`]
//! or [`AgentEvent::Raw`] so nothing the agent printed is ever lost.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Token counts as the Messages API reports them. Missing figures are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// Input tokens served from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// Every token of every kind (input, output, cache writes and reads):
    /// what `limits.max_tokens` counts.
    pub fn total(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_creation_input_tokens)
            .saturating_add(self.cache_read_input_tokens)
    }

    /// Adds another usage figure to this one (saturating, never panics).
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cache_creation_input_tokens = self
            .cache_creation_input_tokens
            .saturating_add(other.cache_creation_input_tokens);
        self.cache_read_input_tokens = self
            .cache_read_input_tokens
            .saturating_add(other.cache_read_input_tokens);
    }
}

/// The agent's final report: how the session ended and what it cost, as the
/// agent itself counted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResult {
    /// The CLI's result subtype: `success`, `error_max_turns`, `error_during_execution`,
    /// `error_max_budget_usd`, or whatever a newer CLI invents. Only `success` (with
    /// `is_error` false) counts as success.
    pub subtype: String,
    /// The CLI's own error flag.
    pub is_error: bool,
    /// Agent turns taken.
    pub num_turns: u64,
    /// Wall time the CLI measured, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Time spent waiting on the model, in milliseconds.
    pub duration_api_ms: Option<u64>,
    /// Cost the CLI computed from its own price table.
    pub total_cost_usd: Option<f64>,
    /// Tokens summed over the session.
    pub usage: Usage,
    /// The final text, on success.
    pub result: Option<String>,
    /// Error messages, on failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Tool calls the permission system refused.
    #[serde(default)]
    pub permission_denials: u64,
    /// The CLI's session id.
    pub session_id: Option<String>,
}

impl AgentResult {
    /// True when the agent finished its task normally.
    pub fn succeeded(&self) -> bool {
        self.subtype == "success" && !self.is_error
    }

    /// A one-line reason for a failed result, for summaries and logs.
    pub fn failure_reason(&self) -> String {
        if !self.errors.is_empty() {
            return format!("{}: {}", self.subtype, self.errors.join("; "));
        }
        match &self.result {
            // An API error ends the session as `success` with `is_error`; the text says why.
            Some(text) if self.is_error && !text.trim().is_empty() => {
                let text: String = text.trim().chars().take(500).collect();
                format!("{}: {text}", self.subtype)
            }
            _ => self.subtype.clone(),
        }
    }
}

/// One thing the agent did or said, in the order it printed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The CLI started a session.
    SessionStarted {
        session_id: Option<String>,
        model: Option<String>,
        cwd: Option<String>,
        #[serde(default)]
        tools: Vec<String>,
        version: Option<String>,
        permission_mode: Option<String>,
    },
    /// Assistant prose.
    Text {
        message_id: Option<String>,
        text: String,
    },
    /// Assistant reasoning, when the model exposes it.
    Thinking {
        message_id: Option<String>,
        text: String,
    },
    /// The agent asked to run a tool.
    ToolCall {
        id: String,
        name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_tool_use_id: Option<String>,
    },
    /// A tool's answer, as fed back to the model.
    ToolResult {
        tool_use_id: String,
        content: String,
        is_error: bool,
    },
    /// The CLI is retrying a failed model request.
    ApiRetry {
        attempt: Option<u64>,
        max_retries: Option<u64>,
        retry_delay_ms: Option<u64>,
        error_status: Option<u64>,
        error: Option<String>,
    },
    /// Token usage of one model message, as the agent saw it.
    Usage {
        message_id: Option<String>,
        usage: Usage,
    },
    /// The session ended.
    Result(AgentResult),
    /// A well-formed line of a type this adapter does not know; kept whole.
    Unknown { raw: Value },
    /// A line that was not valid output at all (not JSON, truncated, …); kept as text.
    Raw { line: String },
}
