//! `GET /v1/executions/{id}/events`: the event log as Server-Sent Events,
//! resumable with `Last-Event-ID` (or `?after=N`).
//!
//! Each event is `id: <seq>`, `event: <type>`, `data: <the event as JSON>`. A
//! reader that fell behind the live stream gets `event: lagged` with
//! `data: {"missed":N}` (no id) and then exactly what it missed. The stream
//! ends after the final status event, at once for an execution that is already
//! over, and when the server shuts down.

use std::convert::Infallible;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use tokio::sync::mpsc;

use super::auth::Tenant;
use super::error::{ApiError, ErrorBody};
use super::extract::{PathParams, QueryParams, resume_point};
use super::feed::{Feed, Item};
use super::state::AppState;
use super::stream_budget::STREAM_BYTES;

/// Items between a feed and its HTTP response: 64 at most, and no more than
/// the stream's byte budget ([`STREAM_BYTES`]) of events.
const BUFFER: usize = 64;

/// The event routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/executions/{id}/events", get(events))
}

/// The execution's events as Server-Sent Events, from the start or after the
/// last one seen, then live until the final status.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/events",
    tag = "executions",
    params(
        ("id" = String, Path, description = "Execution id"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = r"^\s*[0-9]{0,19}\s*$", description = "Resume after this event: its `seq`, a non-negative integer (sent by reconnecting SSE clients; wins over `after`)"),
        ("after" = Option<u64>, Query, maximum = 9223372036854775807_u64, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "A stream of `id: <seq>` / `event: <type>` / `data: <Event JSON>` messages; \
            `event: lagged` with `data: {\"missed\":N}` when the reader fell behind (what it missed follows). \
            Keep-alive comments every 15 s.",
            content_type = "text/event-stream", body = super::schemas::EventSchema),
        (status = 400, description = "Invalid `Last-Event-ID` or `after`", body = ErrorBody),
        (status = 404, description = "No such execution", body = ErrorBody),
        (status = 429, description = "The tenant has its most event streams open (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "The server has its most event streams open, or is shutting down (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    mut query: QueryParams,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = resume_point(&headers, &mut query)?;
    let record = super::find(&state, &tenant, &id).await?;
    let slot = state
        .streams
        .open(&tenant)
        .map_err(ApiError::TooManyStreams)?;
    let budget = state.streams.budget(STREAM_BYTES);
    let hub = state.supervisor.hub().clone();
    // Subscribe before reading the store, so no event can fall between the two.
    let live = (!record.status.is_final()).then(|| hub.subscribe(&id));
    let feed = Feed {
        store: state.supervisor.store().clone(),
        hub,
        execution: id,
        tenant,
        poll_interval: state.config.poll_interval,
        stop: state.stop.clone(),
        budget: budget.clone(),
    };
    let (out, items) = mpsc::channel(BUFFER);
    tokio::spawn(feed.run(after, live, out));
    // The slot is held as long as the response's stream lives.
    let stream = futures::stream::unfold(
        (items, budget, slot),
        |(mut items, budget, slot)| async move {
            let item = items.recv().await?;
            let (message, size) = to_sse(item);
            budget.give(size);
            Some((Ok(message), (items, budget, slot)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(state.config.keep_alive)))
}

/// The SSE message for an item, and the bytes of budget its event held.
fn to_sse(item: Item) -> (SseEvent, usize) {
    match item {
        Item::Event(wire) => {
            let size = wire.json.len();
            let message = SseEvent::default()
                .id(wire.seq.to_string())
                .event(wire.kind)
                .data(wire.json);
            (message, size)
        }
        Item::Lagged(missed) => (
            SseEvent::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}")),
            0,
        ),
    }
}
