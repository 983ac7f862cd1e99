//! Policies over HTTP: admins read and replace the global policy and each
//! tenant's overrides (`/v1/admin/policy`, `/v1/admin/tenants/{t}/policy`);
//! a tenant reads the policy it runs under (`/v1/policy`). A change applies
//! to the next submission on every replica (admission reads the store) and
//! is audited with the document written.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::tenant_not_found;
use super::auth::{Admin, Caller, Tenant};
use super::error::{ApiError, ErrorBody};
use super::executions::audit;
use super::extract::{JsonBody, PathParams};
use super::policy_schema::PolicySchema;
use super::state::AppState;
use crate::supervisor::governance::effective_policy;
use crate::tenancy::{Policy, Principal, Scope};

/// The policy routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policy", get(own_policy))
        .route(
            "/v1/admin/policy",
            get(show_global_policy).put(set_global_policy),
        )
        .route(
            "/v1/admin/tenants/{tenant}/policy",
            get(show_tenant_policy).put(set_tenant_policy),
        )
}

/// One scope's policy as stored, with what it means for a tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// `global`, or the tenant's name.
    #[schema(example = "acme")]
    pub scope: String,
    /// The document stored for the scope (`{}` when none).
    #[schema(value_type = PolicySchema)]
    pub policy: Policy,
    /// For a tenant: the policy it runs under (its overrides on the global
    /// policy). Absent for the global scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PolicySchema>)]
    pub effective: Option<Policy>,
}

/// The policy a tenant's executions run under.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OwnPolicyView {
    /// The tenant.
    #[schema(example = "acme")]
    pub tenant: String,
    /// False for the local operator (no key, loopback mode): its executions
    /// are not held to any policy.
    pub governed: bool,
    /// The global policy with the tenant's overrides on top.
    #[schema(value_type = PolicySchema)]
    pub effective: Policy,
}

/// The policy the caller's executions run under.
#[utoipa::path(get, path = "/v1/policy", tag = "policy", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's effective policy", body = OwnPolicyView),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "The admin credential (policies of tenants are under /v1/admin)", body = ErrorBody),
    ))]
pub async fn own_policy(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
) -> Result<Json<OwnPolicyView>, ApiError> {
    let governed = matches!(
        caller.principal,
        Principal::Tenant {
            key_id: Some(_),
            ..
        }
    );
    let effective = effective_policy(state.supervisor.store().as_ref(), &tenant).await?;
    Ok(Json(OwnPolicyView {
        tenant,
        governed,
        effective,
    }))
}

/// The global policy: every tenant's defaults.
#[utoipa::path(get, path = "/v1/admin/policy", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The global policy", body = PolicyView),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
    ))]
pub async fn show_global_policy(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<PolicyView>, ApiError> {
    let policy = state.supervisor.store().get_policy(Scope::Global).await?;
    Ok(Json(PolicyView {
        scope: "global".into(),
        policy: policy.unwrap_or_default(),
        effective: None,
    }))
}

/// Replaces the global policy.
#[utoipa::path(put, path = "/v1/admin/policy", tag = "admin", security(("bearer" = [])),
    request_body(content = PolicySchema, content_type = "application/json"),
    responses(
        (status = 200, description = "The policy stored", body = PolicyView),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 422, description = "A value breaks a rule", body = ErrorBody),
    ))]
pub async fn set_global_policy(
    State(state): State<AppState>,
    Admin(caller): Admin,
    JsonBody(policy): JsonBody<Policy>,
) -> Result<Json<PolicyView>, ApiError> {
    store_policy(&state, &caller, Scope::Global, &policy).await?;
    Ok(Json(PolicyView {
        scope: "global".into(),
        policy,
        effective: None,
    }))
}

/// A tenant's overrides and the policy it runs under.
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant}/policy", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant's policy", body = PolicyView),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
pub async fn show_tenant_policy(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<PolicyView>, ApiError> {
    tenant_view(&state, &tenant).await.map(Json)
}

/// Replaces a tenant's overrides.
#[utoipa::path(put, path = "/v1/admin/tenants/{tenant}/policy", tag = "admin", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "Tenant name")),
    request_body(content = PolicySchema, content_type = "application/json"),
    responses(
        (status = 200, description = "The tenant's policy, stored", body = PolicyView),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 422, description = "A value breaks a rule", body = ErrorBody),
    ))]
pub async fn set_tenant_policy(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(policy): JsonBody<Policy>,
) -> Result<Json<PolicyView>, ApiError> {
    let store = state.supervisor.store();
    if store.get_tenant(&tenant).await?.is_none() {
        return Err(tenant_not_found(&tenant));
    }
    store_policy(&state, &caller, Scope::Tenant(&tenant), &policy).await?;
    tenant_view(&state, &tenant).await.map(Json)
}

async fn tenant_view(state: &AppState, tenant: &str) -> Result<PolicyView, ApiError> {
    let store = state.supervisor.store();
    if store.get_tenant(tenant).await?.is_none() {
        return Err(tenant_not_found(tenant));
    }
    let own = store.get_policy(Scope::Tenant(tenant)).await?;
    Ok(PolicyView {
        scope: tenant.to_string(),
        policy: own.unwrap_or_default(),
        effective: Some(effective_policy(store.as_ref(), tenant).await?),
    })
}

/// Validates, stores and audits one scope's policy.
async fn store_policy(
    state: &AppState,
    caller: &Caller,
    scope: Scope<'_>,
    policy: &Policy,
) -> Result<(), ApiError> {
    policy.validate().map_err(|invalid| ApiError::Invalid {
        field: invalid.field.to_string(),
        rule: invalid.rule,
    })?;
    state.supervisor.store().put_policy(scope, policy).await?;
    let mut entry = caller
        .audit("policy.update")
        .target(scope.key())
        .detail(serde_json::to_value(policy).unwrap_or_default());
    if let Scope::Tenant(tenant) = scope {
        entry = entry.for_tenant(tenant);
    }
    audit(state, &entry).await;
    Ok(())
}
