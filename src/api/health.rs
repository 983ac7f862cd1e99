//! Probes for orchestrators: `/healthz` (the process answers) and `/readyz`
//! (it can do work: database and Docker engine reachable, not shutting down),
//! and `/metrics` for Prometheus.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;

/// The probe routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Metrics in the Prometheus text format (with the admin credential; open in the loopback mode without one)", content_type = "text/plain"),
        (status = 401, description = "No or an invalid credential", body = super::error::ErrorBody),
        (status = 403, description = "Not the admin credential, or none is configured", body = super::error::ErrorBody),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    _reader: super::auth::MetricsReader,
) -> Result<impl axum::response::IntoResponse, super::error::ApiError> {
    let supervisor = &state.supervisor;
    let counts = supervisor
        .store()
        .counts_by_tenant()
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "metrics: cannot count executions");
            Vec::new()
        });
    let mut gauges = super::scrape::gauges(
        counts,
        supervisor.running() as u64,
        supervisor.hub().channels() as u64,
    );
    gauges.event_streams = state.streams.open_count() as u64;
    gauges.event_stream_bytes = state.streams.held_bytes() as u64;
    gauges.claiming_paused_here = supervisor.paused_here();
    gauges.claiming_paused_cluster = match supervisor.store().claiming_pause().await {
        Ok(pause) => Some(pause.is_some()),
        Err(error) => {
            tracing::warn!(%error, "metrics: cannot read the claiming pause");
            None
        }
    };
    let text = crate::metrics::global()
        .render(&gauges)
        .map_err(|error| super::error::ApiError::Internal(error.to_string()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    ))
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        reason: None,
    })
}

/// The supervisor can take work: its database and Docker engine answer and it
/// is not shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready, with the reason", body = Health),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let unavailable = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                reason: Some(reason),
            }),
        )
    };
    if !state.supervisor.accepting() {
        return unavailable("shutting down".into());
    }
    match state.supervisor.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ready",
                reason: None,
            }),
        ),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            unavailable(reason)
        }
    }
}
