//! Tenants, their API keys, the audit log and the policies, on either database
//! (the same SQL, like the rest of the store).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::codec::{audit_cursor, corrupt, now, page_size, read_audit_cursor, to_db_count};
use super::dialect::{Dialect, Field};
use super::row::Reader;
use super::sql::SqlStore;
use super::{ClaimingPause, Page, StoreError};
use crate::tenancy::{
    ApiKey, AuditEntry, AuditEvent, AuditQuery, Policy, Scope, SealedCredential, Tenant,
};

macro_rules! tenant_columns {
    () => {
        "id, disabled, created_at, disabled_at"
    };
}
macro_rules! key_columns {
    () => {
        "id, tenant_id, prefix, created_at, expires_at, revoked_at, last_used_at"
    };
}

const INSERT_TENANT: &str = concat!(
    "INSERT INTO tenants (id, disabled, created_at) VALUES ($1, FALSE, $2) \
     ON CONFLICT (id) DO NOTHING RETURNING ",
    tenant_columns!()
);
const GET_TENANT: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE id = $1");
const LIST_TENANTS: &str = concat!("SELECT ", tenant_columns!(), " FROM tenants ORDER BY id");
const DISABLE_TENANT: &str = concat!(
    "UPDATE tenants SET disabled = TRUE, disabled_at = COALESCE(disabled_at, $2) \
     WHERE id = $1 RETURNING ",
    tenant_columns!()
);
const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
);
const REVOKE_KEY: &str = concat!(
    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
     WHERE tenant_id = $1 AND id = $2 RETURNING ",
    key_columns!()
);
const LIST_AUDIT: &str = "SELECT seq, at, actor, tenant_id, key_id, action, target, outcome, \
     rule, detail, peer FROM audit_events WHERE 1 = 1";

/// Tenants, keys, the audit log and policies.
#[async_trait]
pub trait Tenancy: Send + Sync {
    /// Creates a tenant; [`StoreError::TenantExists`] if the name is taken.
    async fn create_tenant(&self, id: &str) -> Result<Tenant, StoreError>;

    /// One tenant.
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;

    /// Every tenant, by name.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Disables a tenant (idempotent); `None` when there is no such tenant.
    async fn disable_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;

    /// Stores a newly issued key of `key.tenant_id` under `hash`.
    async fn create_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError>;

    /// The key stored under `hash`, with whether its tenant is disabled.
    async fn find_key(&self, hash: &str) -> Result<Option<(ApiKey, bool)>, StoreError>;

    /// A tenant's keys, oldest first.
    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a tenant's key (idempotent); `None` when it has no such key.
    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<Option<ApiKey>, StoreError>;

    /// Records that a key was used at `at`.
    async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Appends to the audit log.
    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Reads the audit log, newest first.
    async fn audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError>;

    /// The policy stored for a scope, if any.
    async fn get_policy(&self, scope: Scope<'_>) -> Result<Option<Policy>, StoreError>;

    /// Stores the policy of a scope (replacing it). Its concurrency cap is
    /// kept beside the document for the scheduler's claim query.
    async fn put_policy(&self, scope: Scope<'_>, policy: &Policy) -> Result<(), StoreError>;

    /// What a tenant's executions created since `since` cost, as the gateway
    /// metered it (running ones included, as of their last model request).
    async fn spent_since(&self, tenant: &str, since: DateTime<Utc>) -> Result<f64, StoreError>;

    /// Pauses claiming on every replica (the claim finds nothing while the
    /// pause lasts). Pausing again keeps the first pause. Returns the pause.
    async fn pause_claiming(&self, by: &str) -> Result<ClaimingPause, StoreError>;

    /// Ends the pause; nothing to do when claiming was not paused.
    async fn resume_claiming(&self) -> Result<(), StoreError>;

    /// The pause of claiming on every replica, if there is one.
    async fn claiming_pause(&self) -> Result<Option<ClaimingPause>, StoreError>;

    /// Stores a tenant's credential, its secret sealed.
    async fn create_credential(&self, credential: &SealedCredential) -> Result<(), StoreError>;

    /// A tenant's credentials, oldest first, with their sealed secrets.
    async fn list_credentials(&self, tenant: &str) -> Result<Vec<SealedCredential>, StoreError>;

    /// Deletes a tenant's credential; false when it has none of that id.
    async fn delete_credential(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// How many credentials are stored (agentd refuses to start with some
    /// and no key to open them).
    async fn count_credentials(&self) -> Result<u64, StoreError>;

    /// The fingerprints of the keys that sealed the stored credentials (one
    /// query at start-up, however many tenants there are).
    async fn credential_key_fingerprints(&self) -> Result<Vec<String>, StoreError>;
}

#[async_trait]
impl<DB> Tenancy for SqlStore<DB>
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
    async fn create_tenant(&self, id: &str) -> Result<Tenant, StoreError> {
        let row = sqlx::query(INSERT_TENANT)
            .bind(id)
            .bind(DB::to_time(now()))
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Reader::<DB>::new(&row).tenant(),
            None => Err(StoreError::TenantExists(id.to_string())),
        }
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(GET_TENANT)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Reader::<DB>::new(&row).tenant()).transpose()
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = sqlx::query(LIST_TENANTS).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).tenant())
            .collect()
    }

    async fn disable_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(DISABLE_TENANT)
            .bind(id)
            .bind(DB::to_time(now()))
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Reader::<DB>::new(&row).tenant()).transpose()
    }

    async fn create_key(&self, key: &ApiKey, hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, prefix, hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.as_str())
        .bind(key.tenant_id.as_str())
        .bind(key.prefix.as_str())
        .bind(hash)
        .bind(DB::to_time(key.created_at))
        .bind(key.expires_at.map(DB::to_time))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn find_key(&self, hash: &str) -> Result<Option<(ApiKey, bool)>, StoreError> {
        let sql = "SELECT k.id, k.tenant_id, k.prefix, k.created_at, k.expires_at, k.revoked_at, \
                   k.last_used_at, t.disabled FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
                   WHERE k.hash = $1";
        let row = sqlx::query(sql)
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            let reader = Reader::<DB>::new(&row);
            Ok((reader.api_key()?, reader.tenant_disabled()?))
        })
        .transpose()
    }

    async fn list_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(LIST_KEYS)
            .bind(tenant)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).api_key())
            .collect()
    }

    async fn revoke_key(&self, tenant: &str, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(REVOKE_KEY)
            .bind(tenant)
            .bind(id)
            .bind(DB::to_time(now()))
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Reader::<DB>::new(&row).api_key()).transpose()
    }

    async fn touch_key(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(DB::to_time(at))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let detail = serde_json::to_string(&entry.detail)
            .map_err(|err| corrupt("audit_events.detail", err.to_string()))?;
        sqlx::query(
            "INSERT INTO audit_events (at, actor, tenant_id, key_id, action, target, outcome, \
             rule, detail, peer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(DB::to_time(now()))
        .bind(entry.actor.as_str())
        .bind(entry.tenant_id.as_deref())
        .bind(entry.key_id.as_deref())
        .bind(entry.action.as_str())
        .bind(entry.target.as_deref())
        .bind(entry.outcome.as_str())
        .bind(entry.rule.as_deref())
        .bind(detail.as_str())
        .bind(entry.peer.as_deref())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn audit_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, StoreError> {
        let limit = page_size(query.limit) as usize;
        let before = query.cursor.as_deref().map(read_audit_cursor).transpose()?;
        let mut sql = QueryBuilder::<DB>::new(LIST_AUDIT);
        if let Some(tenant) = &query.tenant_id {
            sql.push(" AND tenant_id = ").push_bind(tenant.as_str());
        }
        if let Some(action) = &query.action {
            sql.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(outcome) = &query.outcome {
            sql.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(since) = query.since {
            sql.push(" AND at >= ").push_bind(DB::to_time(since));
        }
        if let Some(before) = before {
            sql.push(" AND seq < ").push_bind(before);
        }
        sql.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(to_db_count(limit as u64 + 1));
        let rows = sql.build().fetch_all(self.pool()).await?;
        let mut items = rows
            .iter()
            .map(|row| Reader::<DB>::new(row).audit_event())
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| audit_cursor(last.seq))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn get_policy(&self, scope: Scope<'_>) -> Result<Option<Policy>, StoreError> {
        let row = sqlx::query("SELECT body FROM policies WHERE scope = $1")
            .bind(scope.key())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Reader::<DB>::new(&row).policy_body())
            .transpose()
    }

    async fn put_policy(&self, scope: Scope<'_>, policy: &Policy) -> Result<(), StoreError> {
        let text = serde_json::to_string(policy)
            .map_err(|err| corrupt("policies.body", err.to_string()))?;
        sqlx::query(
            "INSERT INTO policies (scope, body, max_concurrent, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope) DO UPDATE SET body = excluded.body, \
             max_concurrent = excluded.max_concurrent, updated_at = excluded.updated_at",
        )
        .bind(scope.key())
        .bind(text.as_str())
        .bind(policy.max_concurrent.map(i64::from))
        .bind(DB::to_time(now()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn spent_since(&self, tenant: &str, since: DateTime<Utc>) -> Result<f64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(gateway_cost_usd), 0) AS DOUBLE PRECISION) AS spent \
             FROM executions WHERE tenant_id = $1 AND created_at >= $2",
        )
        .bind(tenant)
        .bind(DB::to_time(since))
        .fetch_one(self.pool())
        .await?;
        Reader::<DB>::new(&row).spent()
    }

    async fn pause_claiming(&self, by: &str) -> Result<ClaimingPause, StoreError> {
        // Behind the claimers' lock (where there is one; SQLite has one
        // writer): a claim under way finishes first, and every later claim
        // sees the pause.
        let mut tx = self.pool().begin_with(DB::BEGIN_WRITE).await?;
        if let Some(lock) = DB::CLAIM_LOCK {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO claiming_pause (only_row, paused_at, paused_by) VALUES (TRUE, $1, $2) \
             ON CONFLICT (only_row) DO NOTHING",
        )
        .bind(DB::to_time(now()))
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.claiming_pause()
            .await?
            .ok_or_else(|| corrupt("claiming_pause", "the pause just stored is gone"))
    }

    async fn resume_claiming(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM claiming_pause")
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn create_credential(&self, sealed: &SealedCredential) -> Result<(), StoreError> {
        let credential = &sealed.credential;
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, kind, repo_pattern, username, sealed, \
             key_fingerprint, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(credential.id.as_str())
        .bind(credential.tenant_id.as_str())
        .bind(credential.kind.as_str())
        .bind(credential.repo_pattern.as_deref())
        .bind(credential.username.as_deref())
        .bind(sealed.sealed.as_str())
        .bind(sealed.key_fingerprint.as_str())
        .bind(DB::to_time(credential.created_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn list_credentials(&self, tenant: &str) -> Result<Vec<SealedCredential>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, kind, repo_pattern, username, sealed, key_fingerprint, \
             created_at FROM credentials WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).credential())
            .collect()
    }

    async fn delete_credential(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND id = $2 RETURNING id")
                .bind(tenant)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(done.is_some())
    }

    async fn credential_key_fingerprints(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT key_fingerprint FROM credentials")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| Reader::<DB>::new(row).key_fingerprint())
            .collect()
    }

    async fn count_credentials(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS stored FROM credentials")
            .fetch_one(self.pool())
            .await?;
        Reader::<DB>::new(&row).stored_count()
    }

    async fn claiming_pause(&self) -> Result<Option<ClaimingPause>, StoreError> {
        let row = sqlx::query("SELECT paused_at, paused_by FROM claiming_pause")
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Reader::<DB>::new(&row).claiming_pause())
            .transpose()
    }
}
