//! An execution in brief, as listings show it: a page of fifty whole records
//! was ~84 KB and cost fifteen times a single record to serve. Its serde
//! shape is the listing's wire shape: the store writes pages of it as JSON
//! itself, and the API sends them on without reading them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ExecutionRecord, Status};

/// Where the API serves an execution's whole record: this, then its id.
pub const EXECUTION_PATH: &str = "/v1/executions/";

/// How much of the prompt a brief keeps, in characters.
pub const PROMPT_PREVIEW_CHARS: usize = 200;

/// What a listing shows of one execution: what it works on, where it stands
/// and what it cost; not its options, policy, usage by kind, files or
/// conversation (its own record has those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionBrief {
    /// Execution id.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Where it is in its life cycle.
    pub status: Status,
    /// Why it did not succeed, once final.
    pub reason: Option<String>,
    /// The repository, without credentials.
    pub repo: String,
    /// The ref asked for (or the default branch's name once resolved).
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The prompt's first [`PROMPT_PREVIEW_CHARS`] characters, `…` ending a
    /// cut one.
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
    pub links: BriefLinks,
}

/// Where a listed execution's whole record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BriefLinks {
    /// `GET` this for the whole record (and its other links).
    #[serde(rename = "self")]
    pub self_: String,
}

impl From<&ExecutionRecord> for ExecutionBrief {
    /// The brief of `record`, as a listing shows it.
    fn from(record: &ExecutionRecord) -> Self {
        ExecutionBrief {
            id: record.id.clone(),
            tenant_id: record.tenant_id.clone(),
            status: record.status,
            reason: record.reason.clone(),
            repo: record.request.repo.clone(),
            git_ref: record.request.git_ref.clone(),
            prompt_preview: prompt_preview(&record.request.prompt),
            branch: record.branch.clone(),
            head_commit: record.head_commit.clone(),
            num_turns: record.num_turns,
            cost_usd: record.cost_usd,
            has_diff: record.has_diff,
            cancel_requested: record.cancel_requested,
            created_at: record.created_at,
            finished_at: record.finished_at,
            duration_ms: record.duration_ms,
            links: BriefLinks {
                self_: format!("{EXECUTION_PATH}{}", record.id),
            },
        }
    }
}

/// The start of `prompt` a brief shows: at most [`PROMPT_PREVIEW_CHARS`]
/// characters, `…` added when it was cut.
pub fn prompt_preview(prompt: &str) -> String {
    match prompt.char_indices().nth(PROMPT_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &prompt[..cut]),
        None => prompt.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_prompt_is_cut_at_a_character_and_marked() {
        assert_eq!(prompt_preview("short"), "short");
        let exact = "é".repeat(PROMPT_PREVIEW_CHARS);
        assert_eq!(prompt_preview(&exact), exact);
        let long = "é".repeat(PROMPT_PREVIEW_CHARS + 1);
        let shown = prompt_preview(&long);
        assert_eq!(shown.chars().count(), PROMPT_PREVIEW_CHARS + 1);
        assert!(shown.ends_with("é…"));
    }
}
