//! A webhook receiver as a team would write one: it checks each delivery's
//! signature (HMAC-SHA256 over timestamp and body) and timestamp, and keeps
//! what it accepted. It can be told to fail each delivery's first attempts
//! (500), or to never answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 500 to each delivery's first `n` attempts, then 200.
    FailFirst(u32),
    /// Never answers.
    Silent,
}

#[derive(Default)]
struct Seen {
    /// Attempts per delivery id.
    attempts: HashMap<String, u32>,
    /// Accepted deliveries (body), in order.
    accepted: Vec<Value>,
    /// Requests whose signature or timestamp did not check out.
    forged: u32,
}

/// A running receiver.
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    secret: String,
    behaviour: Behaviour,
    seen: Arc<Mutex<Seen>>,
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if let Behaviour::Silent = shared.behaviour {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("agentd-webhook-id");
    let timestamp: i64 = header("agentd-webhook-timestamp").parse().unwrap_or(0);
    let fresh = (chrono::Utc::now().timestamp() - timestamp).abs() < 300;
    let signed = agentd::tenancy::verify_webhook(
        shared.secret.as_bytes(),
        timestamp,
        &body,
        &header("agentd-webhook-signature"),
    );
    let mut seen = shared.seen.lock().unwrap();
    if !(signed && fresh) || id.is_empty() {
        seen.forged += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let attempts = {
        let count = seen.attempts.entry(id).or_default();
        *count += 1;
        *count
    };
    if let Behaviour::FailFirst(n) = shared.behaviour
        && attempts <= n
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    seen.accepted
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::OK
}

impl Receiver {
    /// Listens on `port` (0: any) with `secret`.
    pub async fn start(port: u16, secret: &str, behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::new(Shared {
            secret: secret.to_string(),
            behaviour,
            seen: seen.clone(),
        });
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, seen, task }
    }

    /// The deliveries it accepted, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.seen.lock().unwrap().accepted.clone()
    }

    /// Attempts it saw of each delivery id.
    pub fn attempts(&self) -> HashMap<String, u32> {
        self.seen.lock().unwrap().attempts.clone()
    }

    /// Requests it refused as unsigned, wrongly signed or stale.
    pub fn forged(&self) -> u32 {
        self.seen.lock().unwrap().forged
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
