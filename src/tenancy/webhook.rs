//! Status webhooks: a tenant's endpoints, what each receives, how a delivery
//! is signed, and a delivery's state in the outbox.
//!
//! A delivery is POSTed as JSON with three headers: `agentd-webhook-id` (the
//! delivery's id: the same on every retry, so receivers de-duplicate),
//! `agentd-webhook-timestamp` (Unix seconds when this attempt was signed) and
//! `agentd-webhook-signature` (`v1=` and the hex HMAC-SHA256, keyed with the
//! endpoint's secret, of `{timestamp}.{body}`). A receiver recomputes the
//! signature, compares in constant time, and refuses a timestamp too old (a
//! replay).

use chrono::{DateTime, Utc};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// What a webhook can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// Every status change of an execution (the default).
    Status,
    /// Every tool call the agent makes.
    ToolCall,
    /// Every model request through the gateway.
    ModelCall,
}

impl WebhookEvent {
    /// The event type's name (an event's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Status => "status",
            WebhookEvent::ToolCall => "tool_call",
            WebhookEvent::ModelCall => "model_call",
        }
    }

    /// The event type a name is.
    pub fn parse(text: &str) -> Option<WebhookEvent> {
        [
            WebhookEvent::Status,
            WebhookEvent::ToolCall,
            WebhookEvent::ModelCall,
        ]
        .into_iter()
        .find(|event| event.as_str() == text)
    }
}

/// An endpoint as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its id (a UUID v7).
    pub id: String,
    /// The tenant whose executions it hears about.
    pub tenant_id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives.
    pub events: Vec<WebhookEvent>,
    /// Registered by the local operator (no policy governs it): it may be on
    /// a private address. Otherwise the tenant's policy decides.
    pub operator: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    /// What its sealed secret is bound to.
    pub fn seal_binding(&self) -> String {
        format!("agentd webhook {} of {}", self.id, self.tenant_id)
    }

    /// The event types as the store keeps them: `,status,tool_call,`, so a
    /// type is found with `LIKE '%,type,%'`.
    pub fn events_column(&self) -> String {
        let names: Vec<&str> = self.events.iter().map(|event| event.as_str()).collect();
        format!(",{},", names.join(","))
    }

    /// The event types read back from [`Webhook::events_column`].
    pub fn parse_events(column: &str) -> Vec<WebhookEvent> {
        column.split(',').filter_map(WebhookEvent::parse).collect()
    }
}

/// An endpoint with its sealed secret, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedWebhook {
    pub webhook: Webhook,
    pub sealed_secret: String,
    pub key_fingerprint: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the most attempts (dead-lettered); redeliver by hand.
    Dead,
}

impl DeliveryState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    /// The state a name is.
    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// One event's delivery to one endpoint, and its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Its id: the `agentd-webhook-id` header, the same on every attempt.
    pub id: i64,
    pub webhook_id: String,
    pub execution_id: String,
    /// The event's number in the execution's event log.
    pub seq: u64,
    /// The event's type.
    pub event_type: String,
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// What went wrong last (a status, a timeout, a refused address).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The `agentd-webhook-signature` value of `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1={}", hex::encode(context.sign().as_ref()))
}

/// Whether `signature` is `body`'s at `timestamp` (constant time), as a
/// receiver checks it.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(given) = signature
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    hmac::verify(&key, &message, &given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_timestamp_and_the_body() {
        let signature = sign(b"whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert!(signature.starts_with("v1="));
        assert!(verify(
            b"whsec_test",
            1_700_000_000,
            br#"{"a":1}"#,
            &signature
        ));
        assert!(!verify(
            b"whsec_test",
            1_700_000_001,
            br#"{"a":1}"#,
            &signature
        ));
        assert!(!verify(
            b"whsec_test",
            1_700_000_000,
            br#"{"a":2}"#,
            &signature
        ));
        assert!(!verify(b"other", 1_700_000_000, br#"{"a":1}"#, &signature));
        assert!(!verify(
            b"whsec_test",
            1_700_000_000,
            br#"{"a":1}"#,
            "v1=zz"
        ));
    }

    #[test]
    fn event_types_survive_the_store() {
        let webhook = Webhook {
            id: "w".into(),
            tenant_id: "t".into(),
            url: "https://example.org/hook".into(),
            events: vec![WebhookEvent::Status, WebhookEvent::ModelCall],
            operator: false,
            created_at: Utc::now(),
        };
        assert_eq!(webhook.events_column(), ",status,model_call,");
        assert_eq!(
            Webhook::parse_events(&webhook.events_column()),
            webhook.events
        );
    }
}
