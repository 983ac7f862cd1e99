//! Delivery: an execution's branch brought to the team's remote (and
//! merged into an integration branch), as asked and as it went.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The branch is on the remote.
    Pushed,
    /// The branch is on the remote and merged into the integration branch.
    Merged,
    /// The branch is on the remote; it conflicts with the integration
    /// branch, which was left as it was (`conflicts` lists the paths).
    Conflict,
    /// The remote's branch of that name is someone else's work: nothing was
    /// overwritten, nothing pushed.
    Rejected,
    /// The remote refused the credential, the permission or the host key.
    AuthFailed,
    /// The remote could not be reached after every attempt.
    Unreachable,
    /// Something else failed (see `error`).
    Failed,
    /// Nothing to deliver (the execution did not succeed, or changed nothing).
    Skipped,
}

impl DeliveryStatus {
    /// The name shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pushed => "pushed",
            DeliveryStatus::Merged => "merged",
            DeliveryStatus::Conflict => "conflict",
            DeliveryStatus::Rejected => "rejected",
            DeliveryStatus::AuthFailed => "auth_failed",
            DeliveryStatus::Unreachable => "unreachable",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    /// The branch reached the remote.
    pub fn landed(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Pushed | DeliveryStatus::Merged | DeliveryStatus::Conflict
        )
    }
}

/// Lines and files the delivered branch changes against its base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStats {
    pub files_changed: u64,
    pub insertions: u64,
    pub deletions: u64,
}

/// What became of an execution's delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// How it ended.
    pub status: DeliveryStatus,
    /// The remote (the repository's location, credential-free).
    pub remote: String,
    /// The branch pushed.
    pub branch: String,
    /// The branch's commit.
    pub commit: Option<String>,
    /// The commit the work started from.
    pub base_commit: Option<String>,
    /// What the branch changes against the base.
    pub stats: Option<DiffStats>,
    /// The integration branch merged into, when asked.
    pub merge_into: Option<String>,
    /// The integration branch's commit after the merge.
    pub merge_commit: Option<String>,
    /// Paths that conflicted with the integration branch.
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// Why it did not land (free of any credential).
    pub error: Option<String>,
    /// Attempts made (transient failures are retried).
    pub attempts: u32,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}
