//! Status webhooks in the store: a tenant's endpoints and the durable outbox
//! of their deliveries.
//!
//! Deliveries are written by [`super::Store::append_events`] in the
//! transaction that stores their events ([`ENQUEUE`]): an event is never
//! stored without them, whatever happens to the process afterwards. Any
//! replica claims due deliveries for a while (a claim that runs out is
//! claimed again, so a replica killed mid-send loses nothing; on PostgreSQL
//! concurrent claimers skip each other's rows), sends them and records how it
//! went.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, Type};

use super::codec::now;
use super::dialect::{Dialect, Field};
use super::row::Reader;
use super::sql::SqlStore;
use super::{Page, StoreError};
use crate::tenancy::{DeliveryState, SealedWebhook, WebhookDelivery};

/// The event types an endpoint can receive, as `events.type` names them.
macro_rules! webhook_types {
    () => {
        "'status', 'tool_call', 'model_call'"
    };
}

/// Writes the deliveries of execution `$1`'s events `$2 < seq <= $3` to every
/// endpoint of its tenant that receives their type, due at `$4`.
pub(super) const ENQUEUE: &str = concat!(
    "INSERT INTO webhook_deliveries (webhook_id, tenant_id, execution_id, seq, event_type, \
     status, attempts, next_attempt_at, created_at) \
     SELECT w.id, w.tenant_id, e.execution_id, e.seq, e.type, 'pending', 0, $4, $4 \
     FROM events e \
     JOIN executions x ON x.id = e.execution_id \
     JOIN webhooks w ON w.tenant_id = x.tenant_id AND w.events LIKE '%,' || e.type || ',%' \
     WHERE e.execution_id = $1 AND e.seq > $2 AND e.seq <= $3 AND e.type IN (",
    webhook_types!(),
    ")"
);

const DELIVERY_COLUMNS: &str = "id, webhook_id, tenant_id, execution_id, seq, event_type, status, \
     attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

macro_rules! claim_deliveries {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET claimed_by = $1, claim_expires_at = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries \
               WHERE status = 'pending' AND next_attempt_at <= $3 \
                 AND (claim_expires_at IS NULL OR claim_expires_at < $3) \
               ORDER BY id LIMIT $4 ",
            $lock,
            ") RETURNING id, webhook_id, tenant_id, execution_id, seq, event_type, status, \
             attempts, next_attempt_at, last_status, last_error, created_at, delivered_at"
        )
    };
}

/// Claims due deliveries where rows can be locked (PostgreSQL).
pub(super) const CLAIM_DELIVERIES_SKIP_LOCKED: &str = claim_deliveries!("FOR UPDATE SKIP LOCKED");
/// Claims due deliveries where one writer holds the database (SQLite).
pub(super) const CLAIM_DELIVERIES_SINGLE_WRITER: &str = claim_deliveries!("");

/// A delivery claimed for sending, with what it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: WebhookDelivery,
    /// Its endpoint (secret sealed).
    pub webhook: SealedWebhook,
    /// The event's time.
    pub at: DateTime<Utc>,
    /// The event as stored (JSON).
    pub event: String,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered { status: u16 },
    /// Failed; try again at `next`.
    Retry {
        status: Option<u16>,
        error: String,
        next: DateTime<Utc>,
    },
    /// Failed for the last time: dead-lettered.
    Dead { status: Option<u16>, error: String },
}

/// The store's side of status webhooks.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Registers an endpoint, its secret sealed.
    async fn create_webhook(&self, webhook: &SealedWebhook) -> Result<(), StoreError>;

    /// A tenant's endpoints, oldest first.
    async fn list_webhooks(&self, tenant: &str) -> Result<Vec<SealedWebhook>, StoreError>;

    /// Deletes a tenant's endpoint and its deliveries; false when it has none
    /// of that id.
    async fn delete_webhook(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// One endpoint's deliveries, newest first, after `cursor` (a delivery id).
    async fn webhook_deliveries(
        &self,
        tenant: &str,
        webhook: &str,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<WebhookDelivery>, StoreError>;

    /// Makes a tenant's delivery due again now, its attempts counted from
    /// zero (by hand, after it was dead-lettered or delivered).
    async fn redeliver(
        &self,
        tenant: &str,
        webhook: &str,
        id: i64,
    ) -> Result<Option<WebhookDelivery>, StoreError>;

    /// Claims up to `limit` due deliveries for `owner` for `lease`.
    async fn claim_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Deletes deliveries delivered before `before` (the outbox keeps what
    /// is pending and dead, and a week of what was delivered).
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Extends `owner`'s claim on a delivery just before it is sent; false
    /// when the claim ran out or went to another claimer meanwhile (then it
    /// must not be sent).
    async fn renew_claim(&self, id: i64, owner: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Records an attempt at a delivery `owner` claimed (nothing when the
    /// claim went to another replica meanwhile).
    async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError>;
}

#[async_trait]
impl<DB> Outbox for SqlStore<DB>
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
    async fn create_webhook(&self, sealed: &SealedWebhook) -> Result<(), StoreError> {
        let webhook = &sealed.webhook;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, url, events, sealed_secret, key_fingerprint, \
             operator, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(webhook.id.as_str())
        .bind(webhook.tenant_id.as_str())
        .bind(webhook.url.as_str())
        .bind(webhook.events_column())
        .bind(sealed.sealed_secret.as_str())
        .bind(sealed.key_fingerprint.as_str())
        .bind(webhook.operator)
        .bind(DB::to_time(webhook.created_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn list_webhooks(&self, tenant: &str) -> Result<Vec<SealedWebhook>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, url, events, sealed_secret, key_fingerprint, operator, created_at \
             FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).webhook())
            .collect()
    }

    async fn delete_webhook(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin_with(DB::BEGIN_WRITE).await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND webhook_id IN \
             (SELECT id FROM webhooks WHERE tenant_id = $2)",
        )
        .bind(id)
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
        let done =
            sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2 RETURNING id")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.is_some())
    }

    async fn webhook_deliveries(
        &self,
        tenant: &str,
        webhook: &str,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page<WebhookDelivery>, StoreError> {
        let limit = limit.clamp(1, 200);
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE tenant_id = $1 AND webhook_id = $2 AND id < $3 ORDER BY id DESC LIMIT {}",
            limit + 1
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(webhook)
            .bind(cursor.unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        let mut items = rows
            .iter()
            .map(|row| Reader::<DB>::new(row).webhook_delivery())
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = (items.len() > limit as usize).then(|| {
            items.truncate(limit as usize);
            items
                .last()
                .map(|last| last.id.to_string())
                .unwrap_or_default()
        });
        Ok(Page { items, next_cursor })
    }

    async fn redeliver(
        &self,
        tenant: &str,
        webhook: &str,
        id: i64,
    ) -> Result<Option<WebhookDelivery>, StoreError> {
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = $3, claimed_by = NULL, claim_expires_at = NULL, \
             delivered_at = NULL WHERE id = $1 AND tenant_id = $2 AND webhook_id = $4 \
             RETURNING {DELIVERY_COLUMNS}"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(tenant)
            .bind(DB::to_time(now()))
            .bind(webhook)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Reader::<DB>::new(&row).webhook_delivery())
            .transpose()
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let at = now();
        let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut tx = self.pool().begin_with(DB::BEGIN_WRITE).await?;
        let rows = sqlx::query(DB::CLAIM_DELIVERIES)
            .bind(owner)
            .bind(DB::to_time(until))
            .bind(DB::to_time(at))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = Reader::<DB>::new(row).webhook_delivery()?;
            let webhook = sqlx::query(
                "SELECT id, tenant_id, url, events, sealed_secret, key_fingerprint, operator, created_at \
                 FROM webhooks WHERE id = $1",
            )
            .bind(delivery.webhook_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let event =
                sqlx::query("SELECT at, body FROM events WHERE execution_id = $1 AND seq = $2")
                    .bind(delivery.execution_id.as_str())
                    .bind(super::codec::to_db_count(delivery.seq))
                    .fetch_optional(&mut *tx)
                    .await?;
            let (Some(webhook), Some(event)) = (webhook, event) else {
                continue;
            };
            let (at, event) = Reader::<DB>::new(&event).event_at_and_body()?;
            due.push(DueDelivery {
                delivery,
                webhook: Reader::<DB>::new(&webhook).webhook()?,
                at,
                event,
            });
        }
        tx.commit().await?;
        Ok(due)
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let gone = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < $1 \
             RETURNING id",
        )
        .bind(DB::to_time(before))
        .fetch_all(self.pool())
        .await?;
        Ok(gone.len() as u64)
    }

    async fn renew_claim(&self, id: i64, owner: &str, lease: Duration) -> Result<bool, StoreError> {
        let at = now();
        let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let renewed = sqlx::query(
            "UPDATE webhook_deliveries SET claim_expires_at = $3 WHERE id = $1 AND claimed_by = $2 \
             AND status = 'pending' AND claim_expires_at > $4 RETURNING id",
        )
        .bind(id)
        .bind(owner)
        .bind(DB::to_time(until))
        .bind(DB::to_time(at))
        .fetch_optional(self.pool())
        .await?;
        Ok(renewed.is_some())
    }

    async fn record_attempt(
        &self,
        id: i64,
        owner: &str,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        let at = now();
        let (state, status, error, next, delivered) = match outcome {
            AttemptOutcome::Delivered { status } => {
                (DeliveryState::Delivered, Some(*status), None, at, Some(at))
            }
            AttemptOutcome::Retry {
                status,
                error,
                next,
            } => (
                DeliveryState::Pending,
                *status,
                Some(error.as_str()),
                *next,
                None,
            ),
            AttemptOutcome::Dead { status, error } => {
                (DeliveryState::Dead, *status, Some(error.as_str()), at, None)
            }
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
             last_status = $4, last_error = $5, next_attempt_at = $6, delivered_at = $7, \
             claimed_by = NULL, claim_expires_at = NULL WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(state.as_str())
        .bind(status.map(i64::from))
        .bind(error)
        .bind(DB::to_time(next))
        .bind(delivered.map(DB::to_time))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
