//! What a client may ask of the agent itself (as opposed to the sandbox it runs in).

use serde::{Deserialize, Serialize};

/// Options passed to the agent CLI. Every field is optional; an empty value
/// means "the CLI's own default".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentOptions {
    /// Model name, e.g. `claude-sonnet-4-5`. Default: the CLI's default model.
    pub model: Option<String>,
    /// Stop after this many agent turns (the CLI reports `error_max_turns`).
    #[serde(deserialize_with = "super::whole::optional")]
    pub max_turns: Option<u32>,
    /// Stop once the model cost passes this many US dollars. Enforced by
    /// agentd's gateway from what upstream metered (authoritative; the execution
    /// ends `budget_exceeded`), so it is not passed to the CLI.
    pub max_budget_usd: Option<f64>,
    /// Tool rules the agent may use without asking, e.g. `Bash(git diff *)`, `Read`.
    pub allowed_tools: Vec<String>,
    /// Tool rules the agent may never use, e.g. `WebFetch`. Deny wins over allow.
    pub disallowed_tools: Vec<String>,
    /// Text appended to the CLI's system prompt.
    pub append_system_prompt: Option<String>,
}
