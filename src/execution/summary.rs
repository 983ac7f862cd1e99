//! The final report of an execution: what `agentd run --json` prints and what
//! is written to `summary.json` beside the event log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::execution::{Execution, GatewayUsage, Status, Usage};

/// A file the agent changed, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    /// Path inside the repository.
    pub path: String,
    /// git's status letter: `A` added, `M` modified, `D` deleted, `T` type changed.
    pub change: String,
}

/// An artifact brought out of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Path relative to the artifacts folder.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// An entry of the sandbox's output that agentd refused to unpack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEntry {
    /// The name as found in the archive.
    pub path: String,
    /// The rule it broke.
    pub reason: String,
}

/// A file the agent changed that agentd did not bring back whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// Path inside the repository.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Why: `too_large` (not collected at all: not in the branch, the bundle or
    /// the diff), or `too_large_for_diff` (in the branch and bundle, not shown
    /// in the diff).
    pub reason: String,
}

/// What the agent reported about itself at the end (its `result` line). Kept
/// and shown as a claim: it comes from inside the sandbox, where anything the
/// agent runs could have written it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentClaim {
    /// The result subtype (`success`, `error_max_turns`, …).
    pub subtype: String,
    /// The agent's own error flag.
    pub is_error: bool,
    /// Turns, as the agent counted them.
    pub num_turns: u64,
    /// Tokens, as the agent counted them.
    pub usage: Usage,
    /// Cost, as the agent computed it.
    pub cost_usd: Option<f64>,
    /// Tool calls its output showed.
    pub tool_calls: u64,
    /// Its final text.
    pub result: Option<String>,
}

/// How an execution ended and where its results are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Execution id.
    pub id: String,
    /// Final status.
    pub status: Status,
    /// Why it did not succeed (absent on success).
    pub reason: Option<String>,
    /// Repository location (credential-free).
    pub repo: String,
    /// The ref asked for, or the default branch's name.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// Commit the execution started from.
    pub base_commit: Option<String>,
    /// Commit holding the agent's changes (equal to the base when nothing changed).
    pub head_commit: Option<String>,
    /// Branch holding the agent's changes: `agent/<id>`.
    pub branch: String,
    /// The execution it continued (`--continue`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Its conversation: the first execution's id.
    #[serde(default)]
    pub conversation_id: String,
    /// Model answers, as agentd's gateway observed them.
    pub num_turns: u64,
    /// Tokens, as the gateway metered them from the model's answers.
    pub usage: Usage,
    /// Cost in US dollars, priced by the gateway.
    pub cost_usd: Option<f64>,
    /// What agentd's gateway metered: requests, tokens and cost.
    pub gateway: GatewayUsage,
    /// Tool calls the model asked for, as the gateway observed them.
    pub tool_calls: u64,
    /// The agent's session id.
    pub session_id: Option<String>,
    /// The model's last answer's text, as the gateway observed it.
    pub result: Option<String>,
    /// What the agent reported about itself (turns, tokens, cost, result): a
    /// claim from inside the sandbox, kept beside the observed figures above.
    #[serde(default)]
    pub claimed: Option<AgentClaim>,
    /// Files not brought back whole (too large), and why.
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
    /// Files changed against the base commit.
    pub files_changed: Vec<ChangedFile>,
    /// The diff against the base (text, binary-safe), when one was collected.
    pub diff_path: Option<String>,
    /// A git bundle of the branch (`base..agent/<id>`), when there were commits.
    pub bundle_path: Option<String>,
    /// Artifact files on the host (absolute paths).
    pub artifacts: Vec<String>,
    /// Artifact details (relative path, size, sha256).
    pub artifact_files: Vec<Artifact>,
    /// Entries of the sandbox's output that were refused.
    pub refused: Vec<RefusedEntry>,
    /// The execution's data directory.
    pub data_dir: String,
    /// The event log (JSON lines).
    pub events_path: String,
    /// The container image used.
    pub image: Option<String>,
    /// Exit code of the agent container's main process.
    pub exit_code: Option<i64>,
    /// The kernel killed a process for exceeding the memory limit.
    pub oom_killed: bool,
    /// When the execution started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// What became of the branch's delivery to the remote, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<super::Delivery>,
}

/// Where an execution's results are on this machine (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultPaths {
    /// The execution's data directory.
    pub data_dir: String,
    /// The event log.
    pub events: String,
    /// The diff.
    pub diff: String,
    /// The bundle.
    pub bundle: String,
    /// The artifacts folder.
    pub artifacts: String,
}

impl Summary {
    /// The summary of a finished execution, with its results at `paths`: the
    /// one place a summary is made, for a local run and a remote one alike.
    pub fn new(
        execution: &Execution,
        paths: &ResultPaths,
        artifacts: Vec<Artifact>,
        refused: Vec<RefusedEntry>,
    ) -> Summary {
        let artifacts_root = std::path::Path::new(&paths.artifacts);
        Summary {
            id: execution.id.clone(),
            status: execution.status,
            reason: execution.reason.clone(),
            repo: execution.request.repo.clone(),
            git_ref: execution.request.git_ref.clone(),
            base_commit: execution.base_commit.clone(),
            head_commit: execution.head_commit.clone(),
            branch: execution.branch.clone(),
            parent_id: execution.parent_id.clone(),
            conversation_id: execution.conversation_id.clone(),
            num_turns: execution.num_turns,
            usage: execution.usage,
            cost_usd: execution.cost_usd,
            gateway: execution.gateway,
            tool_calls: execution.tool_calls,
            session_id: execution.session_id.clone(),
            result: execution.result.clone(),
            claimed: execution.claimed.clone(),
            left_out: execution.left_out.clone(),
            files_changed: execution.files_changed.clone(),
            diff_path: execution.has_diff.then(|| paths.diff.clone()),
            bundle_path: execution.has_bundle.then(|| paths.bundle.clone()),
            artifacts: artifacts
                .iter()
                .map(|a| artifacts_root.join(&a.path).display().to_string())
                .collect(),
            artifact_files: artifacts,
            refused,
            data_dir: paths.data_dir.clone(),
            events_path: paths.events.clone(),
            image: execution.image.clone(),
            exit_code: execution.exit_code,
            oom_killed: execution.oom_killed,
            delivery: execution.delivery.clone(),
            started_at: execution.started_at.unwrap_or(execution.created_at),
            finished_at: execution.finished_at.unwrap_or(execution.updated_at),
            duration_ms: execution.duration_ms.unwrap_or(0),
        }
    }
}
