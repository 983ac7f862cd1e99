//! Sending status webhooks: every replica claims due deliveries from the
//! store's outbox, signs each (HMAC-SHA256 over timestamp and body), POSTs
//! it, and records how it went — 2xx delivered; anything else retried with
//! exponential backoff and jitter, dead-lettered after the most attempts.
//! Executions only write the outbox: a slow or dead receiver never holds one
//! up. A receiver's address is vetted at each attempt like a repository's
//! (no loopback or private range unless the tenant's policy allows it), the
//! connection held to the vetted addresses, no redirect followed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;

use super::Supervisor;
use crate::git::push::backoff;
use crate::git::reach;
use crate::store::{AttemptOutcome, DueDelivery};
use crate::tenancy::{Location, locate, sign_webhook};

/// How webhooks are sent.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How often the outbox is looked at. Default: 1 s.
    pub interval: Duration,
    /// How long a claimed delivery is this replica's. Default: 60 s.
    pub lease: Duration,
    /// How long a receiver may take to answer. Default: 10 s.
    pub timeout: Duration,
    /// Attempts before a delivery is dead-lettered. Default: 8.
    pub max_attempts: u32,
    /// The first pause between attempts (doubling, with jitter). Default: 2 s.
    pub backoff: Duration,
    /// The longest pause. Default: 10 min.
    pub max_backoff: Duration,
    /// Deliveries in flight to one endpoint from this replica. Default: 4.
    pub per_endpoint: usize,
    /// Deliveries claimed at once. Default: 32.
    pub batch: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
            per_endpoint: 4,
            batch: 32,
        }
    }
}

/// In-flight limits per endpoint, on this replica.
#[derive(Default)]
pub(super) struct Endpoints {
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Endpoints {
    fn of(&self, webhook: &str, permits: usize) -> Arc<Semaphore> {
        self.limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(webhook.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(permits.max(1))))
            .clone()
    }
}

impl Supervisor {
    /// Sends due webhook deliveries until shutdown.
    pub(super) async fn send_webhooks(self: Arc<Self>) {
        let batch = self.config.webhooks.batch.max(1);
        // Deliveries claimed and not yet recorded, at most a batch: nothing
        // is claimed that cannot be sent within its lease.
        let slots = Arc::new(Semaphore::new(batch as usize));
        let mut rounds: u64 = 0;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.webhooks.interval) => {}
            }
            rounds += 1;
            if rounds % 600 == 1 {
                let week = Utc::now() - chrono::Duration::days(7);
                if let Err(error) = self.store.prune_deliveries(week).await {
                    tracing::warn!(%error, "cannot prune the webhook outbox");
                }
            }
            let free = slots.available_permits() as u32;
            if free == 0 {
                continue;
            }
            // Each claim has its own token: a task that outlived its claim
            // can neither send nor record under a later one.
            let token = format!("{}/{}", self.instance.id(), uuid::Uuid::new_v4());
            let claimed = self
                .store
                .claim_deliveries(&token, self.config.webhooks.lease, free.min(batch))
                .await;
            let due = match claimed {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the webhook outbox");
                    continue;
                }
            };
            for delivery in due {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let me = self.clone();
                let token = token.clone();
                let limit = self.endpoints.of(
                    &delivery.webhook.webhook.id,
                    self.config.webhooks.per_endpoint,
                );
                tokio::spawn(async move {
                    let _slot = slot;
                    let Ok(_permit) = limit.acquire_owned().await else {
                        return;
                    };
                    me.send_one(delivery, &token).await;
                });
            }
        }
    }

    /// One attempt at one delivery, recorded.
    async fn send_one(&self, due: DueDelivery, token: &str) {
        let config = &self.config.webhooks;
        let id = due.delivery.id;
        // Waiting for the endpoint's turn may have outlasted the claim.
        match self.store.renew_claim(id, token, config.lease).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, delivery = id, "cannot renew a webhook claim");
                return;
            }
        }
        let attempt = due.delivery.attempts + 1;
        let sent = self.post(&due).await;
        let outcome = match sent {
            Ok(status) if (200..300).contains(&status) => AttemptOutcome::Delivered { status },
            failed => {
                let (status, error) = match failed {
                    Ok(status) => (Some(status), format!("the receiver answered {status}")),
                    Err(error) => (None, error),
                };
                if attempt >= config.max_attempts {
                    AttemptOutcome::Dead { status, error }
                } else {
                    let pause = backoff(config.backoff, config.max_backoff, attempt);
                    AttemptOutcome::Retry {
                        status,
                        error,
                        next: Utc::now()
                            + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::MAX),
                    }
                }
            }
        };
        tracing::info!(delivery = id, attempt, outcome = ?outcome, "webhook attempt");
        crate::metrics::global().webhook_attempt(match &outcome {
            AttemptOutcome::Delivered { .. } => "delivered",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Dead { .. } => "dead",
        });
        if let Err(error) = self.store.record_attempt(id, token, &outcome).await {
            tracing::warn!(%error, delivery = id, "cannot record a webhook attempt");
        }
    }

    /// POSTs the delivery; the receiver's status, or why there is none.
    async fn post(&self, due: &DueDelivery) -> Result<u16, String> {
        let webhook = &due.webhook.webhook;
        let key = self
            .secret_key()
            .ok_or("agentd has no secret key to open the endpoint's secret")?;
        let secret = key
            .open(&due.webhook.sealed_secret, &webhook.seal_binding())
            .map_err(|error| error.to_string())?;
        let pinned = self.vet_receiver(webhook).await?;
        let event: serde_json::Value =
            serde_json::from_str(&due.event).unwrap_or(serde_json::Value::Null);
        let body = serde_json::to_vec(&serde_json::json!({
            "delivery_id": due.delivery.id,
            "webhook_id": webhook.id,
            "type": due.delivery.event_type,
            "tenant_id": webhook.tenant_id,
            "execution_id": due.delivery.execution_id,
            "seq": due.delivery.seq,
            "at": due.at,
            "event": event,
        }))
        .map_err(|error| error.to_string())?;
        let timestamp = Utc::now().timestamp();
        let signature = sign_webhook(&secret, timestamp, &body);
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.config.webhooks.timeout)
            .user_agent("agentd-webhook/1");
        if let Some((host, addresses)) = &pinned {
            client = client.resolve_to_addrs(host, addresses);
        }
        let client = client
            .no_proxy()
            .build()
            .map_err(|error| error.to_string())?;
        let answer = client
            .post(&webhook.url)
            .header("content-type", "application/json")
            .header("agentd-webhook-id", due.delivery.id.to_string())
            .header("agentd-webhook-timestamp", timestamp.to_string())
            .header("agentd-webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if error.is_timeout() {
                    format!(
                        "the receiver did not answer within {} s",
                        self.config.webhooks.timeout.as_secs()
                    )
                } else if error.is_connect() {
                    "the receiver could not be reached".to_string()
                } else {
                    "the request to the receiver failed".to_string()
                }
            })?;
        Ok(answer.status().as_u16())
    }

    /// The addresses a receiver's host may be reached at: `None` when the
    /// endpoint is not held (the operator's, or a policy that allows private
    /// hosts); an error when its host has no public address.
    async fn vet_receiver(
        &self,
        webhook: &crate::tenancy::Webhook,
    ) -> Result<Option<(String, Vec<SocketAddr>)>, String> {
        let Location::Network { host, port, .. } = locate(&webhook.url) else {
            return Err("the endpoint is not an http(s) URL".into());
        };
        if webhook.operator {
            return Ok(None);
        }
        let policy = super::governance::effective_policy(self.store.as_ref(), &webhook.tenant_id)
            .await
            .map_err(|error| error.to_string())?;
        if policy.sources.private_hosts == Some(true) {
            return Ok(None);
        }
        let addresses = reach::public_addresses(&host, port)
            .await
            .ok_or("the endpoint's host resolves to no public address")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Some((host, addresses)))
    }
}
