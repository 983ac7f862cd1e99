//! The admin API under `/v1/admin`: tenants, their keys, and the audit log.
//! Every route needs the admin credential; every change is audited.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::executions::audit;
use super::extract::{JsonBody, PathParams, QueryParams, invalid_parameter};
use super::state::AppState;
use crate::tenancy::{ApiKey, AuditEvent, AuditQuery, Tenant, check_tenant_name, issue_key};

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/admin/tenants/{tenant}", get(show_tenant))
        .route("/v1/admin/tenants/{tenant}/disable", post(disable_tenant))
        .route(
            "/v1/admin/tenants/{tenant}/keys",
            post(create_key).get(list_keys),
        )
        .route(
            "/v1/admin/tenants/{tenant}/keys/{key_id}",
            delete(revoke_key),
        )
        .route("/v1/admin/audit", get(audit_log))
}

/// A new tenant.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Its name: 1 to 63 lowercase letters, digits and dashes, starting with a
    /// letter or digit.
    #[schema(example = "acme", pattern = r"^[a-z0-9][a-z0-9-]{0,62}$")]
    pub name: String,
}

/// A tenant as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    /// Its name (its id).
    pub id: String,
    /// Disabled tenants' keys are refused.
    pub disabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<Tenant> for TenantView {
    fn from(tenant: Tenant) -> Self {
        TenantView {
            id: tenant.id,
            disabled: tenant.disabled,
            created_at: tenant.created_at,
            disabled_at: tenant.disabled_at,
        }
    }
}

/// A list of tenants.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    /// Every tenant, by name.
    pub items: Vec<TenantView>,
}

/// How long a new key lasts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// When it stops working (RFC 3339). Default: never (until revoked).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key just issued: its text is shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedKeyView {
    /// The key's id (for listing and revoking).
    pub id: String,
    /// The key: send it as `Authorization: Bearer <key>`.
    #[schema(example = "agentd_Xk3p…")]
    pub key: String,
    /// Its first characters, as listings show it.
    pub prefix: String,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as listed (never its text).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// The key's id.
    pub id: String,
    /// Its first characters.
    pub prefix: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (recorded at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> Self {
        KeyView {
            id: key.id,
            prefix: key.prefix,
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// A tenant's keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    /// Oldest first.
    pub items: Vec<KeyView>,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Position in the log.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// `admin`, `tenant` or `anonymous`.
    pub actor: String,
    /// The tenant acted for or concerned.
    pub tenant_id: Option<String>,
    /// The key used (its id).
    pub key_id: Option<String>,
    /// What: `execution.create`, `execution.cancel`, `tenant.create`, `tenant.disable`,
    /// `key.create`, `key.revoke`, `policy.set`, `request.refused`, …
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// `ok` or `refused`.
    pub outcome: String,
    /// The rule that refused it.
    pub rule: Option<String>,
    /// More detail.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The client's address.
    pub peer: Option<String>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(event: AuditEvent) -> Self {
        AuditEventView {
            seq: event.seq,
            at: event.at,
            actor: event.actor.as_str().to_string(),
            tenant_id: event.tenant_id,
            key_id: event.key_id,
            action: event.action,
            target: event.target,
            outcome: event.outcome,
            rule: event.rule,
            detail: event.detail,
            peer: event.peer,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The events on this page.
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub(super) fn tenant_not_found(tenant: &str) -> ApiError {
    ApiError::NotFound(format!("tenant {tenant} not found"))
}

/// Creates a tenant.
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin", security(("bearer" = [])),
    request_body(content = NewTenant, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = TenantView),
        (status = 400, description = "Malformed JSON or a field of the wrong shape", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 409, description = "A tenant of that name exists", body = ErrorBody),
        (status = 422, description = "The name breaks the naming rule", body = ErrorBody),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Admin(caller): Admin,
    JsonBody(new): JsonBody<NewTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    check_tenant_name(&new.name).map_err(|rule| ApiError::Invalid {
        field: "name".into(),
        rule: rule.to_string(),
    })?;
    let tenant = state.supervisor.store().create_tenant(&new.name).await?;
    audit(
        &state,
        &caller
            .audit("tenant.create")
            .target(&tenant.id)
            .for_tenant(&tenant.id),
    )
    .await;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// Every tenant.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenants", body = TenantList),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
    ))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<TenantList>, ApiError> {
    let items = state.supervisor.store().list_tenants().await?;
    Ok(Json(TenantList {
        items: items.into_iter().map(TenantView::from).collect(),
    }))
}

/// One tenant.
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant}", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn show_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<TenantView>, ApiError> {
    let found = state.supervisor.store().get_tenant(&tenant).await?;
    found
        .map(|t| Json(t.into()))
        .ok_or_else(|| tenant_not_found(&tenant))
}

/// Disables a tenant: its keys stop working, its executions that have not
/// ended are cancelled (queued ones never start), and they stay readable to
/// the admin's audit. Idempotent.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant}/disable", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant, disabled", body = TenantView),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn disable_tenant(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<TenantView>, ApiError> {
    let disabled = state.supervisor.store().disable_tenant(&tenant).await?;
    let disabled = disabled.ok_or_else(|| tenant_not_found(&tenant))?;
    state.auth.forget(None, Some(&tenant));
    let stopped = state.supervisor.cancel_tenant(&tenant).await?;
    audit(
        &state,
        &caller
            .audit("tenant.disable")
            .target(&tenant)
            .for_tenant(&tenant)
            .detail(json!({"executions_cancelled": stopped})),
    )
    .await;
    Ok(Json(disabled.into()))
}

/// Issues a key for a tenant. The key is in this answer and nowhere else.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant}/keys", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    request_body(content = NewKey, content_type = "application/json"),
    responses(
        (status = 201, description = "The key, shown once", body = IssuedKeyView),
        (status = 400, description = "Malformed JSON or a field of the wrong shape", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant is disabled", body = ErrorBody),
        (status = 422, description = "The expiry is in the past", body = ErrorBody),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(new): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let store = state.supervisor.store();
    let found = store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| tenant_not_found(&tenant))?;
    if found.disabled {
        // The request is well formed; the tenant's state forbids it.
        return Err(ApiError::Conflict(format!(
            "tenant {tenant} is disabled: it gets no new keys"
        )));
    }
    let now = Utc::now();
    if new.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::Invalid {
            field: "expires_at".into(),
            rule: "must be in the future".into(),
        });
    }
    let issued = issue_key();
    let key = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.clone(),
        prefix: issued.prefix.clone(),
        created_at: now,
        expires_at: new.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    store.create_key(&key, &issued.hash).await?;
    let entry = caller
        .audit("key.create")
        .target(&key.id)
        .for_tenant(&tenant)
        .detail(json!({"prefix": key.prefix, "expires_at": key.expires_at}));
    audit(&state, &entry).await;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKeyView {
            id: key.id,
            key: issued.text,
            prefix: key.prefix,
            expires_at: key.expires_at,
        }),
    ))
}

/// A tenant's keys: ids and prefixes, never the keys themselves.
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant}/keys", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The keys", body = KeyList),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<KeyList>, ApiError> {
    let store = state.supervisor.store();
    store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| tenant_not_found(&tenant))?;
    let items = store.list_keys(&tenant).await?;
    Ok(Json(KeyList {
        items: items.into_iter().map(KeyView::from).collect(),
    }))
}

/// Revokes a key at once (idempotent).
#[utoipa::path(delete, path = "/v1/admin/tenants/{tenant}/keys/{key_id}", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name"), ("key_id" = String, Path, description = "The key's id (not the key)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "The tenant has no such key", body = ErrorBody),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams((tenant, key)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let revoked = state.supervisor.store().revoke_key(&tenant, &key).await?;
    // The path is not echoed: a client that sent the key itself by mistake
    // must not see it again in an answer.
    revoked.ok_or_else(|| ApiError::NotFound(format!("tenant {tenant} has no such key")))?;
    state.auth.forget(Some(&key), None);
    audit(
        &state,
        &caller.audit("key.revoke").target(&key).for_tenant(&tenant),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first, filtered.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("bearer" = [])),
    params(
        ("tenant" = Option<String>, Query, description = "Only this tenant's events"),
        ("action" = Option<String>, Query, description = "Only this action"),
        ("outcome" = Option<String>, Query, description = "Only `ok` or `refused`"),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Only events at or after this time (RFC 3339)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1–200. Default: 50"),
        ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,18}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of the log", body = AuditPage),
        (status = 400, description = "A parameter is invalid", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
    ))]
pub async fn audit_log(
    State(state): State<AppState>,
    _admin: Admin,
    mut query: QueryParams,
) -> Result<Json<AuditPage>, ApiError> {
    let tenant_id = query.take("tenant")?;
    let action = query.take("action")?;
    let outcome = query.take("outcome")?;
    let since = query
        .take_given("since")?
        .map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    invalid_parameter("since", &format!("`{text}` is not an RFC 3339 time"))
                })
        })
        .transpose()?;
    let limit = query.parse::<u32>("limit", "a number")?.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid_parameter("limit", "must be between 1 and 200"));
    }
    let cursor = query.take_given("cursor")?;
    query.finish()?;
    let page = state
        .supervisor
        .store()
        .audit_events(&AuditQuery {
            tenant_id,
            action,
            outcome,
            since,
            limit,
            cursor,
        })
        .await?;
    Ok(Json(AuditPage {
        items: page.items.into_iter().map(AuditEventView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
