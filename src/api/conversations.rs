//! Conversations: `POST /v1/executions/{id}/follow-ups` (the next step,
//! resuming the agent's session on the parent's branch) and
//! `GET /v1/conversations/{id}` (the thread in order, with its totals).

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Tenant};
use super::error::{ApiError, ErrorBody};
use super::executions::{accepted, audit};
use super::extract::{IdempotencyKey, JsonBody, PathParams};
use super::schemas::{StatusSchema, UsageSchema};
use super::state::AppState;
use super::view::ExecutionSchema;
use crate::execution::{
    EXECUTION_PATH, ExecutionRecord, FollowUpRequest, Status, Usage, prompt_preview,
};

/// The conversation routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/executions/{id}/follow-ups", post(follow_up))
        .route("/v1/conversations/{id}", get(conversation))
}

/// Queues the next step of an execution's conversation: a new execution that
/// starts from the parent's last commit on its branch (the first follow-up
/// of a parent continues the parent's branch, later ones get `{branch}-2`,
/// …) and resumes the agent's session, so the model sees the whole earlier
/// conversation. A follow-up of a running parent waits in the queue until
/// the parent is final. Fields left out keep the parent's values.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/follow-ups",
    tag = "executions",
    params(
        ("id" = String, Path, description = "The execution to follow up"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            pattern = r"^[\x21-\x7e]+$",
            description = "1–255 visible ASCII characters; makes the request safe to retry"),
    ),
    request_body(content = super::schemas::FollowUpRequestSchema, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted and queued (or replayed)", body = ExecutionSchema,
            headers(
                ("location" = String, description = "The follow-up's URL"),
                ("idempotent-replayed" = String, description = "`true` when an earlier request created it"),
            )),
        (status = 400, description = "Malformed JSON, a field of the wrong shape, or a bad header", body = ErrorBody),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 413, description = "Body larger than the limit (1 MiB)", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 503, description = "agentd is shutting down", body = ErrorBody),
    )
)]
pub async fn follow_up(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(_): Tenant,
    PathParams(id): PathParams<String>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<FollowUpRequest>,
) -> Result<Response, ApiError> {
    let created = state
        .supervisor
        .follow_up(&caller.principal, &id, request, key)
        .await?;
    if !created.existing {
        let entry = caller
            .audit("execution.follow_up")
            .target(created.record.id.clone())
            .detail(serde_json::json!({"parent_id": id}));
        audit(&state, &entry).await;
    }
    accepted(created)
}

/// A conversation: its executions in the order they were made (a tree when
/// a step was followed up more than once: each step names its parent), and
/// its totals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationView {
    /// The conversation's id: its first execution's.
    pub id: String,
    /// Every step, oldest first.
    pub steps: Vec<ConversationStep>,
    /// The whole conversation's figures.
    pub totals: ConversationTotals,
}

/// One step of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationStep {
    /// The execution's id.
    pub id: String,
    /// The step it follows up (absent on the first).
    pub parent_id: Option<String>,
    /// Where it is in its life cycle.
    #[schema(value_type = StatusSchema)]
    pub status: Status,
    /// Why it did not succeed, once final.
    pub reason: Option<String>,
    /// The start of its prompt.
    pub prompt_preview: String,
    /// The branch holding its work.
    pub branch: String,
    /// The commit holding its work.
    pub head_commit: Option<String>,
    /// Model answers, as the gateway observed them.
    pub num_turns: u64,
    /// Tokens, as the gateway metered them.
    #[schema(value_type = UsageSchema)]
    pub usage: Usage,
    /// Cost in US dollars, as the gateway priced it.
    pub cost_usd: Option<f64>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it reached its final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// The execution's URL.
    pub link: String,
}

/// A conversation's figures, summed over its steps.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConversationTotals {
    /// Steps in all.
    pub steps: u64,
    /// Steps not yet final.
    pub unfinished: u64,
    /// Model answers.
    pub num_turns: u64,
    /// Tokens.
    #[schema(value_type = UsageSchema)]
    pub usage: Usage,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

impl ConversationView {
    /// The view of conversation `id` made of `records` (oldest first).
    pub fn of(id: &str, records: &[ExecutionRecord]) -> Self {
        let mut totals = ConversationTotals::default();
        let steps = records
            .iter()
            .map(|record| {
                totals.steps += 1;
                totals.unfinished += u64::from(!record.status.is_final());
                totals.num_turns += record.num_turns;
                totals.usage.add(&record.usage);
                totals.cost_usd += record.cost_usd.unwrap_or(0.0);
                ConversationStep {
                    id: record.id.clone(),
                    parent_id: record.parent_id.clone(),
                    status: record.status,
                    reason: record.reason.clone(),
                    prompt_preview: prompt_preview(&record.request.prompt),
                    branch: record.branch.clone(),
                    head_commit: record.head_commit.clone(),
                    num_turns: record.num_turns,
                    usage: record.usage,
                    cost_usd: record.cost_usd,
                    created_at: record.created_at,
                    finished_at: record.finished_at,
                    link: format!("{EXECUTION_PATH}{}", record.id),
                }
            })
            .collect();
        ConversationView {
            id: id.to_string(),
            steps,
            totals,
        }
    }
}

/// A conversation of the caller's tenant: every step in order with its
/// status, usage and cost, and the totals. Any step's `conversation_id`
/// names it.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}",
    tag = "executions",
    params(("id" = String, Path, description = "The conversation's id (its first execution's)")),
    responses(
        (status = 200, description = "The conversation", body = ConversationView),
        (status = 404, description = "No such conversation", body = ErrorBody),
    )
)]
pub async fn conversation(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<Json<ConversationView>, ApiError> {
    let records = state.supervisor.store().conversation(&tenant, &id).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!("conversation {id} not found")));
    }
    Ok(Json(ConversationView::of(&id, &records)))
}
