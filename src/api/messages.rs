//! Talking to a running agent (streaming input): `POST …/messages` and
//! `POST …/interrupt`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Tenant};
use super::error::{ApiError, ErrorBody};
use super::executions::audit;
use super::extract::{JsonBody, PathParams};
use super::state::AppState;
use crate::execution::InputKind;
use crate::tenancy::Principal;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/executions/{id}/messages", post(message))
        .route("/v1/executions/{id}/interrupt", post(interrupt))
}

/// A message to the running agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// What to tell the agent (1 byte to 100 KiB, no NUL).
    #[schema(
        example = "Stop: use the existing parser in src/parse.rs",
        min_length = 1,
        max_length = 102400,
        pattern = r"^(?=[\s\S]*\S)[^\x00]*$"
    )]
    pub text: String,
}

/// An input accepted for the running agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InputAccepted {
    /// The execution.
    pub execution_id: String,
    /// The input's number within the execution (inputs are delivered in
    /// this order).
    pub seq: u64,
    /// `message` or `interrupt`.
    pub kind: String,
}

fn sender(caller: &Caller) -> String {
    match &caller.principal {
        Principal::Tenant {
            key_id: Some(key), ..
        } => key.clone(),
        _ => "operator".into(),
    }
}

/// Sends a message to the running agent of an execution started with
/// `streaming_input`: it reaches the agent between its turns (or is folded
/// into the current one) and appears in the event stream as `user_message`
/// with its sender. Accepted by any replica; delivered in order.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/messages",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    request_body(content = NewMessage, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted; delivered to the agent in order", body = InputAccepted),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 409, description = "Not in streaming-input mode, or ended", body = ErrorBody),
        (status = 413, description = "Body larger than the limit (1 MiB)", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 422, description = "`text` empty, too long, or holding NUL", body = ErrorBody),
    )
)]
pub async fn message(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<InputAccepted>), ApiError> {
    let seq = state
        .supervisor
        .say(
            &tenant,
            &id,
            InputKind::Message,
            &body.text,
            &sender(&caller),
        )
        .await?;
    audit(
        &state,
        &caller.audit("execution.message").target(id.clone()),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(InputAccepted {
            execution_id: id,
            seq,
            kind: InputKind::Message.as_str().into(),
        }),
    ))
}

/// Asks the running agent of an execution started with `streaming_input` to
/// stop its current turn, without cancelling the execution: its input stays
/// open a minute for a redirecting message. An `interrupt_requested` event
/// records it.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/interrupt",
    tag = "executions",
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 202, description = "Accepted; delivered to the agent in order", body = InputAccepted),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 409, description = "Not in streaming-input mode, or ended", body = ErrorBody),
    )
)]
pub async fn interrupt(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<InputAccepted>), ApiError> {
    let seq = state
        .supervisor
        .say(&tenant, &id, InputKind::Interrupt, "", &sender(&caller))
        .await?;
    audit(
        &state,
        &caller.audit("execution.interrupt").target(id.clone()),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(InputAccepted {
            execution_id: id,
            seq,
            kind: InputKind::Interrupt.as_str().into(),
        }),
    ))
}
