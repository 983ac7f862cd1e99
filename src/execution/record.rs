//! An execution as it is kept: what was asked (the request, once), where it is
//! in its life cycle, and what agentd observed — and, for the store, the
//! supervisor's bookkeeping beside it.

use std::ops::{Deref, DerefMut};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::execution::{
    AgentClaim, AppliedPolicy, Artifact, ChangedFile, Conversation, Delivery, ExecutionRequest,
    GatewayUsage, LeftOut, Status, Usage,
};

/// An admitted request, ready to be stored: its id, owner, idempotency key and
/// the request itself (its repository location credential-free).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewExecution {
    /// Execution id (UUID v7, so ids sort by creation time).
    pub id: String,
    /// Owner tenant.
    pub tenant_id: String,
    /// `Idempotency-Key` header of the creating request, if any (unique per tenant).
    pub idempotency_key: Option<String>,
    /// A hash of the request, to tell a retried POST from a different one with the same key.
    pub request_hash: String,
    /// What was asked.
    #[serde(flatten)]
    pub request: ExecutionRequest,
    /// What the admins' policy made of it.
    pub policy: AppliedPolicy,
    /// The execution it follows up, and its conversation (a new
    /// conversation when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::execution::Lineage>,
}

/// One execution: what was asked, where it is, and what agentd observed. This
/// is what clients see (the API adds links) and what a summary is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// Execution id (a UUID v7: ids sort by creation time).
    pub id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// The `Idempotency-Key` of the request that created it, if any.
    pub idempotency_key: Option<String>,
    /// What was asked (the repository location without credentials).
    #[serde(flatten)]
    pub request: ExecutionRequest,
    /// What the admins' policy made of it when it was admitted.
    pub policy: AppliedPolicy,
    /// Where it is in its life cycle.
    pub status: Status,
    /// Why it did not succeed, once final (absent on success).
    pub reason: Option<String>,
    /// Branch holding the agent's work, named from the request's
    /// `branch_template` (default `agent/<id>`).
    pub branch: String,
    /// Commit the execution started from.
    pub base_commit: Option<String>,
    /// Commit holding the agent's changes.
    pub head_commit: Option<String>,
    /// The agent's session id.
    pub session_id: Option<String>,
    /// Model answers, as agentd's gateway observed them.
    pub num_turns: u64,
    /// Tokens, as the gateway metered them from the model's answers.
    pub usage: Usage,
    /// Cost in US dollars, priced by the gateway.
    pub cost_usd: Option<f64>,
    /// Tool calls the model asked for, as the gateway observed them.
    pub tool_calls: u64,
    /// The model's last answer's text, as the gateway observed it.
    pub result: Option<String>,
    /// What the agent reported about itself: a claim from inside the sandbox,
    /// kept beside the observed figures (absent until final, or when the agent
    /// reported nothing).
    pub claimed: Option<AgentClaim>,
    /// Files changed against the base commit.
    pub files_changed: Vec<ChangedFile>,
    /// Files not brought back whole (too large), and why.
    pub left_out: Vec<LeftOut>,
    /// Exit code of the sandbox's main process.
    pub exit_code: Option<i64>,
    /// Whether the kernel killed a process for exceeding the memory limit.
    pub oom_killed: bool,
    /// The container image used.
    pub image: Option<String>,
    /// What agentd's gateway metered: requests, tokens and cost.
    pub gateway: GatewayUsage,
    /// The gateway's record of the conversation.
    pub conversation: Conversation,
    /// Whether a diff was collected.
    pub has_diff: bool,
    /// Whether a git bundle was collected.
    pub has_bundle: bool,
    /// Someone asked to cancel it.
    pub cancel_requested: bool,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When its agent started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached its final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// Wall time in milliseconds, once final.
    pub duration_ms: Option<u64>,
    /// What became of the branch's delivery to the remote (when `push` was
    /// asked, once the execution ended or delivery was retried).
    pub delivery: Option<Delivery>,
    /// How many times it was queued again after its engine was lost (up to
    /// the request's `retries`).
    #[serde(default)]
    pub retried: u32,
    /// The execution this one follows up (absent on a conversation's first).
    #[serde(default)]
    pub parent_id: Option<String>,
    /// The conversation's first execution (its own id when it is the first).
    #[serde(default)]
    pub conversation_id: String,
}

impl Execution {
    /// Applies the final figures, as the store does when it records them (for
    /// a summary when the store could not be written).
    pub fn conclude(&mut self, outcome: &Outcome, at: DateTime<Utc>) {
        self.status = outcome.status;
        self.reason.clone_from(&outcome.reason);
        if outcome.head_commit.is_some() {
            self.head_commit.clone_from(&outcome.head_commit);
        }
        if outcome.session_id.is_some() {
            self.session_id.clone_from(&outcome.session_id);
        }
        self.num_turns = outcome.num_turns;
        self.usage = outcome.usage;
        self.cost_usd = outcome.cost_usd;
        self.tool_calls = outcome.tool_calls;
        self.result.clone_from(&outcome.result);
        self.claimed.clone_from(&outcome.claimed);
        self.files_changed.clone_from(&outcome.files_changed);
        self.left_out.clone_from(&outcome.left_out);
        self.exit_code = outcome.exit_code;
        self.oom_killed = outcome.oom_killed;
        self.gateway = outcome.gateway;
        self.conversation.clone_from(&outcome.conversation);
        self.has_diff = outcome.has_diff;
        self.has_bundle = outcome.has_bundle;
        self.duration_ms = Some(outcome.duration_ms);
        self.finished_at = Some(at);
        self.updated_at = at;
    }
}

/// An execution as the store keeps it: the execution, plus the bookkeeping of
/// the supervisor that runs it. Reads through to the execution's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The execution.
    #[serde(flatten)]
    pub execution: Execution,
    /// A hash of the request (see [`NewExecution::request_hash`]).
    pub request_hash: String,
    /// The supervisor that holds the execution (while live).
    pub owner: Option<String>,
    /// Until when the owner's claim holds without a heartbeat.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// How many lines of the container's output have been turned into events;
    /// a re-attaching supervisor skips that many.
    pub log_cursor: u64,
}

impl Deref for ExecutionRecord {
    type Target = Execution;

    fn deref(&self) -> &Execution {
        &self.execution
    }
}

impl DerefMut for ExecutionRecord {
    fn deref_mut(&mut self) -> &mut Execution {
        &mut self.execution
    }
}

/// The final figures of an execution, written with its final status.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The final status.
    pub status: Status,
    /// Why it did not succeed.
    pub reason: Option<String>,
    /// The commit holding the changes (verified on the host).
    pub head_commit: Option<String>,
    /// The agent's session id.
    pub session_id: Option<String>,
    /// Model answers observed.
    pub num_turns: u64,
    /// Tokens metered.
    pub usage: Usage,
    /// Cost priced.
    pub cost_usd: Option<f64>,
    /// Tool calls the model asked for.
    pub tool_calls: u64,
    /// The model's last answer's text.
    pub result: Option<String>,
    /// Files changed against the base.
    pub files_changed: Vec<ChangedFile>,
    /// Exit code of the sandbox's main process.
    pub exit_code: Option<i64>,
    /// The kernel OOM-killed a process in the sandbox.
    pub oom_killed: bool,
    /// A diff was collected.
    pub has_diff: bool,
    /// A bundle was collected.
    pub has_bundle: bool,
    /// The artifacts brought back.
    pub artifacts: Vec<Artifact>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// The gateway's own metering.
    pub gateway: GatewayUsage,
    /// The gateway's record of the conversation.
    pub conversation: Conversation,
    /// What the agent reported about itself.
    pub claimed: Option<AgentClaim>,
    /// Files not brought back whole.
    pub left_out: Vec<LeftOut>,
}
