//! What every handler shares: the supervisor, the API's settings, and the
//! token that ends long-lived responses.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::auth::{AuthConfig, SharedAuth};
use super::stream_budget::{StreamCaps, StreamSlots};
use crate::supervisor::Supervisor;

/// Settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted. Default: 1 MiB (a prompt is at most 100 KiB).
    pub max_body_bytes: usize,
    /// How often an idle event stream sends a keep-alive comment, so proxies
    /// do not cut it. Default: 15 s.
    pub keep_alive: Duration,
    /// How long an event stream waits for the live hub before it reads the
    /// store instead (the execution may run on another replica). Default: 1 s.
    pub poll_interval: Duration,
    /// How callers authenticate. Default: [`AuthConfig::local`] (no admin
    /// credential; a request without one is the default tenant).
    pub auth: AuthConfig,
    /// Event streams open at once, per tenant and in all.
    pub stream_caps: StreamCaps,
}

/// Default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            keep_alive: Duration::from_secs(15),
            poll_interval: Duration::from_secs(1),
            auth: AuthConfig::local(),
            stream_caps: StreamCaps::default(),
        }
    }
}

/// The state behind every route.
#[derive(Clone)]
pub struct AppState {
    /// The supervisor the API fronts.
    pub supervisor: Arc<Supervisor>,
    /// Settings.
    pub config: ApiConfig,
    /// Cancelled when the server stops: event streams end on it.
    pub stop: CancellationToken,
    /// Resolves credentials.
    pub auth: SharedAuth,
    /// The open event streams.
    pub streams: Arc<StreamSlots>,
}
