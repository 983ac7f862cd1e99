//! The store's own vocabulary: what its calls take and answer besides the
//! domain's records (which live in [`crate::execution`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::execution::{ExecutionBrief, ExecutionRecord, Status};

pub use crate::tenancy::DEFAULT_TENANT;

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

/// One page of a listing of executions as the database wrote it: the JSON
/// array of [`ExecutionBrief`]s in their wire shape, for the API to send as
/// it is.
#[derive(Debug, Clone, PartialEq)]
pub struct BriefPage {
    /// A JSON array of [`ExecutionBrief`]s, newest first.
    pub items: String,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl BriefPage {
    /// The page read into briefs (for callers inside agentd).
    pub fn read(self) -> Result<Page<ExecutionBrief>, StoreError> {
        let items = serde_json::from_str(&self.items).map_err(|error| StoreError::Corrupt {
            column: "executions.items",
            message: error.to_string(),
        })?;
        Ok(Page {
            items,
            next_cursor: self.next_cursor,
        })
    }
}

/// A request's branch naming as the `naming` column keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Naming {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_template: Option<String>,
}

/// What a request asked of delivery, as the `delivery_plan` column keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DeliveryPlan {
    #[serde(default)]
    pub push: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_into: Option<String>,
}

/// How many executions of one tenant are in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub tenant_id: String,
    pub status: Status,
    pub count: u64,
    /// When the oldest of them was created.
    pub oldest: DateTime<Utc>,
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

/// An admin's pause of claiming on every replica: no queued execution is
/// claimed while it lasts (maintenance, a migration); running ones carry on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimingPause {
    /// When claiming was paused.
    pub since: DateTime<Utc>,
    /// Who paused it (the audit log's actor).
    pub by: String,
}

/// The cursors a listing of executions takes: an execution id's shape.
pub const EXECUTION_CURSOR_PATTERN: &str =
    "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// The cursors the audit log takes: 1 to 18 digits.
pub const AUDIT_CURSOR_PATTERN: &str = "^[0-9]{1,18}$";
