//! `/v1/executions`: submit, look up, list and cancel executions.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::{Caller, Tenant};
use super::error::{ApiError, ErrorBody};
use super::extract::{IdempotencyKey, JsonBody, PathParams, QueryParams, invalid_parameter};
use super::state::AppState;
use super::view::{ExecutionList, ExecutionSchema, ExecutionView};
use crate::execution::{ExecutionRequest, Status};
use crate::git::RepoSource;
use crate::store::ListQuery;

/// Set (to `true`) on a create response that returns the execution an earlier
/// request with the same `Idempotency-Key` created.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Page size when `limit` is not given: 20.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page: 200.
pub const MAX_PAGE_SIZE: u32 = 200;

/// The execution routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/executions", post(create).get(list))
        .route("/v1/executions/{id}", get(show))
        .route("/v1/executions/{id}/cancel", post(cancel))
        .route("/v1/executions/{id}/deliver", post(deliver))
}

/// Queues an execution.
///
/// With an `Idempotency-Key`, a retried request returns the execution the first
/// one created (header `idempotent-replayed: true`); the same key with a
/// different request is refused with 422.
#[utoipa::path(
    post,
    path = "/v1/executions",
    tag = "executions",
    request_body(content = super::schemas::ExecutionRequestSchema, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            pattern = r"^[\x21-\x7e]+$",
            description = "1–255 visible ASCII characters; makes the request safe to retry"),
    ),
    responses(
        (status = 202, description = "Accepted and queued (or replayed)", body = ExecutionSchema,
            headers(
                ("location" = String, description = "The execution's URL"),
                ("idempotent-replayed" = String, description = "`true` when an earlier request created it"),
            ),
            links(
                ("GetExecution" = (operation_id = "show", parameters(("id" = "$response.body#/id")), description = "The execution")),
                ("CancelExecution" = (operation_id = "cancel", parameters(("id" = "$response.body#/id")), description = "Cancel it")),
                ("ExecutionEvents" = (operation_id = "events", parameters(("id" = "$response.body#/id")), description = "Its events")),
                ("ExecutionDiff" = (operation_id = "diff", parameters(("id" = "$response.body#/id")), description = "Its diff")),
                ("ExecutionBundle" = (operation_id = "bundle", parameters(("id" = "$response.body#/id")), description = "Its bundle")),
                ("ExecutionArtifacts" = (operation_id = "artifacts", parameters(("id" = "$response.body#/id")), description = "Its artifacts")),
                ("ExecutionArtifact" = (operation_id = "artifact", parameters(("id" = "$response.body#/id")), description = "One of its artifacts")),
                ("FollowUp" = (operation_id = "follow_up", parameters(("id" = "$response.body#/id")), description = "The next step of its conversation")),
                ("Conversation" = (operation_id = "conversation", parameters(("id" = "$response.body#/conversation_id")), description = "Its conversation")),
                ("Message" = (operation_id = "message", parameters(("id" = "$response.body#/id")), description = "A message to its agent while it runs")),
                ("Interrupt" = (operation_id = "interrupt", parameters(("id" = "$response.body#/id")), description = "Stop its agent's current turn")),
            )),
        (status = 400, description = "Malformed JSON, a field of the wrong shape, or a bad header", body = ErrorBody),
        (status = 413, description = "Body larger than the limit (1 MiB)", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 503, description = "agentd is shutting down", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(_): Tenant,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<ExecutionRequest>,
) -> Result<Response, ApiError> {
    let created = match state
        .supervisor
        .submit(&caller.principal, request, key)
        .await
    {
        Ok(created) => created,
        Err(error) => {
            let error = ApiError::from(error);
            let refused = match &error {
                ApiError::Invalid { field, .. } => Some(format!("invalid_field:{field}")),
                ApiError::PolicyRefused(refusal) => {
                    crate::metrics::global().policy_refused(refusal.rule);
                    Some(refusal.rule.to_string())
                }
                _ => None,
            };
            if let Some(rule) = refused {
                let mut entry = caller.audit("execution.create").refused(rule);
                if let ApiError::PolicyRefused(refusal) = &error {
                    entry = entry.detail(serde_json::json!({
                        "field": refusal.field,
                        "asked": refusal.asked,
                        "allowed": refusal.allowed,
                    }));
                }
                audit(&state, &entry).await;
            }
            return Err(error);
        }
    };
    if !created.existing {
        let entry = caller
            .audit("execution.create")
            .target(created.record.id.clone());
        audit(&state, &entry).await;
    }
    accepted(created)
}

/// The 202 answer to a request that queued an execution (or found the one
/// its idempotency key made): the execution, its URL in `location`, and
/// `idempotent-replayed: true` when it was made before.
pub(super) fn accepted(created: crate::store::Created) -> Result<Response, ApiError> {
    let execution = ExecutionView::from(created.record);
    let location = HeaderValue::from_str(&execution.links.self_).map_err(ApiError::internal)?;
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(execution),
    )
        .into_response();
    if created.existing {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// One execution.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionSchema),
        (status = 404, description = "No such execution", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    let record = super::find(&state, &tenant, &id).await?;
    let children = state.supervisor.store().children(&record.id).await?;
    let mut view = ExecutionView::from(record);
    view.children = Some(children);
    Ok(Json(view))
}

/// Executions, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/executions",
    tag = "executions",
    params(
        ("status" = Option<super::schemas::StatusSchema>, Query, description = "Only executions in this status"),
        ("repo" = Option<String>, Query, description = "Only executions of this repository (as the execution's `repo` shows it)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1–200. Default: 20"),
        ("cursor" = Option<String>, Query, pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = ExecutionList),
        (status = 400, description = "A parameter is invalid or unknown", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    mut query: QueryParams,
) -> Result<Response, ApiError> {
    let status = query
        .take_given("status")?
        .map(|name| {
            name.parse::<Status>().map_err(|_| {
                let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                invalid_parameter(
                    "status",
                    &format!("`{name}` is not a status ({})", known.join(", ")),
                )
            })
        })
        .transpose()?;
    let repo = query.take("repo")?.map(|repo| {
        RepoSource::parse(&repo)
            .map(|source| source.location().to_string())
            .unwrap_or(repo)
    });
    let limit = query
        .parse::<u32>("limit", "a number")?
        .unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(invalid_parameter(
            "limit",
            &format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let cursor = query.take_given("cursor")?;
    query.finish()?;
    let page = state
        .supervisor
        .store()
        .list_execution_page(&ListQuery {
            tenant_id: Some(tenant),
            status,
            repo,
            limit,
            cursor,
        })
        .await?;
    Ok(super::view::execution_list(page))
}

/// Cancels an execution: a queued one never starts, a running one is stopped
/// within moments. Idempotent: cancelling a final execution returns it unchanged.
/// Always 202, since the execution reaches `cancelled` asynchronously.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/cancel",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 202, description = "Cancellation requested (or the execution was already final)", body = ExecutionSchema),
        (status = 404, description = "No such execution", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<ExecutionView>), ApiError> {
    let record = state.supervisor.cancel(&tenant, &id).await?;
    audit(&state, &caller.audit("execution.cancel").target(id)).await;
    Ok((StatusCode::ACCEPTED, Json(record.into())))
}

/// Delivers a finished execution's branch to its remote again, now: after a
/// delivery that failed (unreachable, a credential fixed since), or for an
/// execution that did not ask for `push`. Answers once the delivery ended;
/// the execution's `delivery` says how. Never forced.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/deliver",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution with its new delivery", body = ExecutionSchema),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 409, description = "Not finished yet, or no branch to deliver", body = ErrorBody),
    )
)]
pub async fn deliver(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    let record = state.supervisor.redeliver(&tenant, &id).await?;
    let status = record
        .delivery
        .as_ref()
        .map_or("none", |delivery| delivery.status.as_str());
    audit(
        &state,
        &caller
            .audit("execution.deliver")
            .target(id)
            .detail(serde_json::json!({"status": status})),
    )
    .await;
    Ok(Json(record.into()))
}

/// Writes to the audit log; a failure is logged, never the request's.
pub(super) async fn audit(state: &AppState, entry: &crate::tenancy::AuditEntry) {
    if let Err(error) = state.supervisor.store().audit(entry).await {
        tracing::warn!(%error, "cannot write the audit log");
    }
}
