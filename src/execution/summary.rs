//! The final report of an execution: what `agentd run --json` prints and what
//! is written to `summary.json` beside the event log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::agent::Usage;
use crate::execution::Status;
use crate::execution::layout::ExecutionDir;
use crate::store::{ExecutionRecord, GatewayUsage, Outcome};

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
}

impl Summary {
    /// The summary of a finished execution, from its stored record and outcome.
    pub fn from_record(
        record: &ExecutionRecord,
        outcome: &Outcome,
        dir: &ExecutionDir,
        refused: &[RefusedEntry],
        refused_artifacts: &[RefusedEntry],
        finished_at: DateTime<Utc>,
    ) -> Summary {
        let artifacts_root = dir.artifacts();
        Summary {
            id: record.id.clone(),
            status: outcome.status,
            reason: outcome.reason.clone(),
            repo: record.repo.clone(),
            git_ref: record.git_ref.clone(),
            base_commit: record.base_commit.clone(),
            head_commit: outcome.head_commit.clone(),
            branch: record.branch.clone(),
            num_turns: outcome.num_turns,
            usage: outcome.usage,
            cost_usd: outcome.cost_usd,
            gateway: outcome.gateway,
            tool_calls: outcome.tool_calls,
            session_id: outcome.session_id.clone(),
            result: outcome.result.clone(),
            claimed: outcome.claimed.clone(),
            left_out: outcome.left_out.clone(),
            files_changed: outcome.files_changed.clone(),
            diff_path: outcome.has_diff.then(|| dir.diff().display().to_string()),
            bundle_path: outcome
                .has_bundle
                .then(|| dir.bundle().display().to_string()),
            artifacts: outcome
                .artifacts
                .iter()
                .map(|a| artifacts_root.join(&a.path).display().to_string())
                .collect(),
            artifact_files: outcome.artifacts.clone(),
            refused: refused.iter().chain(refused_artifacts).cloned().collect(),
            data_dir: dir.root().display().to_string(),
            events_path: dir.events().display().to_string(),
            image: record.image.clone(),
            exit_code: outcome.exit_code,
            oom_killed: outcome.oom_killed,
            started_at: record.started_at.unwrap_or(record.created_at),
            finished_at,
            duration_ms: outcome.duration_ms,
        }
    }
}
