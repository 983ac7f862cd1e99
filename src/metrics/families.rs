//! The families and the one registry they are registered in.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::bound::Bounded;
use super::buckets;
use super::labels::*;

/// Distinct tenants kept as labels (tenant names are admin-chosen and
/// validated; this only guards the series count).
const MAX_TENANTS: usize = 1000;
/// Distinct models kept as labels (only names from the price table get here).
const MAX_MODELS: usize = 100;
/// Distinct policy rules kept as labels.
const MAX_RULES: usize = 100;

/// A histogram family built with fixed buckets.
pub(super) type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metrics of one process: one registry and the families in it.
#[derive(Debug)]
pub struct Metrics {
    pub(super) registry: Registry,
    /// Serialises scrapes: the scrape-time gauges are reset and set under it.
    pub(super) scrape: Mutex<()>,
    pub(super) tenants: Bounded,
    pub(super) models: Bounded,
    pub(super) rules: Bounded,

    pub(super) executions: Family<TenantStatusLabels, Gauge>,
    pub(super) queue_depth: Family<TenantLabels, Gauge>,
    pub(super) live: Gauge,
    pub(super) running_here: Gauge,
    pub(super) event_channels: Gauge,
    pub(super) event_streams: Gauge,
    pub(super) event_stream_bytes: Gauge,
    pub(super) queue_oldest: Gauge<f64, AtomicU64>,
    pub(super) claiming_paused: Family<ScopeLabels, Gauge>,

    pub(super) finished: Family<TenantStatusLabels, Counter>,
    pub(super) duration: Histograms<TenantStatusLabels>,
    pub(super) queue_wait: Histograms<TenantLabels>,
    pub(super) container_start: Histogram,
    pub(super) tokens: Family<TokenLabels, Counter>,
    pub(super) cost: Family<CostLabels, Counter<f64, AtomicU64>>,
    pub(super) gateway_requests: Family<OutcomeLabels, Counter>,
    pub(super) gateway_errors: Family<KindLabels, Counter>,
    pub(super) refusals: Family<RuleLabels, Counter>,
    pub(super) clamps: Family<RuleLabels, Counter>,
    pub(super) removals: Family<KindLabels, Counter>,
    pub(super) webhook_attempts: Family<OutcomeLabels, Counter>,
    pub(super) templates: Family<OutcomeLabels, Counter>,
    pub(super) events: Counter,
    pub(super) http_requests: Family<HttpLabels, Counter>,
    pub(super) http_seconds: Histograms<HttpLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family, registered and empty.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            scrape: Mutex::new(()),
            tenants: Bounded::new(MAX_TENANTS),
            models: Bounded::new(MAX_MODELS),
            rules: Bounded::new(MAX_RULES),
            executions: Family::default(),
            queue_depth: Family::default(),
            live: Gauge::default(),
            running_here: Gauge::default(),
            event_channels: Gauge::default(),
            event_streams: Gauge::default(),
            event_stream_bytes: Gauge::default(),
            queue_oldest: Gauge::default(),
            claiming_paused: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(buckets::EXECUTION)),
            queue_wait: Family::new_with_constructor(|| Histogram::new(buckets::QUEUE_WAIT)),
            container_start: Histogram::new(buckets::CONTAINER_START),
            tokens: Family::default(),
            cost: Family::default(),
            gateway_requests: Family::default(),
            gateway_errors: Family::default(),
            refusals: Family::default(),
            clamps: Family::default(),
            removals: Family::default(),
            webhook_attempts: Family::default(),
            templates: Family::default(),
            events: Counter::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(|| Histogram::new(buckets::HTTP)),
        };
        metrics.registered()
    }

    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "agentd_executions",
            "Executions by tenant and status, as stored (all supervisors)",
            self.executions.clone(),
        );
        r.register(
            "agentd_queue_depth",
            "Queued executions by tenant (all supervisors)",
            self.queue_depth.clone(),
        );
        r.register(
            "agentd_queue_oldest_seconds",
            "Age of the oldest queued execution, 0 when none is queued (all supervisors)",
            self.queue_oldest.clone(),
        );
        r.register(
            "agentd_executions_live",
            "Executions preparing, running or collecting (all supervisors)",
            self.live.clone(),
        );
        r.register(
            "agentd_executions_running_here",
            "Executions running on this supervisor",
            self.running_here.clone(),
        );
        r.register(
            "agentd_event_channels",
            "Executions with live event subscribers",
            self.event_channels.clone(),
        );
        r.register(
            "agentd_event_streams",
            "Event streams (SSE) open on this supervisor",
            self.event_streams.clone(),
        );
        r.register(
            "agentd_event_stream_bytes",
            "Bytes of events handed to event streams and not yet written",
            self.event_stream_bytes.clone(),
        );
        r.register(
            "agentd_claiming_paused",
            "1 while an admin has paused claiming: scope replica (this supervisor) or cluster (every replica)",
            self.claiming_paused.clone(),
        );
        r.register(
            "agentd_executions_finished",
            "Executions that reached a final status on this supervisor",
            self.finished.clone(),
        );
        r.register(
            "agentd_execution_duration_seconds",
            "Time from an execution's start to its final status",
            self.duration.clone(),
        );
        r.register(
            "agentd_queue_wait_seconds",
            "Time from an execution's creation to its claim by this supervisor",
            self.queue_wait.clone(),
        );
        r.register(
            "agentd_container_start_seconds",
            "Time to create and start an execution's agent container",
            self.container_start.clone(),
        );
        r.register(
            "agentd_model_tokens",
            "Tokens metered by the model gateway, by tenant, model and kind",
            self.tokens.clone(),
        );
        r.register(
            "agentd_model_cost_usd",
            "Cost in US dollars of the metered answers of priced models",
            self.cost.clone(),
        );
        r.register(
            "agentd_gateway_requests",
            "Requests the sandboxes sent to the model gateway, by outcome",
            self.gateway_requests.clone(),
        );
        r.register(
            "agentd_gateway_errors",
            "Gateway requests refused or failed, and upstream error answers, by kind",
            self.gateway_errors.clone(),
        );
        r.register(
            "agentd_policy_refusals",
            "Requests the admins' policy refused, by rule",
            self.refusals.clone(),
        );
        r.register(
            "agentd_policy_clamps",
            "Request fields the admins' policy lowered to their cap, by rule",
            self.clamps.clone(),
        );
        r.register(
            "agentd_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, retry, dead)",
            self.webhook_attempts.clone(),
        );
        r.register(
            "agentd_checkout_templates",
            "Workspaces of large repositories by how they got their checkout (built: a template made for them, reused: an existing template, plain: checked out in the sandbox after a template failed)",
            self.templates.clone(),
        );
        r.register(
            "agentd_reconcile_removals",
            "Leftovers reconciliation removed, by kind",
            self.removals.clone(),
        );
        r.register(
            "agentd_events_stored",
            "Execution events written to the store",
            self.events.clone(),
        );
        r.register(
            "agentd_http_requests",
            "HTTP requests answered, by method, route template and status",
            self.http_requests.clone(),
        );
        r.register(
            "agentd_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status",
            self.http_seconds.clone(),
        );
        self
    }
}
