//! `/v1/admin/claiming`: pause and resume the claiming of queued work, on the
//! replica that answers or on every replica, for maintenance. Running
//! executions carry on either way; submissions are still accepted and wait in
//! the queue.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::executions::audit;
use super::extract::JsonBody;
use super::state::AppState;

/// The claiming routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/claiming", get(show).put(change))
}

/// Whether queued work is claimed, on this replica and on every replica.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimingView {
    /// The replica that answered.
    pub replica: ReplicaClaiming,
    /// Every replica sharing the database.
    pub cluster: ClusterClaiming,
}

/// Claiming on the replica that answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplicaClaiming {
    /// The replica's supervisor id (owner of the executions it runs).
    pub id: String,
    /// Whether an admin paused claiming here.
    pub paused: bool,
    /// Executions running here now.
    pub running: u64,
    /// The most it runs at once.
    pub max_concurrent: u64,
}

/// Claiming on every replica.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterClaiming {
    /// Whether an admin paused claiming everywhere.
    pub paused: bool,
    /// Since when.
    pub since: Option<DateTime<Utc>>,
    /// By whom.
    pub by: Option<String>,
}

/// Where a pause applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimingScope {
    /// The replica that answers (a load balancer picks one: address the
    /// replica itself, as a drain before it stops does).
    #[default]
    Replica,
    /// Every replica sharing the database.
    Cluster,
}

/// Pause or resume claiming.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimingChange {
    /// `true` pauses, `false` resumes.
    pub paused: bool,
    /// Where. Default: `replica`.
    #[serde(default)]
    pub scope: ClaimingScope,
}

async fn view(state: &AppState) -> Result<ClaimingView, ApiError> {
    let supervisor = &state.supervisor;
    let pause = supervisor.store().claiming_pause().await?;
    Ok(ClaimingView {
        replica: ReplicaClaiming {
            id: supervisor.replica_id().to_string(),
            paused: supervisor.paused_here(),
            running: supervisor.running() as u64,
            max_concurrent: supervisor.max_concurrent() as u64,
        },
        cluster: ClusterClaiming {
            paused: pause.is_some(),
            since: pause.as_ref().map(|p| p.since),
            by: pause.map(|p| p.by),
        },
    })
}

/// Whether queued work is claimed here and everywhere.
#[utoipa::path(get, path = "/v1/admin/claiming", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Claiming here and everywhere", body = ClaimingView),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Admin(_caller): Admin,
) -> Result<Json<ClaimingView>, ApiError> {
    Ok(Json(view(&state).await?))
}

/// Pauses or resumes claiming, on this replica or everywhere. Paused, no
/// queued execution is started (and a paused replica takes over no abandoned
/// one); running executions carry on and new ones are still accepted into
/// the queue. Idempotent; audited.
#[utoipa::path(put, path = "/v1/admin/claiming", tag = "admin", security(("bearer" = [])),
    request_body(content = ClaimingChange, content_type = "application/json"),
    responses(
        (status = 200, description = "Claiming after the change", body = ClaimingView),
        (status = 400, description = "Malformed JSON or a field of the wrong shape", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 401, description = "No or an invalid credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
    ))]
pub async fn change(
    State(state): State<AppState>,
    Admin(caller): Admin,
    JsonBody(change): JsonBody<ClaimingChange>,
) -> Result<Json<ClaimingView>, ApiError> {
    let supervisor = &state.supervisor;
    match (change.scope, change.paused) {
        (ClaimingScope::Replica, paused) => supervisor.pause_here(paused).await,
        (ClaimingScope::Cluster, true) => {
            let by = caller
                .peer
                .as_deref()
                .map_or_else(|| "admin".to_string(), |peer| format!("admin from {peer}"));
            supervisor.store().pause_claiming(&by).await?;
        }
        (ClaimingScope::Cluster, false) => {
            supervisor.store().resume_claiming().await?;
            supervisor.wake();
        }
    }
    let (action, target) = match (change.paused, change.scope) {
        (true, ClaimingScope::Replica) => ("claiming.pause", supervisor.replica_id()),
        (false, ClaimingScope::Replica) => ("claiming.resume", supervisor.replica_id()),
        (true, ClaimingScope::Cluster) => ("claiming.pause", "cluster"),
        (false, ClaimingScope::Cluster) => ("claiming.resume", "cluster"),
    };
    let target = target.to_string();
    audit(
        &state,
        &caller
            .audit(action)
            .target(&target)
            .detail(json!({"scope": change.scope})),
    )
    .await;
    Ok(Json(view(&state).await?))
}
