//! `/v1/webhooks`: a tenant's status webhooks — its endpoints, their
//! deliveries (every attempt's outcome), and delivering one again by hand.
//! Deliveries are signed (`agentd-webhook-signature`, see
//! [`crate::tenancy::sign_webhook`]) with the endpoint's secret, which is
//! sealed at rest and shown once, when agentd made it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Tenant};
use super::error::{ApiError, ErrorBody};
use super::executions::audit;
use super::extract::{JsonBody, PathParams, QueryParams, invalid_parameter};
use super::state::AppState;
use crate::tenancy::{
    DeliveryState, Location, Principal, SealedWebhook, Webhook, WebhookDelivery, WebhookEvent,
    locate,
};

/// Most endpoints one tenant may register (each event is written once per
/// endpoint, in the transaction that stores it).
pub const MAX_WEBHOOKS: usize = 20;

/// The webhook routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", post(create_webhook).get(list_webhooks))
        .route("/v1/webhooks/{webhook_id}", delete(delete_webhook))
        .route("/v1/webhooks/{webhook_id}/deliveries", get(list_deliveries))
        .route(
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            post(redeliver),
        )
}

/// An event type an endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookEvent)]
pub enum WebhookEventView {
    /// Every status change of an execution.
    Status,
    /// Every tool call an agent makes.
    ToolCall,
    /// Every model request through the gateway.
    ModelCall,
}

impl From<WebhookEventView> for WebhookEvent {
    fn from(view: WebhookEventView) -> Self {
        match view {
            WebhookEventView::Status => WebhookEvent::Status,
            WebhookEventView::ToolCall => WebhookEvent::ToolCall,
            WebhookEventView::ModelCall => WebhookEvent::ModelCall,
        }
    }
}

impl From<WebhookEvent> for WebhookEventView {
    fn from(event: WebhookEvent) -> Self {
        match event {
            WebhookEvent::Status => WebhookEventView::Status,
            WebhookEvent::ToolCall => WebhookEventView::ToolCall,
            WebhookEvent::ModelCall => WebhookEventView::ModelCall,
        }
    }
}

/// An endpoint to register.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: an `http` or `https` URL without user
    /// information, whose host resolves to public addresses (unless your
    /// policy allows private hosts).
    #[schema(
        example = "https://ci.example.org/agentd-hook",
        max_length = 2000,
        pattern = r"^[hH][tT][tT][pP][sS]?://[!-~]+$"
    )]
    pub url: String,
    /// The signing secret (16 to 256 printable ASCII characters, no spaces).
    /// Default: agentd makes one and shows it in this answer only.
    #[schema(pattern = r"^[!-~]{16,256}$")]
    pub secret: Option<String>,
    /// What it receives. Default: `["status"]`.
    #[schema(min_items = 1, max_items = 3)]
    pub events: Option<Vec<WebhookEventView>>,
}

/// An endpoint as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    /// Its id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// What it receives.
    pub events: Vec<WebhookEventView>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// The signing secret agentd made: in the answer that registered the
    /// endpoint only (absent when you gave one, and in listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        WebhookView {
            id: webhook.id,
            url: webhook.url,
            events: webhook.events.into_iter().map(Into::into).collect(),
            created_at: webhook.created_at,
            secret: None,
        }
    }
}

/// A tenant's endpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<WebhookView>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = WebhookDeliveryState)]
pub enum DeliveryStateView {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the most attempts (dead-lettered); redeliver by hand.
    Dead,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView {
    /// Its id: the `agentd-webhook-id` header, the same on every attempt.
    pub id: i64,
    pub webhook_id: String,
    pub execution_id: String,
    /// The event's number in the execution's event log.
    pub seq: u64,
    /// The event's type.
    pub event_type: String,
    pub state: DeliveryStateView,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// What went wrong last.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(delivery: WebhookDelivery) -> Self {
        DeliveryView {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            execution_id: delivery.execution_id,
            seq: delivery.seq,
            event_type: delivery.event_type,
            state: match delivery.state {
                DeliveryState::Pending => DeliveryStateView::Pending,
                DeliveryState::Delivered => DeliveryStateView::Delivered,
                DeliveryState::Dead => DeliveryStateView::Dead,
            },
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            last_status: delivery.last_status,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
            delivered_at: delivery.delivered_at,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

fn webhook_not_found() -> ApiError {
    ApiError::NotFound("no such webhook".into())
}

/// Checks an endpoint's URL; answers its host and port.
fn check_url(url: &str) -> Result<(String, u16), ApiError> {
    let rule = "must be an http or https URL of at most 2000 printable ASCII characters, \
                with a host and no user information";
    if url.len() > 2000 || !url.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(invalid("url", rule));
    }
    let parsed = url::Url::parse(url).map_err(|_| invalid("url", rule))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(invalid("url", rule));
    }
    match locate(url) {
        Location::Network { host, port, .. } if !host.is_empty() => Ok((host, port)),
        _ => Err(invalid("url", rule)),
    }
}

/// Registers an endpoint for your executions' events. Needs agentd's secret
/// key (the endpoint's secret is sealed with it).
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = NewWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered (with the secret agentd made, if it made one)", body = WebhookView),
        (status = 400, description = "Malformed JSON or a field of the wrong shape", body = ErrorBody),
        (status = 413, description = "Body larger than the limit", body = ErrorBody),
        (status = 415, description = "Body not declared as JSON", body = ErrorBody),
        (status = 409, description = "agentd has no secret key to seal the secret with, or the tenant has 20 webhooks", body = ErrorBody),
        (status = 422, description = "A field breaks its rule (a URL whose host is not public)", body = ErrorBody),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    JsonBody(new): JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let (host, port) = check_url(&new.url)?;
    if let Some(secret) = &new.secret
        && !((16..=256).contains(&secret.len())
            && secret.bytes().all(|b| (0x21..=0x7e).contains(&b)))
    {
        return Err(invalid(
            "secret",
            "must be 16 to 256 printable ASCII characters without spaces",
        ));
    }
    let mut events: Vec<WebhookEvent> = new
        .events
        .clone()
        .unwrap_or_else(|| vec![WebhookEventView::Status])
        .into_iter()
        .map(Into::into)
        .collect();
    if events.is_empty() || events.len() > 3 {
        return Err(invalid("events", "must list 1 to 3 event types"));
    }
    events.sort_by_key(|event| event.as_str());
    events.dedup();
    let operator = matches!(&caller.principal, Principal::Tenant { key_id: None, .. });
    if !operator {
        let store = state.supervisor.store();
        let policy =
            crate::supervisor::governance::effective_policy(store.as_ref(), &tenant).await?;
        if policy.sources.private_hosts != Some(true)
            && crate::git::reach::public_addresses(&host, port)
                .await
                .is_none()
        {
            // One answer for a private address and for no address: no oracle.
            return Err(invalid("url", "must name a host with public addresses"));
        }
    }
    let key = state.supervisor.secret_key().ok_or_else(|| {
        ApiError::Conflict(
            "agentd has no secret key (AGENTD_SECRET_KEY or --secret-key-file): webhooks \
             cannot be registered"
                .into(),
        )
    })?;
    let registered = state.supervisor.store().list_webhooks(&tenant).await?;
    if registered.len() >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict(format!(
            "a tenant has at most {MAX_WEBHOOKS} webhooks: delete one first"
        )));
    }
    let made = new.secret.is_none().then(|| {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    });
    let secret = new
        .secret
        .clone()
        .or_else(|| made.clone())
        .unwrap_or_default();
    let webhook = Webhook {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.clone(),
        url: new.url.clone(),
        events,
        operator,
        created_at: Utc::now(),
    };
    let sealed = SealedWebhook {
        sealed_secret: key.seal(secret.as_bytes(), &webhook.seal_binding()),
        key_fingerprint: key.fingerprint(),
        webhook: webhook.clone(),
    };
    state.supervisor.store().create_webhook(&sealed).await?;
    audit(
        &state,
        &caller
            .audit("webhook.create")
            .target(&webhook.id)
            .detail(serde_json::json!({"url": webhook.url})),
    )
    .await;
    let mut view = WebhookView::from(webhook);
    view.secret = made;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Your endpoints (never their secrets).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "The endpoints", body = WebhookList)))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<WebhookList>, ApiError> {
    let items = state.supervisor.store().list_webhooks(&tenant).await?;
    Ok(Json(WebhookList {
        items: items
            .into_iter()
            .map(|sealed| sealed.webhook.into())
            .collect(),
    }))
}

/// Deletes an endpoint and its deliveries.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .supervisor
        .store()
        .delete_webhook(&tenant, &id)
        .await?
    {
        return Err(webhook_not_found());
    }
    audit(&state, &caller.audit("webhook.delete").target(id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first, with each one's attempts.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(
        ("webhook_id" = String, Path, description = "The endpoint's id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1–200. Default: 50"),
        ("cursor" = Option<String>, Query, pattern = "^[0-9]{1,18}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page", body = DeliveryPage),
        (status = 400, description = "A parameter is invalid or unknown", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    PathParams(id): PathParams<String>,
    mut query: QueryParams,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = query.parse::<u32>("limit", "a number")?.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid_parameter("limit", "must be between 1 and 200"));
    }
    let cursor = query
        .take_given("cursor")?
        .map(|cursor| {
            (cursor.len() <= 18 && cursor.bytes().all(|b| b.is_ascii_digit()))
                .then(|| cursor.parse::<i64>().ok())
                .flatten()
                .ok_or_else(|| invalid_parameter("cursor", "not a cursor this server handed out"))
        })
        .transpose()?;
    query.finish()?;
    let store = state.supervisor.store();
    let known = store
        .list_webhooks(&tenant)
        .await?
        .iter()
        .any(|sealed| sealed.webhook.id == id);
    if !known {
        return Err(webhook_not_found());
    }
    let page = store
        .webhook_deliveries(&tenant, &id, cursor, limit)
        .await?;
    Ok(Json(DeliveryPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Makes a delivery due again now, its attempts counted from zero.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(
        ("webhook_id" = String, Path, description = "The endpoint's id"),
        ("delivery_id" = i64, Path, description = "The delivery's id"),
    ),
    responses(
        (status = 200, description = "Due again", body = DeliveryView),
        (status = 400, description = "The delivery id is not a number", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    ))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Tenant(tenant): Tenant,
    PathParams((webhook, delivery)): PathParams<(String, i64)>,
) -> Result<Json<DeliveryView>, ApiError> {
    let store = state.supervisor.store();
    let found = store
        .redeliver(&tenant, &webhook, delivery)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such delivery".into()))?;
    audit(
        &state,
        &caller
            .audit("webhook.redeliver")
            .target(delivery.to_string()),
    )
    .await;
    Ok(Json(found.into()))
}
