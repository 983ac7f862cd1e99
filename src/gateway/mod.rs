//! The per-execution LLM gateway: the sandbox's only door to the model.
//!
//! Each execution gets its own unix socket, bind-mounted into its container
//! (which has no network at all). The gateway forwards what arrives there to the
//! upstream Messages API and adds the real credential on the way, so the key
//! never enters the sandbox.

mod account;
mod body;
pub mod cassette;
mod egress;
mod forward;
mod headers;
mod limits;
mod meter;
mod metered;
mod pricing;
mod recording;
mod redact;
mod routes;
mod socket;
mod socket_file;
mod stall;
mod tenant;
mod tool_uses;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

pub use account::{Account, ModelLimits, Refusal, Settled};
pub use body::{
    BODY_READ_TIMEOUT, BodyRefusal, EXECUTION_BODY_BUDGET, GATEWAY_BODY_BUDGET, MAX_MODEL_LEN,
    MAX_REQUEST_BODY, check_messages_request,
};
pub use cassette::{
    Cassette, CassetteError, CassetteWriter, ExchangeRecorder, ReplayModel, ReplayTiming,
};
pub use forward::{GatewayBody, Recorder, RecordingExchange, Route, api_error};
pub use headers::{FORWARDED_HEADERS, HeaderRefusal};
pub use limits::{
    ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, GatewayLimits, HEADER_READ_TIMEOUT,
    MAX_CONNECTIONS_PER_EXECUTION, MAX_HEAD_BYTES, MAX_HEADER_LINES, WRITE_STALL_TIMEOUT,
};
pub use meter::{
    MAX_ANSWER_TEXT, MAX_JSON_BODY, MAX_SSE_EVENT, Metered, UpstreamError, UsageMeter,
};
pub use metered::{BodyEnd, BodyTap};
pub use pricing::{ModelPrice, PriceTable, PricingError, normalise_model};
pub use recording::CassetteRecorder;
pub use redact::{MIN_SECRET_LEN, REDACTED, RedactError, RedactStream, Redactor};
pub use routes::{Allowed, Endpoint, MAX_MODEL_ID_LEN, MAX_TARGET_LEN, RouteRefusal, admit};
pub use socket::{ExecutionSocket, MAX_SOCKET_PATH, restrict_to_sandbox_user};
pub use socket_file::{ServedSocket, SocketFile};
pub use tenant::{DailySpend, SpendLedger, TenantRefusal, TenantRules};
pub use tool_uses::{MAX_TOOL_INPUT, MAX_TOOL_USE_ID, ToolUse, ToolUseObserver};
pub use upstream::{Credential, DEFAULT_BASE_URL, Upstream};

/// What can go wrong setting up the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// `ANTHROPIC_BASE_URL` (or the configured upstream) is not a usable URL.
    #[error("invalid upstream URL `{url}`: {reason}")]
    InvalidUpstream { url: String, reason: String },
    /// The HTTP client could not be built.
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The socket path does not fit in a unix socket address.
    #[error(
        "socket path {path} is longer than {MAX_SOCKET_PATH} bytes; use a shorter run directory"
    )]
    SocketPathTooLong { path: String },
    /// The socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One request that went through the gateway, as reported to its observer
/// once its answer is over (or at once, when the gateway answered itself).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exchange {
    /// HTTP method.
    pub method: String,
    /// Path and query as the sandbox sent them.
    pub path: String,
    /// Status answered to the sandbox (upstream's, or the gateway's own).
    pub status: Option<u16>,
    /// What went wrong: the gateway's reason, or upstream's error.
    pub error: Option<String>,
    /// Time to the answer's headers.
    pub duration: Duration,
    /// Time to the answer's last byte.
    pub total: Duration,
    /// The model that answered (from the answer itself).
    pub model: Option<String>,
    /// Tokens metered from the answer (model requests only).
    pub usage: Option<crate::execution::Usage>,
    /// The answer's cost, when its model is priced.
    pub cost_usd: Option<f64>,
    /// The price table's name for the model that answered, when it is priced
    /// (unlike `model`, a name the operator chose).
    pub priced_as: Option<String>,
    /// Tokens were used by a model missing from the price table.
    pub unpriced: bool,
    /// The execution's totals after this exchange.
    pub totals: Option<crate::execution::GatewayUsage>,
    /// The conversation after this exchange, when it was a complete answer.
    pub conversation: Option<crate::execution::Conversation>,
    /// A hard limit this exchange reached or ran into.
    pub exceeded: Option<String>,
    /// The gateway refused the request (a limit) without calling upstream.
    pub refused: bool,
}

impl Exchange {
    fn new(method: &hyper::Method, path: &str) -> Exchange {
        Exchange {
            method: method.to_string(),
            path: path.to_string(),
            ..Exchange::default()
        }
    }
}

/// Told about every exchange of one execution (to turn upstream errors into events).
pub trait ExchangeObserver: Send + Sync + 'static {
    /// Called once per request, when its response headers are known.
    fn exchanged(&self, exchange: &Exchange);
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl ExchangeObserver for NoObserver {
    fn exchanged(&self, _: &Exchange) {}
}

/// The gateway shared by all executions: the upstream and a pooled HTTP client.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upstream: Upstream,
    client: reqwest::Client,
    prices: Arc<pricing::PriceTable>,
    limits: GatewayLimits,
    /// Request-body bytes all executions together may hold.
    bodies: body::BodyBudget,
}

/// Connect timeout towards upstream: 10 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence tolerated on an upstream response: 10 min (streams send pings).
pub const READ_TIMEOUT: Duration = Duration::from_secs(600);

impl Gateway {
    /// A gateway forwarding to `upstream`, pricing with the built-in table.
    pub fn new(upstream: Upstream) -> Result<Gateway, GatewayError> {
        Gateway::with_prices(upstream, pricing::PriceTable::builtin())
    }

    /// A gateway forwarding to `upstream`, pricing with `prices`.
    pub fn with_prices(
        upstream: Upstream,
        prices: pricing::PriceTable,
    ) -> Result<Gateway, GatewayError> {
        crate::wire::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GatewayError::Client)?;
        let limits = GatewayLimits::default();
        Ok(Gateway {
            inner: Arc::new(Inner {
                upstream,
                client,
                prices: Arc::new(prices),
                limits,
                bodies: body::BodyBudget::new(limits.gateway_body_budget),
            }),
        })
    }

    /// The same gateway with other connection and body limits (for sockets
    /// opened from now on).
    pub fn with_limits(&self, limits: GatewayLimits) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                upstream: self.inner.upstream.clone(),
                client: self.inner.client.clone(),
                prices: self.inner.prices.clone(),
                limits,
                bodies: body::BodyBudget::new(limits.gateway_body_budget),
            }),
        }
    }

    /// The limits every execution's socket applies.
    pub fn limits(&self) -> GatewayLimits {
        self.inner.limits
    }

    /// Where requests go.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    /// The price table the accounts use.
    pub fn prices(&self) -> Arc<pricing::PriceTable> {
        self.inner.prices.clone()
    }
}
