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
    /// Agent turns, as the agent reported them.
    pub num_turns: u64,
    /// Tokens, as the agent reported them.
    pub usage: Usage,
    /// Cost in US dollars, as the agent computed it.
    pub cost_usd: Option<f64>,
    /// What agentd's gateway metered: requests, tokens and cost from the
    /// model's own answers (authoritative; the two figures above are the agent's).
    pub gateway: GatewayUsage,
    /// Number of tool calls the agent made.
    pub tool_calls: u64,
    /// The agent's session id.
    pub session_id: Option<String>,
    /// The agent's final text.
    pub result: Option<String>,
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
