//! The records the store keeps.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::{AgentOptions, Usage};
use crate::execution::summary::{AgentClaim, Artifact, ChangedFile, LeftOut};
use crate::execution::{Limits, Status};

/// The tenant every execution belongs to until tenants and API keys exist.
pub const DEFAULT_TENANT: &str = "default";

/// What a client asked for, as stored (the repository location is credential-free).
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
    /// Repository location, without credentials.
    pub repo: String,
    /// Ref asked for.
    pub git_ref: Option<String>,
    /// The prompt.
    pub prompt: String,
    /// Agent options.
    pub agent: AgentOptions,
    /// Sandbox limits.
    pub limits: Limits,
    /// Text injected as `CLAUDE.md` in the repository root, if any.
    pub context_file: Option<String>,
    /// Record the model exchanges into a cassette.
    pub record: bool,
    /// Replay the model's side from this recorded execution's cassette.
    pub replay: Option<String>,
}

/// One execution: the request, where it is, and what it has reported so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub tenant_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub status: Status,
    /// Why it did not succeed, once final (absent on success).
    pub reason: Option<String>,
    pub repo: String,
    pub git_ref: Option<String>,
    pub prompt: String,
    pub agent: AgentOptions,
    pub limits: Limits,
    pub context_file: Option<String>,
    /// Record the model exchanges into a cassette.
    pub record: bool,
    /// Replay the model's side from this recorded execution's cassette.
    pub replay: Option<String>,
    /// Branch holding the agent's work: `agent/<id>`.
    pub branch: String,
    pub base_commit: Option<String>,
    pub head_commit: Option<String>,
    pub session_id: Option<String>,
    /// Model answers, as the gateway observed them.
    pub num_turns: u64,
    /// Tokens, as the gateway metered them.
    pub usage: Usage,
    /// Cost, as the gateway priced it.
    pub cost_usd: Option<f64>,
    /// Tool calls the model asked for, as the gateway observed them.
    pub tool_calls: u64,
    /// The model's last answer's text, as the gateway observed it.
    pub result: Option<String>,
    pub files_changed: Vec<ChangedFile>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub image: Option<String>,
    /// The gateway's own metering.
    pub gateway: GatewayUsage,
    /// The gateway's record of the conversation.
    pub conversation: Conversation,
    /// What the agent reported about itself (a claim), once final.
    pub claimed: Option<AgentClaim>,
    /// Files not brought back whole (too large).
    pub left_out: Vec<LeftOut>,
    /// Whether a diff / bundle was collected (their bytes live in the data directory).
    pub has_diff: bool,
    pub has_bundle: bool,
    /// The supervisor that holds the execution (while live).
    pub owner: Option<String>,
    /// Until when the owner's claim holds without a heartbeat.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Someone asked to cancel it.
    pub cancel_requested: bool,
    /// How many lines of the container's output have been turned into events;
    /// a re-attaching supervisor skips that many.
    pub log_cursor: u64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub duration_ms: Option<u64>,
}

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

/// What a create call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The execution (new, or the one an idempotency key already named).
    pub record: ExecutionRecord,
    /// True when the idempotency key matched an existing execution.
    pub existing: bool,
}

/// Facts learned while an execution runs; `None` fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub base_commit: Option<String>,
    pub git_ref: Option<String>,
    pub session_id: Option<String>,
    pub image: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
}

/// The final figures of an execution, written with its final status.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub reason: Option<String>,
    pub head_commit: Option<String>,
    pub session_id: Option<String>,
    pub num_turns: u64,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub tool_calls: u64,
    pub result: Option<String>,
    pub files_changed: Vec<ChangedFile>,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub has_diff: bool,
    pub has_bundle: bool,
    pub artifacts: Vec<Artifact>,
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

/// A listing request: newest first, filtered, paged by an opaque cursor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub tenant_id: Option<String>,
    pub status: Option<Status>,
    /// Exact (credential-free) repository location.
    pub repo: Option<String>,
    /// Page size: 0 means 50, more than 200 means 200.
    pub limit: u32,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was queued and is now `cancelled`; it will never start.
    CancelledWhileQueued,
    /// It is live; the flag is set and its owner will stop it.
    Requested,
    /// It had already ended; nothing changed.
    AlreadyFinal,
}

/// Kinds of engine/host resources created for an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Container,
    Volume,
    Socket,
}

impl ResourceKind {
    /// The name used in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Container => "container",
            ResourceKind::Volume => "volume",
            ResourceKind::Socket => "socket",
        }
    }
}

/// One resource and its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub execution_id: String,
    pub kind: ResourceKind,
    /// Container name, volume name, or socket path.
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// How long a claim on a live execution lasts without a heartbeat.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
