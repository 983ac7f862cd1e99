//! The HTTP API behind `agentd serve`: JSON under `/v1`, Server-Sent Events for
//! an execution's log, downloads of its results, probes, and an OpenAPI document.
//!
//! This room is the only one that knows HTTP status codes ([`ApiError`]). The
//! server takes a listener and a shutdown future, so tests bind `127.0.0.1:0`;
//! event streams end when the supervisor or the server shuts down, so a
//! graceful shutdown never waits on a watching client.

pub mod admin;
mod auth;
mod body_shape;
pub mod claiming;
pub mod conversations;
pub mod credentials;
mod error;
mod events;
mod executions;
mod extract;
mod feed;
mod files;
mod health;
mod layers;
mod messages;
mod openapi;
pub mod policy;
mod policy_schema;
mod range;
pub mod schemas;
mod scrape;
mod state;
mod stream_budget;
mod unreadable;
mod view;
pub mod webhooks;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;

use crate::execution::ExecutionRecord;
use crate::supervisor::Supervisor;
use stream_budget::StreamSlots;

pub use auth::{AuthConfig, Authenticator, Caller, KEY_CACHE_TTL, Tenant};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use executions::{DEFAULT_PAGE_SIZE, IDEMPOTENT_REPLAYED, MAX_PAGE_SIZE};
pub use extract::{IDEMPOTENCY_KEY, LAST_EVENT_ID, MAX_IDEMPOTENCY_KEY};
pub use feed::{Feed, Item, Wire};
pub use openapi::ApiDoc;
pub use state::{ApiConfig, AppState, DEFAULT_MAX_BODY_BYTES};
pub use stream_budget::{ByteBudget, STREAM_BYTES, StreamCaps};
pub use view::{
    ArtifactEntry, ArtifactList, ExecutionLinks, ExecutionList, ExecutionSchema, ExecutionView,
};

/// Every route, with default settings; event streams end when the supervisor
/// shuts down.
pub fn router(supervisor: Arc<Supervisor>) -> Router {
    router_with(supervisor, ApiConfig::default())
}

/// Every route, with `config`.
pub fn router_with(supervisor: Arc<Supervisor>, config: ApiConfig) -> Router {
    let stop = supervisor.shutting_down();
    app(AppState {
        supervisor,
        auth: Arc::new(Authenticator::new(config.auth.clone())),
        streams: Arc::new(StreamSlots::new(config.stream_caps)),
        config,
        stop,
    })
}

/// Serves the API on `listener` until `shutdown` resolves, then stops
/// gracefully: in-flight requests finish, event streams end at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    supervisor: Arc<Supervisor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, supervisor, ApiConfig::default(), shutdown).await
}

/// [`serve`] with `config`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    supervisor: Arc<Supervisor>,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stop = supervisor.shutting_down().child_token();
    let app = app(AppState {
        supervisor,
        auth: Arc::new(Authenticator::new(config.auth.clone())),
        streams: Arc::new(StreamSlots::new(config.stream_caps)),
        config,
        stop: stop.clone(),
    });
    // tap_io only to reach axum's peer-address support for any listener.
    axum::serve(
        unreadable::Listener(listener).tap_io(|_| ()),
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        stop.cancel();
    })
    .await
}

fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    layers::wrap(
        Router::new()
            .merge(executions::router())
            .merge(conversations::router())
            .merge(messages::router())
            .merge(admin::router())
            .merge(credentials::router())
            .merge(webhooks::router())
            .merge(claiming::router())
            .merge(policy::router())
            .merge(events::router())
            .merge(files::router())
            .merge(health::router())
            .merge(openapi::router()),
        limit,
    )
    .with_state(state)
}

/// The execution `id` of `tenant`, or a 404.
async fn find(state: &AppState, tenant: &str, id: &str) -> Result<ExecutionRecord, ApiError> {
    state
        .supervisor
        .store()
        .get_execution(Some(tenant), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("execution {id} not found")))
}
