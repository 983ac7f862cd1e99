//! What the API answers with: an execution as a client sees it (the stored
//! record without the supervisor's bookkeeping, plus links), listings, and
//! artifact entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::BriefPage;
use axum::response::IntoResponse;

use super::schemas::{
    AgentClaimSchema, AgentOptionsSchema, AppliedPolicySchema, ChangedFileSchema,
    ConversationSchema, DeliverySchema, GatewayUsageSchema, HooksSchema, LeftOutSchema,
    LimitsSchema, SandboxOptionsSchema, StatusSchema, UsageSchema,
};
use crate::execution::{
    AgentClaim, AgentOptions, AppliedPolicy, Artifact, ChangedFile, Conversation, EXECUTION_PATH,
    Execution, ExecutionRecord, GatewayUsage, LeftOut, Limits, SandboxOptions, Status, Usage,
};

/// One execution as the API shows it: the domain's [`Execution`] (what was
/// asked, where it is, what agentd observed) and links to its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionView {
    /// The execution.
    #[serde(flatten)]
    pub execution: Execution,
    /// Its follow-ups' ids, in the order they were made (on
    /// `GET /v1/executions/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    /// Where to find its parts.
    pub links: ExecutionLinks,
}

impl std::ops::Deref for ExecutionView {
    type Target = Execution;

    fn deref(&self) -> &Execution {
        &self.execution
    }
}

impl From<ExecutionRecord> for ExecutionView {
    fn from(record: ExecutionRecord) -> Self {
        ExecutionView {
            links: ExecutionLinks::of(&record.id),
            children: None,
            execution: record.execution,
        }
    }
}

/// The OpenAPI document's picture of [`ExecutionView`]: one execution, what
/// was asked, where it is, and what agentd observed (a test keeps the two
/// alike, field for field).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Execution)]
pub struct ExecutionSchema {
    /// Execution id (a UUID v7: ids sort by creation time).
    pub id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Where it is in its life cycle.
    #[schema(value_type = StatusSchema)]
    pub status: Status,
    /// Why it did not succeed, once final (absent on success).
    pub reason: Option<String>,
    /// The repository, without credentials.
    pub repo: String,
    /// The ref asked for (or, once resolved, the default branch's name).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The task given to the agent.
    pub prompt: String,
    /// Options for the agent CLI.
    #[schema(value_type = AgentOptionsSchema)]
    pub agent: AgentOptions,
    /// Sandbox limits.
    #[schema(value_type = LimitsSchema)]
    pub limits: Limits,
    /// The image and runtime asked for.
    #[schema(value_type = SandboxOptionsSchema)]
    pub sandbox: SandboxOptions,
    /// What the admins' policy made of it when it was admitted.
    #[schema(value_type = AppliedPolicySchema)]
    pub policy: AppliedPolicy,
    /// Text given to the agent as its `CLAUDE.md`, if any.
    pub context_file: Option<String>,
    /// The `Idempotency-Key` of the request that created it, if any.
    pub idempotency_key: Option<String>,
    /// The caller's name for the agent doing the work, if given.
    pub agent_id: Option<String>,
    /// The caller's name for the task, if given.
    pub task_id: Option<String>,
    /// The template the branch was named from, if the request gave one.
    pub branch_template: Option<String>,
    /// Commands run in the sandbox before and after the agent.
    #[schema(value_type = HooksSchema)]
    pub hooks: crate::execution::Hooks,
    /// The branch is pushed to the remote when the execution succeeds.
    pub push: bool,
    /// The integration branch it is merged into, when asked.
    pub merge_into: Option<String>,
    /// How many times it may be queued again if the engine running it is
    /// lost (absent: 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3)]
    pub retries: u32,
    /// How many times it was queued again after its engine was lost.
    pub retried: u32,
    /// The agent runs in streaming-input mode (messages while it runs).
    #[serde(default)]
    pub streaming_input: bool,
    /// The execution this one follows up (absent on a conversation's first).
    pub parent_id: Option<String>,
    /// The conversation's first execution (its own id when it is the first):
    /// `GET /v1/conversations/{conversation_id}` lists the thread.
    pub conversation_id: String,
    /// Its follow-ups' ids, in the order they were made (on
    /// `GET /v1/executions/{id}` only).
    pub children: Option<Vec<String>>,
    /// What became of the delivery (once the execution ended, or delivery
    /// was retried with `POST …/deliver`).
    #[schema(value_type = Option<DeliverySchema>)]
    pub delivery: Option<crate::execution::Delivery>,
    /// Branch holding the agent's work, named from `branch_template`
    /// (default `agent/<id>`).
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
    #[schema(value_type = UsageSchema)]
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
    #[schema(value_type = Option<AgentClaimSchema>)]
    pub claimed: Option<AgentClaim>,
    /// Files not brought back whole (too large), and why.
    #[schema(value_type = Vec<LeftOutSchema>)]
    pub left_out: Vec<LeftOut>,
    /// Files changed against the base commit.
    #[schema(value_type = Vec<ChangedFileSchema>)]
    pub files_changed: Vec<ChangedFile>,
    /// Exit code of the sandbox's main process.
    pub exit_code: Option<i64>,
    /// Whether the kernel killed a process for exceeding the memory limit.
    pub oom_killed: bool,
    /// The container image used.
    pub image: Option<String>,
    /// What agentd's gateway metered: requests, tokens and cost.
    #[schema(value_type = GatewayUsageSchema)]
    pub gateway: GatewayUsage,
    /// The gateway's record of the conversation: answers, tool calls the model
    /// asked for, how the last answer ended and its text.
    #[schema(value_type = ConversationSchema)]
    pub conversation: Conversation,
    /// The model exchanges are being recorded into a cassette.
    pub record: bool,
    /// The model's side is replayed from this execution's cassette.
    pub replay: Option<String>,
    /// Whether a diff can be downloaded (`links.diff`).
    pub has_diff: bool,
    /// Whether a git bundle can be downloaded (`links.bundle`).
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
    /// Where to find its parts.
    pub links: ExecutionLinks,
}

/// Where an execution's parts are (paths relative to the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionLinks {
    /// This execution.
    #[serde(rename = "self")]
    pub self_: String,
    /// Its event stream (Server-Sent Events).
    pub events: String,
    /// Its diff (when `has_diff`).
    pub diff: String,
    /// Its git bundle (when `has_bundle`).
    pub bundle: String,
    /// Its artifacts.
    pub artifacts: String,
    /// Where to POST to cancel it.
    pub cancel: String,
    /// Where to POST the next step of its conversation.
    pub follow_ups: String,
    /// Where to POST a message to the agent while it runs (streaming input).
    pub messages: String,
    /// Where to POST to stop the agent's current turn (streaming input).
    pub interrupt: String,
}

impl ExecutionLinks {
    /// The links of execution `id`.
    pub fn of(id: &str) -> Self {
        let base = format!("{EXECUTION_PATH}{id}");
        ExecutionLinks {
            events: format!("{base}/events"),
            diff: format!("{base}/diff"),
            bundle: format!("{base}/bundle"),
            artifacts: format!("{base}/artifacts"),
            cancel: format!("{base}/cancel"),
            follow_ups: format!("{base}/follow-ups"),
            messages: format!("{base}/messages"),
            interrupt: format!("{base}/interrupt"),
            self_: base,
        }
    }
}

/// One page of executions, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionList {
    /// The executions on this page, each in brief (`links.self` has the
    /// whole record).
    pub items: Vec<ExecutionItem>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of executions as the answer's body: the store's JSON array of
/// briefs sent as it is (reading and writing it again was a third of a
/// listing's time), the cursor beside it.
pub fn execution_list(page: BriefPage) -> axum::response::Response {
    let cursor = serde_json::to_string(&page.next_cursor).unwrap_or_else(|_| "null".into());
    let mut body = String::with_capacity(page.items.len() + cursor.len() + 32);
    body.push_str("{\"items\":");
    body.push_str(&page.items);
    body.push_str(",\"next_cursor\":");
    body.push_str(&cursor);
    body.push('}');
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// One execution in a listing: the schema of an [`ExecutionBrief`], which
/// the store writes in this shape (a test holds the two together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionItem {
    /// Execution id.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Where it is in its life cycle.
    #[schema(value_type = StatusSchema)]
    pub status: Status,
    /// Why it did not succeed, once final.
    pub reason: Option<String>,
    /// The repository, without credentials.
    pub repo: String,
    /// The ref asked for (or the default branch's name once resolved).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The prompt's first 200 characters (`…` ends a cut one).
    pub prompt_preview: String,
    /// Branch holding the agent's work.
    pub branch: String,
    /// Commit holding the agent's changes.
    pub head_commit: Option<String>,
    /// Model answers, as the gateway observed them.
    pub num_turns: u64,
    /// Cost in US dollars, priced by the gateway.
    pub cost_usd: Option<f64>,
    /// Whether a diff can be downloaded.
    pub has_diff: bool,
    /// Someone asked to cancel it.
    pub cancel_requested: bool,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it reached its final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// Wall time in milliseconds, once final.
    pub duration_ms: Option<u64>,
    /// Where the whole record is.
    pub links: ItemLinks,
}

/// Where a listed execution's whole record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemLinks {
    /// `GET` this for the whole record (and its other links).
    #[serde(rename = "self")]
    pub self_: String,
}

/// A file the agent handed back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactEntry {
    /// Path relative to the artifacts folder.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Where to download it.
    pub download: String,
}

impl ArtifactEntry {
    /// The entry for `artifact` of execution `id`.
    pub fn of(id: &str, artifact: Artifact) -> Self {
        ArtifactEntry {
            download: format!(
                "/v1/executions/{id}/artifacts/{}",
                encode_path(&artifact.path)
            ),
            path: artifact.path,
            size: artifact.size,
            sha256: artifact.sha256,
        }
    }
}

/// Percent-encodes a relative path for a URL, keeping its `/` separators.
fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The artifacts of one execution.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ArtifactList {
    /// Every artifact, in the order they were recorded.
    pub items: Vec<ArtifactEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::ExecutionBrief;

    #[test]
    fn artifact_links_are_percent_encoded() {
        let entry = ArtifactEntry::of(
            "e1",
            Artifact {
                path: "reports/a b+c%.txt".into(),
                size: 3,
                sha256: "00".into(),
            },
        );
        assert_eq!(
            entry.download,
            "/v1/executions/e1/artifacts/reports/a%20b%2Bc%25.txt"
        );
    }

    /// The documented item and the brief the store writes are one shape:
    /// every field of a brief is an item's, and back.
    #[test]
    fn a_brief_is_a_listed_item() {
        let brief = ExecutionBrief {
            id: "01a2".into(),
            tenant_id: "team-a".into(),
            status: Status::Succeeded,
            reason: Some("why".into()),
            repo: "https://example.invalid/r.git".into(),
            git_ref: Some("main".into()),
            prompt_preview: "fix it".into(),
            branch: "agent/01a2".into(),
            head_commit: Some("abc".into()),
            num_turns: 3,
            cost_usd: Some(0.25),
            has_diff: true,
            cancel_requested: false,
            created_at: chrono::Utc::now(),
            finished_at: Some(chrono::Utc::now()),
            duration_ms: Some(12),
            links: crate::execution::BriefLinks {
                self_: "/v1/executions/01a2".into(),
            },
        };
        let written = serde_json::to_value(&brief).unwrap();
        let item: ExecutionItem = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(serde_json::to_value(&item).unwrap(), written);
        let back: ExecutionBrief = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(back, brief);
    }
}
