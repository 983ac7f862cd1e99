//! What the admins' policy made of one execution, fixed when it was admitted:
//! the values lowered to a cap, the tool rules its sandbox enforces, the
//! tenant's daily spend limit, and whether its failures may be explained in
//! full. Kept with the record, so a policy changed later applies to new
//! executions only and a restarted supervisor runs this one as admitted.

use serde::{Deserialize, Serialize};

/// The policy as applied to one execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppliedPolicy {
    /// Fields asked above a cap and lowered to it (the policy said `clamp`, or
    /// the field was left at agentd's default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clamped: Vec<Clamp>,
    /// Tool rules written into the sandbox as the CLI's managed settings, and
    /// decided on by agentd for each tool call.
    pub tools: ToolRules,
    /// The tenant's spend limit per UTC day, in US dollars: the gateway stops
    /// the execution once the tenant's spend today reaches it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_spend_usd: Option<f64>,
    /// The execution's model limits count its whole conversation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conversation_budget: bool,
    /// Models the gateway forwards requests for (`*` wildcards); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Source checks at fetch time: hosts that resolve to loopback, link-local
    /// or private addresses are refused unless the policy allows them.
    pub allow_private_hosts: bool,
    /// True for the local operator (a policy that restricts nothing): failures
    /// are explained in full. False for tenants: a failed fetch says only what
    /// the tenant may know, never what agentd's host or network revealed.
    pub operator: bool,
    /// The name the work's commits and merges are signed as; absent: the
    /// server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_author_name: Option<String>,
    /// Their email; absent: the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_author_email: Option<String>,
    /// The commit message template; absent: agentd's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
}

impl AppliedPolicy {
    /// What the local operator runs under: no caps, no tool rules of agentd's,
    /// full explanations.
    pub fn operator() -> AppliedPolicy {
        AppliedPolicy {
            allow_private_hosts: true,
            operator: true,
            ..AppliedPolicy::default()
        }
    }
}

/// One field lowered to what the policy allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clamp {
    /// The request field, as a JSON path (`limits.memory_bytes`).
    pub field: String,
    /// What was asked (or agentd's default, when nothing was).
    pub asked: serde_json::Value,
    /// What the execution got: the cap.
    pub allowed: serde_json::Value,
}

/// Who wrote a tool rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleSource {
    /// An admin's policy (global or for the tenant).
    Policy,
    /// The request itself (`agent.allowed_tools` / `agent.disallowed_tools`).
    Request,
}

/// A permission rule in the CLI's syntax (`Bash(curl *)`, `Read(./.env)`,
/// `WebFetch`), with its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRule {
    /// The rule text.
    pub rule: String,
    /// Who wrote it.
    pub source: RuleSource,
}

/// The tool rules of one execution. Deny wins over allow; with `only_allowed`
/// a call no allow rule matches is denied too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolRules {
    /// Calls these rules match may run.
    pub allow: Vec<ToolRule>,
    /// Calls these rules match are refused, whatever else allows them.
    pub deny: Vec<ToolRule>,
    /// Refuse every call no allow rule matches.
    pub only_allowed: bool,
}

impl ToolRules {
    /// No rules at all: every call runs, and nothing is decided by agentd.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && !self.only_allowed
    }
}

/// What agentd decided about one tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The call may run.
    Allow,
    /// The call is refused.
    Deny,
}
