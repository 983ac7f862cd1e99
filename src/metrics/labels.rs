//! The label sets of the families, and the closed vocabularies some of them
//! take (a closed set of values cannot grow the number of series).

use prometheus_client::encoding::EncodeLabelSet;

/// `tenant`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TenantLabels {
    pub tenant: String,
}

/// `tenant`, `status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TenantStatusLabels {
    pub tenant: String,
    pub status: String,
}

/// `tenant`, `model`, `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TokenLabels {
    pub tenant: String,
    pub model: String,
    pub kind: String,
}

/// `tenant`, `model`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct CostLabels {
    pub tenant: String,
    pub model: String,
}

/// `method`, `route`, `status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

/// `outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub outcome: String,
}

/// `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub kind: String,
}

/// `rule`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RuleLabels {
    pub rule: String,
}

/// What became of a request the sandbox sent to the model gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// Sent upstream and answered (whatever the status).
    Forwarded,
    /// Refused by the gateway itself: a route, header, body or limit rule.
    Refused,
    /// Upstream could not be reached or did not answer in time.
    Failed,
}

impl GatewayOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayOutcome::Forwarded => "forwarded",
            GatewayOutcome::Refused => "refused",
            GatewayOutcome::Failed => "failed",
        }
    }
}

/// Why a gateway request did not end in a good answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// A method or path the gateway does not forward.
    RefusedTarget,
    /// Headers the gateway refuses.
    RefusedHeaders,
    /// A body too large, too slow, or not what the route takes.
    RefusedBody,
    /// The execution's budget (tokens, money, requests) is spent.
    BudgetExceeded,
    /// The execution's requests per minute are reached (or the tenant's
    /// spend could not be read).
    Throttled,
    /// A model the tenant's policy does not allow.
    ModelRefused,
    /// Upstream did not answer in time.
    UpstreamTimeout,
    /// Upstream could not be reached or the request could not be sent.
    UpstreamUnreachable,
    /// Upstream answered with a 4xx status.
    UpstreamClientError,
    /// Upstream answered with a 5xx status.
    UpstreamServerError,
}

impl GatewayError {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayError::RefusedTarget => "refused_target",
            GatewayError::RefusedHeaders => "refused_headers",
            GatewayError::RefusedBody => "refused_body",
            GatewayError::BudgetExceeded => "budget_exceeded",
            GatewayError::Throttled => "throttled",
            GatewayError::ModelRefused => "model_refused",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::UpstreamUnreachable => "upstream_unreachable",
            GatewayError::UpstreamClientError => "upstream_4xx",
            GatewayError::UpstreamServerError => "upstream_5xx",
        }
    }
}

/// What reconciliation removed: left over by executions that ended or by
/// supervisors that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A labelled container.
    Container,
    /// A labelled volume.
    Volume,
    /// A workspace filesystem image.
    Workspace,
    /// A dead supervisor's socket folder of an execution.
    Socket,
}

impl Removal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Removal::Container => "container",
            Removal::Volume => "volume",
            Removal::Workspace => "workspace",
            Removal::Socket => "socket",
        }
    }
}

/// `scope` (`replica`, `cluster`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ScopeLabels {
    pub scope: String,
}
