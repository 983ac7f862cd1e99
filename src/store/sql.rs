//! The store, once, for every dialect: [`SqlStore`] runs the shared SQL of
//! [`super::queries`] over a sqlx pool of any database that implements
//! [`Dialect`]. The life cycle is enforced here, in the statements themselves:
//! each change names the states it may start from, so two supervisors (or a
//! supervisor and a cancelling client) can never both win.
//!
//! Statements that change one row end in `RETURNING`, which is how this generic
//! code learns whether a row matched (sqlx has no backend-neutral row count).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Pool, QueryBuilder, Type};

use super::codec::{
    corrupt, encode_body, lease_until, now, page_size, read_execution_cursor, storable_text,
    to_db_count,
};
use super::dialect::{Dialect, Field};
use super::queries as q;
use super::row::Reader;
use super::{
    BriefPage, CancelOutcome, Created, DeliveryPlan, Facts, ListQuery, Naming, ResourceKind,
    ResourceRecord, StatusCount, Store, StoreError,
};
use crate::execution::Artifact;
use crate::execution::{Conversation, ExecutionRecord, GatewayUsage, NewExecution, Outcome};
use crate::execution::{Event, EventBody, Status};

/// Most rows one multi-row event insert carries (6 parameters each).
const EVENTS_PER_INSERT: usize = 100;

/// The store over a pool of `DB` connections.
pub(super) struct SqlStore<DB: Dialect> {
    pool: Pool<DB>,
}

impl<DB: Dialect> SqlStore<DB> {
    /// A store over an open pool (not migrated).
    pub(super) fn new(pool: Pool<DB>) -> Self {
        SqlStore { pool }
    }

    /// The connection pool.
    pub(super) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

/// A value as a JSON column takes it.
/// A value as JSON text, for the columns kept as text (agent text may hold
/// `\u0000`, which PostgreSQL's jsonb refuses).
fn json_text<T: Serialize>(column: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| corrupt(column, err.to_string()))
}

fn json<T: Serialize>(column: &'static str, value: &T) -> Result<Json<Value>, StoreError> {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|err| corrupt(column, format!("cannot encode: {err}")))
}

// The `where` clauses below (the same on both impl blocks; Rust does not carry
// such bounds along) list exactly what the shared SQL needs from a database:
// executing on a connection, and binding and reading text, integers, floats,
// booleans, JSON and the dialect's timestamps, each also as NULL.
impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
    String: Field<DB>,
    i64: Field<DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
    f64: Field<DB>,
    Option<f64>: for<'q> Encode<'q, DB>,
    bool: Field<DB>,
    Json<Value>: Field<DB>,
    Option<DB::Time>: for<'q> Encode<'q, DB>,
{
    /// Inserts `new` on `branch` (`sibling`: its number among its parent's
    /// follow-ups), or finds the execution its idempotency key made.
    async fn insert_execution(
        &self,
        new: &NewExecution,
        branch: &str,
        sibling: Option<u32>,
    ) -> Result<Created, StoreError> {
        let at = DB::to_time(now());
        let naming = naming_json(&new.request)?;
        let plan = plan_json(&new.request)?;
        let hooks = (!new.request.hooks.is_empty())
            .then(|| json_text("executions.hooks", &new.request.hooks))
            .transpose()?;
        let inserted = sqlx::query(q::INSERT)
            .bind(new.id.as_str())
            .bind(new.tenant_id.as_str())
            .bind(new.idempotency_key.as_deref())
            .bind(new.request_hash.as_str())
            .bind(new.request.repo.as_str())
            .bind(new.request.git_ref.as_deref())
            .bind(new.request.prompt.as_str())
            .bind(json("executions.agent", &new.request.agent)?)
            .bind(json("executions.limits", &new.request.limits)?)
            .bind(new.request.context_file.as_deref())
            .bind(branch)
            .bind(at)
            .bind(new.request.record)
            .bind(new.request.replay.as_deref())
            .bind(json("executions.sandbox", &new.request.sandbox)?)
            .bind(json("executions.policy", &new.policy)?)
            .bind(naming.as_deref())
            .bind(plan.as_deref())
            .bind(hooks.as_deref())
            .bind(i64::from(new.request.retries))
            .bind(new.lineage.as_ref().map(|l| l.parent_id.as_str()))
            .bind(
                new.lineage
                    .as_ref()
                    .map_or(new.id.as_str(), |l| l.conversation_id.as_str()),
            )
            .bind(sibling.map(i64::from))
            .bind(new.request.streaming_input)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = inserted {
            let record = Reader::<DB>::new(&row).execution()?;
            return Ok(Created {
                record,
                existing: false,
            });
        }
        // Nothing inserted: only the idempotency key can have collided.
        let key = new.idempotency_key.clone().unwrap_or_default();
        let row = sqlx::query(q::BY_IDEMPOTENCY_KEY)
            .bind(new.tenant_id.as_str())
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let record = Reader::<DB>::new(&row).execution()?;
        if record.request_hash == new.request_hash {
            Ok(Created {
                record,
                existing: true,
            })
        } else {
            Err(StoreError::IdempotencyConflict(key))
        }
    }

    /// The stored status of an execution (of `tenant`, if given).
    async fn status_of<'c, E>(
        executor: E,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<Option<Status>, StoreError>
    where
        E: Executor<'c, Database = DB>,
    {
        let row = sqlx::query(q::STATUS)
            .bind(id)
            .bind(tenant)
            .fetch_optional(executor)
            .await?;
        row.map(|row| Reader::<DB>::new(&row).status()).transpose()
    }

    /// Why a holder's write to execution `id` matched no row: no such
    /// execution, another holder (the lease was lost), or (going `to`) its
    /// stored status does not allow it.
    async fn holder_refusal(&self, id: &str, holder: &str, to: Option<Status>) -> StoreError {
        let row = match sqlx::query(q::HOLDER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
        {
            Ok(Some(row)) => row,
            Ok(None) => return StoreError::NotFound(id.to_string()),
            Err(error) => return error.into(),
        };
        let reader = Reader::<DB>::new(&row);
        let (from, owner) = match (reader.status(), reader.holder()) {
            (Ok(from), Ok(owner)) => (from, owner),
            (Err(error), _) | (_, Err(error)) => return error,
        };
        match to {
            _ if owner.as_deref() != Some(holder) => StoreError::LeaseLost {
                id: id.to_string(),
                holder: holder.to_string(),
            },
            Some(to) => StoreError::IllegalTransition {
                id: id.to_string(),
                from,
                to,
            },
            None => StoreError::NotFound(id.to_string()),
        }
    }

    /// Why a change to `to` matched no row: no such execution, or its stored
    /// status does not allow it.
    async fn refusal(&self, id: &str, to: Status) -> StoreError {
        match Self::status_of(&self.pool, None, id).await {
            Ok(Some(from)) => StoreError::IllegalTransition {
                id: id.to_string(),
                from,
                to,
            },
            Ok(None) => StoreError::NotFound(id.to_string()),
            Err(err) => err,
        }
    }

    fn records(rows: &[DB::Row]) -> Result<Vec<ExecutionRecord>, StoreError> {
        rows.iter()
            .map(|row| Reader::<DB>::new(row).execution())
            .collect()
    }
}

#[async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
    String: Field<DB>,
    i64: Field<DB>,
    Option<i64>: for<'q> Encode<'q, DB>,
    f64: Field<DB>,
    Option<f64>: for<'q> Encode<'q, DB>,
    bool: Field<DB>,
    Json<Value>: Field<DB>,
    Option<DB::Time>: for<'q> Encode<'q, DB>,
{
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(DB::migrate(&self.pool).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(q::PING).execute(&self.pool).await?;
        Ok(())
    }

    async fn create_execution(&self, new: NewExecution) -> Result<Created, StoreError> {
        let Some(lineage) = new.lineage.clone() else {
            let branch = new.request.branch_for(&new.id, &new.tenant_id);
            return self.insert_execution(&new, &branch, None).await;
        };
        let parent = self
            .get_execution(Some(&new.tenant_id), &lineage.parent_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(lineage.parent_id.clone()))?;
        // Two follow-ups of one parent made at once both try the next
        // number; the unique (parent, sibling) index lets one win, the other
        // takes the number after.
        let mut attempts = 0;
        loop {
            let row = sqlx::query(q::LAST_SIBLING)
                .bind(lineage.parent_id.as_str())
                .fetch_one(&self.pool)
                .await?;
            let last = Reader::<DB>::new(&row).last_sibling()?;
            let sibling = u32::try_from(last).unwrap_or(u32::MAX - 1) + 1;
            let branch = crate::execution::follow_up_branch(&parent.branch, sibling);
            match self.insert_execution(&new, &branch, Some(sibling)).await {
                Err(StoreError::Database(sqlx::Error::Database(error)))
                    if error.is_unique_violation() && attempts < 8 =>
                {
                    attempts += 1;
                }
                done => return done,
            }
        }
    }

    async fn conversation(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows = sqlx::query(q::CONVERSATION)
            .bind(id)
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).execution())
            .collect()
    }

    async fn children(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(q::CHILDREN)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).get("executions.id"))
            .collect()
    }

    async fn get_execution(
        &self,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let row = sqlx::query(q::GET)
            .bind(id)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Reader::<DB>::new(&row).execution())
            .transpose()
    }

    async fn list_execution_page(&self, query: &ListQuery) -> Result<BriefPage, StoreError> {
        let limit = page_size(query.limit);
        let before = query
            .cursor
            .as_deref()
            .map(read_execution_cursor)
            .transpose()?;
        // The page's rows, then as many more as tell whether a next page
        // exists, with the same filters. The sizes are numbers of ours,
        // written into the statement.
        let mut sql = QueryBuilder::<DB>::new(DB::LIST_PAGE);
        for (start, size, end) in [
            (q::LIST_PAGE_MORE, limit + 1, q::LIST_PAGE_ROWS),
            ("", limit, q::LIST_PAGE_END),
        ] {
            sql.push(start);
            if let Some(tenant) = &query.tenant_id {
                sql.push(" AND tenant_id = ").push_bind(tenant.as_str());
            }
            if let Some(status) = query.status {
                sql.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(repo) = &query.repo {
                sql.push(" AND repo = ").push_bind(repo.as_str());
            }
            if let Some(before) = &before {
                sql.push(" AND id < ").push_bind(before.as_str());
            }
            sql.push(q::LIST_ROWS_END).push(size).push(end);
        }
        let row = sql.build().fetch_one(&self.pool).await?;
        Reader::<DB>::new(&row).brief_page(limit)
    }

    async fn claim_next(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let at = now();
        let claim = sqlx::query(DB::CLAIM)
            .bind(owner)
            .bind(DB::to_time(lease_until(at, lease)))
            .bind(DB::to_time(at));
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        if let Some(lock) = DB::CLAIM_LOCK {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        let Some(row) = claim.fetch_optional(&mut *tx).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let record = Reader::<DB>::new(&row).execution()?;
        sqlx::query(q::TAKE_TURN)
            .bind(record.tenant_id.as_str())
            .bind(DB::to_time(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    async fn claim(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let at = now();
        let row = sqlx::query(q::CLAIM_ONE)
            .bind(owner)
            .bind(DB::to_time(lease_until(at, lease)))
            .bind(DB::to_time(at))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(Reader::<DB>::new(&row).execution()?)),
            None => match Self::status_of(&self.pool, None, id).await? {
                Some(_) => Ok(None),
                None => Err(StoreError::NotFound(id.to_string())),
            },
        }
    }

    async fn take_over(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let at = now();
        let row = sqlx::query(q::TAKE_OVER)
            .bind(id)
            .bind(owner)
            .bind(DB::to_time(lease_until(at, lease)))
            .bind(DB::to_time(at))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(Reader::<DB>::new(&row).execution()?)),
            None => match Self::status_of(&self.pool, None, id).await? {
                Some(_) => Ok(None),
                None => Err(StoreError::NotFound(id.to_string())),
            },
        }
    }

    async fn take_over_from(
        &self,
        id: &str,
        previous: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let at = now();
        let row = sqlx::query(q::TAKE_OVER_FROM)
            .bind(id)
            .bind(owner)
            .bind(DB::to_time(lease_until(at, lease)))
            .bind(DB::to_time(at))
            .bind(previous)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Reader::<DB>::new(&row).execution())
            .transpose()
    }

    async fn requeue(&self, id: &str, holder: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        let row = sqlx::query(q::REQUEUE)
            .bind(id)
            .bind(holder)
            .bind(DB::to_time(now()))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Reader::<DB>::new(&row).execution())
            .transpose()
    }

    async fn renew_leases(&self, owner: &str, lease: Duration) -> Result<(), StoreError> {
        let at = now();
        sqlx::query(q::RENEW_LEASES)
            .bind(owner)
            .bind(DB::to_time(lease_until(at, lease)))
            .bind(DB::to_time(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn live_executions(&self) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows = sqlx::query(q::LIVE_EXECUTIONS)
            .fetch_all(&self.pool)
            .await?;
        Self::records(&rows)
    }

    async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let rows = sqlx::query(q::COUNTS).fetch_all(&self.pool).await?;
        let (mut queued, mut live) = (0, 0);
        for row in &rows {
            match Reader::<DB>::new(row).status_count()? {
                (Status::Queued, n) => queued += n,
                (_, n) => live += n,
            }
        }
        Ok((queued, live))
    }

    async fn counts_by_tenant(&self) -> Result<Vec<StatusCount>, StoreError> {
        let rows = sqlx::query(q::COUNTS_BY_TENANT)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).tenant_status_count())
            .collect()
    }

    async fn transition(
        &self,
        id: &str,
        holder: &str,
        to: Status,
    ) -> Result<ExecutionRecord, StoreError> {
        let from: Vec<&str> = Status::ALL
            .into_iter()
            .filter(|from| !to.is_final() && from.can_become(to))
            .map(Status::as_str)
            .collect();
        if !from.is_empty() {
            let mut statement = sqlx::query(q::TRANSITION)
                .bind(id)
                .bind(to.as_str())
                .bind(DB::to_time(now()));
            // Only the four unfinished states can be left; unused slots are NULL.
            for slot in 0..4 {
                statement = statement.bind(from.get(slot).copied());
            }
            if let Some(row) = statement.bind(holder).fetch_optional(&self.pool).await? {
                return Reader::<DB>::new(&row).execution();
            }
        }
        Err(self.holder_refusal(id, holder, Some(to)).await)
    }

    async fn update_facts(&self, id: &str, holder: &str, facts: &Facts) -> Result<(), StoreError> {
        let row = sqlx::query(q::UPDATE_FACTS)
            .bind(id)
            .bind(facts.base_commit.as_deref())
            .bind(facts.git_ref.as_deref())
            .bind(facts.session_id.as_deref())
            .bind(facts.image.as_deref())
            .bind(facts.started_at.map(DB::to_time))
            .bind(DB::to_time(now()))
            .bind(holder)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(_) => Ok(()),
            None => Err(self.holder_refusal(id, holder, None).await),
        }
    }

    async fn record_gateway_usage(
        &self,
        id: &str,
        holder: &str,
        usage: &GatewayUsage,
        conversation: &Conversation,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(q::GATEWAY_USAGE)
            .bind(id)
            .bind(to_db_count(usage.requests))
            .bind(to_db_count(usage.usage.input_tokens))
            .bind(to_db_count(usage.usage.output_tokens))
            .bind(to_db_count(usage.usage.cache_creation_input_tokens))
            .bind(to_db_count(usage.usage.cache_read_input_tokens))
            .bind(usage.cost_usd)
            .bind(DB::to_time(now()))
            .bind(json_text("executions.conversation", conversation)?)
            .bind(holder)
            .fetch_optional(&self.pool)
            .await?;
        match done {
            Some(_) => Ok(()),
            None => Err(self.holder_refusal(id, holder, None).await),
        }
    }

    async fn record_delivery(
        &self,
        id: &str,
        delivery: &crate::execution::Delivery,
    ) -> Result<ExecutionRecord, StoreError> {
        let row = sqlx::query(q::DELIVERY)
            .bind(id)
            .bind(json_text("executions.delivery", delivery)?)
            .bind(DB::to_time(now()))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Reader::<DB>::new(&row).execution(),
            None => Err(StoreError::NotFound(id.to_string())),
        }
    }

    async fn finish(
        &self,
        id: &str,
        holder: &str,
        outcome: &Outcome,
    ) -> Result<ExecutionRecord, StoreError> {
        if !outcome.status.is_final() {
            return Err(self.refusal(id, outcome.status).await);
        }
        let usage = &outcome.usage;
        let reason = storable_text(outcome.reason.as_deref());
        let result = storable_text(outcome.result.as_deref());
        let claimed = outcome
            .claimed
            .as_ref()
            .map(|claimed| json_text("executions.claimed", claimed))
            .transpose()?;
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let row = sqlx::query(q::FINISH)
            .bind(id)
            .bind(outcome.status.as_str())
            .bind(reason.as_deref())
            .bind(outcome.head_commit.as_deref())
            .bind(outcome.session_id.as_deref())
            .bind(to_db_count(outcome.num_turns))
            .bind(to_db_count(usage.input_tokens))
            .bind(to_db_count(usage.output_tokens))
            .bind(to_db_count(usage.cache_creation_input_tokens))
            .bind(to_db_count(usage.cache_read_input_tokens))
            .bind(outcome.cost_usd)
            .bind(to_db_count(outcome.tool_calls))
            .bind(result.as_deref())
            .bind(json("executions.files_changed", &outcome.files_changed)?)
            .bind(outcome.exit_code)
            .bind(outcome.oom_killed)
            .bind(outcome.has_diff)
            .bind(outcome.has_bundle)
            .bind(to_db_count(outcome.duration_ms))
            .bind(DB::to_time(now()))
            .bind(to_db_count(outcome.gateway.requests))
            .bind(to_db_count(outcome.gateway.usage.input_tokens))
            .bind(to_db_count(outcome.gateway.usage.output_tokens))
            .bind(to_db_count(
                outcome.gateway.usage.cache_creation_input_tokens,
            ))
            .bind(to_db_count(outcome.gateway.usage.cache_read_input_tokens))
            .bind(outcome.gateway.cost_usd)
            .bind(json_text("executions.conversation", &outcome.conversation)?)
            .bind(claimed.as_deref())
            .bind(json_text("executions.left_out", &outcome.left_out)?)
            .bind(holder)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(self.holder_refusal(id, holder, Some(outcome.status)).await);
        };
        let record = Reader::<DB>::new(&row).execution()?;
        sqlx::query(q::DELETE_ARTIFACTS)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for artifact in &outcome.artifacts {
            sqlx::query(q::INSERT_ARTIFACT)
                .bind(id)
                .bind(artifact.path.as_str())
                .bind(to_db_count(artifact.size))
                .bind(artifact.sha256.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(record)
    }

    async fn request_cancel(
        &self,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<CancelOutcome, StoreError> {
        let at = now();
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        for (statement, outcome) in [
            (q::CANCEL_QUEUED, CancelOutcome::CancelledWhileQueued),
            (q::CANCEL_LIVE, CancelOutcome::Requested),
        ] {
            let changed = sqlx::query(statement)
                .bind(id)
                .bind(tenant)
                .bind(DB::to_time(at))
                .fetch_optional(&mut *tx)
                .await?;
            if changed.is_some() {
                tx.commit().await?;
                return Ok(outcome);
            }
        }
        let status = Self::status_of(&mut *tx, tenant, id).await?;
        tx.rollback().await?;
        // Statuses only move forward, so neither queued nor live means final.
        match status {
            None => Err(StoreError::NotFound(id.to_string())),
            Some(status) if status.is_final() => Ok(CancelOutcome::AlreadyFinal),
            Some(from) => Err(StoreError::IllegalTransition {
                id: id.to_string(),
                from,
                to: Status::Cancelled,
            }),
        }
    }

    async fn append_events(
        &self,
        id: &str,
        holder: &str,
        bodies: &[EventBody],
        log_cursor: Option<u64>,
    ) -> Result<Vec<Event>, StoreError> {
        let stored = bodies
            .iter()
            .map(encode_body)
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        // The first write locks the execution's row: appenders take turns here.
        let touched = sqlx::query(q::TOUCH_FOR_EVENTS)
            .bind(id)
            .bind(log_cursor.map(to_db_count))
            .bind(DB::to_time(now()))
            .bind(holder)
            .fetch_optional(&mut *tx)
            .await?;
        if touched.is_none() {
            tx.rollback().await?;
            return Err(self.holder_refusal(id, holder, None).await);
        }
        let previous = sqlx::query(q::LAST_EVENT)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let (last, last_at) = match previous {
            Some(row) => {
                let (seq, at) = Reader::<DB>::new(&row).last_event()?;
                (seq, Some(at))
            }
            None => (0, None),
        };
        // Taken under the lock, and never before the previous event (clocks
        // of several replicas may disagree): times follow the numbering.
        let at = last_at.map_or_else(now, |last_at| now().max(last_at));
        let mut seq = last;
        for chunk in stored.chunks(EVENTS_PER_INSERT) {
            let mut insert = QueryBuilder::<DB>::new(q::INSERT_EVENTS);
            insert.push_values(chunk, |mut values, body| {
                seq += 1;
                values
                    .push_bind(id)
                    .push_bind(to_db_count(seq))
                    .push_bind(DB::to_time(at))
                    .push_bind(body.source.as_str())
                    .push_bind(body.kind.as_str())
                    .push_bind(body.json.as_str());
            });
            insert.build().execute(&mut *tx).await?;
        }
        // The webhooks' deliveries of these events, in the same transaction.
        sqlx::query(super::outbox::ENQUEUE)
            .bind(id)
            .bind(to_db_count(last))
            .bind(to_db_count(seq))
            .bind(DB::to_time(at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(bodies
            .iter()
            .zip(last + 1..)
            .map(|(body, seq)| Event {
                seq,
                at,
                body: body.clone(),
            })
            .collect())
    }

    async fn events_after(
        &self,
        id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(q::EVENTS_AFTER)
            .bind(id)
            .bind(to_db_count(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).event())
            .collect()
    }

    async fn events_page(
        &self,
        id: &str,
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(q::EVENTS_PAGE)
            .bind(id)
            .bind(to_db_count(after))
            .bind(i64::from(limit))
            .bind(to_db_count(max_bytes as u64))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).event())
            .collect()
    }

    async fn artifacts(&self, id: &str) -> Result<Vec<Artifact>, StoreError> {
        let rows = sqlx::query(q::ARTIFACTS)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).artifact())
            .collect()
    }

    async fn resource_created(
        &self,
        id: &str,
        kind: ResourceKind,
        name: &str,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(q::RESOURCE_CREATED)
            .bind(id)
            .bind(kind.as_str())
            .bind(name)
            .bind(DB::to_time(now()))
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(err)) if err.is_foreign_key_violation() => {
                Err(StoreError::NotFound(id.to_string()))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn resource_removed(&self, kind: ResourceKind, name: &str) -> Result<(), StoreError> {
        sqlx::query(q::RESOURCE_REMOVED)
            .bind(kind.as_str())
            .bind(name)
            .bind(DB::to_time(now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn resources(&self, id: &str) -> Result<Vec<ResourceRecord>, StoreError> {
        let rows = sqlx::query(q::RESOURCES)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).resource())
            .collect()
    }
}

/// The request's delivery as stored (`delivery_plan`): NULL when it asks
/// for none.
fn plan_json(request: &crate::execution::ExecutionRequest) -> Result<Option<String>, StoreError> {
    let plan = DeliveryPlan {
        push: request.push,
        merge_into: request.merge_into.clone(),
    };
    if plan == DeliveryPlan::default() {
        return Ok(None);
    }
    serde_json::to_string(&plan)
        .map(Some)
        .map_err(|error| corrupt("executions.delivery_plan", error.to_string()))
}

/// The request's branch naming as stored (`naming`): NULL when it asks
/// nothing of it.
fn naming_json(request: &crate::execution::ExecutionRequest) -> Result<Option<String>, StoreError> {
    let naming = Naming {
        agent_id: request.agent_id.clone(),
        task_id: request.task_id.clone(),
        branch_template: request.branch_template.clone(),
    };
    if naming == Naming::default() {
        return Ok(None);
    }
    serde_json::to_string(&naming)
        .map(Some)
        .map_err(|error| corrupt("executions.naming", error.to_string()))
}
