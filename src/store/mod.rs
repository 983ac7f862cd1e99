//! The store: agentd's source of truth. Executions, their events in order, their
//! artifacts and the resources created for them.
//!
//! One trait, backed by SQLite (the embedded default: one file, WAL) or
//! PostgreSQL (production, several supervisor replicas), picked from the URL
//! scheme. Migrations live in `migrations/{sqlite,postgres}/` and are applied by
//! [`Store::migrate`] at start-up and by `agentd migrate`.
//!
//! One implementation serves both databases (`sql.rs`, generic over the sqlx
//! database); a dialect (`dialect.rs`, `sqlite.rs`, `postgres.rs`) holds what
//! truly differs between them. Every `queries.rs` statement runs on both.

mod codec;
mod dialect;
mod inputs;
mod model;
mod outbox;
mod postgres;
mod queries;
mod row;
mod sql;
mod sqlite;
mod tenancy;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::execution::Artifact;
use crate::execution::{
    Conversation, Event, EventBody, ExecutionBrief, ExecutionRecord, GatewayUsage, NewExecution,
    Outcome, Status,
};

pub use inputs::Inputs;
pub use model::*;
pub use outbox::{AttemptOutcome, DueDelivery, Outbox};
pub use tenancy::Tenancy;

/// What the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one agentd understands.
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// No execution with that id (for that tenant).
    #[error("execution {0} not found")]
    NotFound(String),
    /// The life cycle forbids this step (e.g. a final execution cannot change).
    #[error("execution {id} cannot go from {from} to {to}")]
    IllegalTransition {
        id: String,
        from: Status,
        to: Status,
    },
    /// A write by `holder` to an execution it holds no more: another replica
    /// took it over (its lease had run out). The writer must stop.
    #[error("execution {id} is no longer held by {holder}")]
    LeaseLost { id: String, holder: String },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key `{0}` was already used for a different request")]
    IdempotencyConflict(String),
    /// A tenant of that name already exists.
    #[error("tenant {0} already exists")]
    TenantExists(String),
    /// A listing cursor that this store did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// A stored value could not be decoded (a bug or a hand-edited database);
    /// `column` is `table.column`.
    #[error("corrupt stored value in {column}: {message}")]
    Corrupt {
        column: &'static str,
        message: String,
    },
}

/// Persistence for executions (and, through [`Tenancy`], tenants, keys, the
/// audit log and policies). Every method is one transaction.
#[async_trait]
pub trait Store: Tenancy + Outbox + Inputs + Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a `queued` execution. With an idempotency key already used by the
    /// same tenant: returns that execution (`existing: true`) if the request hash
    /// matches, else [`StoreError::IdempotencyConflict`].
    async fn create_execution(&self, new: NewExecution) -> Result<Created, StoreError>;

    /// The executions of conversation `id` (its first execution's id) of
    /// `tenant`, in the order they were made; empty when there is none.
    async fn conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// The ids of the follow-ups of execution `id`, in the order they were made.
    async fn children(&self, id: &str) -> Result<Vec<String>, StoreError>;

    /// One execution; with `tenant`, only if it belongs to that tenant.
    async fn get_execution(
        &self,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// Executions newest first (by id, which is time-ordered), filtered and
    /// paged, as briefs in their wire shape written by the database.
    async fn list_execution_page(&self, query: &ListQuery) -> Result<BriefPage, StoreError>;

    /// [`Store::list_execution_page`] read into briefs.
    async fn list_executions(&self, query: &ListQuery) -> Result<Page<ExecutionBrief>, StoreError> {
        self.list_execution_page(query).await?.read()
    }

    /// Atomically claims the oldest `queued` execution for `owner`: it becomes
    /// `preparing`, owned by `owner` with a lease of `lease`. `None` when the
    /// queue is empty. Safe under concurrent claimers (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`; SQLite: a single writer).
    async fn claim_next(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// Claims one specific `queued` execution for `owner` (as [`Store::claim_next`]
    /// does for the oldest): how `agentd run` starts the execution it just
    /// created. `None` if it is no longer queued (another supervisor claimed it).
    async fn claim(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// Takes over a live execution whose lease has expired (or that `owner`
    /// already holds, or that nobody holds), for re-attachment after a restart.
    /// `None` if another owner's lease is still valid or the execution is not
    /// live; [`StoreError::NotFound`] if there is no such execution.
    async fn take_over(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// Takes over a live execution from `previous`, its holder, whatever its
    /// lease says — for a holder proven dead (its lock on this host is free),
    /// so nobody waits for its lease to run out. `None` if `previous` holds it
    /// no more or it is not live.
    async fn take_over_from(
        &self,
        id: &str,
        previous: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError>;

    /// Queues a live execution `holder` holds again, for another attempt
    /// from the start (its engine was lost): status `queued`, no holder, one
    /// more in `retried`, the attempt's start, commits, session and log
    /// cursor forgotten (events, usage and spend are kept). `None` when
    /// `holder` does not hold it, it is not live, or its request's `retries`
    /// are used up.
    async fn requeue(&self, id: &str, holder: &str) -> Result<Option<ExecutionRecord>, StoreError>;

    /// Extends the lease of every live execution `owner` holds.
    async fn renew_leases(&self, owner: &str, lease: Duration) -> Result<(), StoreError>;

    /// Executions in a live state (`preparing`, `running`, `collecting`).
    async fn live_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// Number of `queued` executions, and of live ones.
    async fn counts(&self) -> Result<(u64, u64), StoreError>;

    /// How many executions each tenant has in each status (final ones too),
    /// ordered by tenant and status; pairs with none are left out.
    async fn counts_by_tenant(&self) -> Result<Vec<StatusCount>, StoreError>;

    /// Moves a non-final execution to a non-final state (`preparing → running →
    /// collecting`). Refuses illegal steps with [`StoreError::IllegalTransition`],
    /// checked against the stored state in the same statement.
    ///
    /// Like every write about a running execution, it is fenced: only
    /// `holder`, the execution's owner in the store, may make it; anyone else
    /// gets [`StoreError::LeaseLost`] and nothing changes.
    async fn transition(
        &self,
        id: &str,
        holder: &str,
        to: Status,
    ) -> Result<ExecutionRecord, StoreError>;

    /// Records facts learned while running (fenced by `holder`).
    /// [`StoreError::NotFound`] for an unknown execution.
    async fn update_facts(&self, id: &str, holder: &str, facts: &Facts) -> Result<(), StoreError>;

    /// Records the gateway's running totals for a live execution (after each
    /// model request, so a restart resumes from them; fenced by `holder`).
    async fn record_gateway_usage(
        &self,
        id: &str,
        holder: &str,
        usage: &GatewayUsage,
        conversation: &Conversation,
    ) -> Result<(), StoreError>;

    /// Writes the final status and figures (and the artifacts list) in one
    /// transaction (fenced by `holder`); the lease ends, the holder stays the
    /// owner so that only it appends the closing events. Refuses if the
    /// execution is already final.
    async fn finish(
        &self,
        id: &str,
        holder: &str,
        outcome: &Outcome,
    ) -> Result<ExecutionRecord, StoreError>;

    /// Records what became of the execution's delivery (at its end, or when
    /// delivery is retried later); answers the record as it is now.
    async fn record_delivery(
        &self,
        id: &str,
        delivery: &crate::execution::Delivery,
    ) -> Result<ExecutionRecord, StoreError>;

    /// Asks for cancellation: a queued execution becomes `cancelled` at once (it
    /// will never start); a live one gets `cancel_requested`; a final one is left.
    async fn request_cancel(
        &self,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<CancelOutcome, StoreError>;

    /// Appends events, numbering them after the last stored one (`seq` from 1,
    /// no gaps), and with `log_cursor` records in the same transaction how many
    /// output lines they account for. Returns them as stored; event times never
    /// go backwards within an execution. [`StoreError::NotFound`] for an
    /// unknown execution; fenced by `holder` like [`Store::transition`].
    async fn append_events(
        &self,
        id: &str,
        holder: &str,
        bodies: &[EventBody],
        log_cursor: Option<u64>,
    ) -> Result<Vec<Event>, StoreError>;

    /// Events with `seq > after`, in order, at most `limit` (none for an
    /// unknown execution).
    async fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError>;

    /// [`Store::events_after`], also cut once the events' stored text passes
    /// `max_bytes` (the first event always comes, whatever its size): a reader
    /// catching up holds a bounded page however large the events are.
    async fn events_page(
        &self,
        id: &str,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let _ = max_bytes;
        self.events_after(id, after, limit).await
    }

    /// The artifacts recorded by [`Store::finish`].
    async fn artifacts(&self, id: &str) -> Result<Vec<Artifact>, StoreError>;

    /// Records that a resource was created for an execution (again: it is
    /// alive again). [`StoreError::NotFound`] for an unknown execution.
    async fn resource_created(
        &self,
        id: &str,
        kind: ResourceKind,
        name: &str,
    ) -> Result<(), StoreError>;

    /// Records that a resource was removed (by name; idempotent).
    async fn resource_removed(&self, kind: ResourceKind, name: &str) -> Result<(), StoreError>;

    /// The resources of one execution, in creation order.
    async fn resources(&self, id: &str) -> Result<Vec<ResourceRecord>, StoreError>;
}

/// Opens the store a URL names: `sqlite://PATH` or `sqlite:PATH` (created if
/// missing; WAL, `synchronous=NORMAL`, foreign keys on, a 5 s busy timeout so
/// several agentd processes share the file) or `postgres://…` /
/// `postgresql://…`. Does not migrate. An unknown scheme is reported without
/// the rest of the URL, which may hold a password.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Arc::new(sql::SqlStore::new(sqlite::connect(url).await?))),
        "postgres" | "postgresql" if url[scheme.len()..].starts_with("://") => {
            Ok(Arc::new(sql::SqlStore::new(postgres::connect(url).await?)))
        }
        _ => Err(StoreError::UnsupportedUrl(format!("{scheme}:…"))),
    }
}
