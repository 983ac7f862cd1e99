//! What the rest of agentd tells the metrics, one method per kind of event.

use std::time::Duration;

use super::bound::{self, OTHER};
use super::families::Metrics;
use super::labels::*;

/// Tokens of one metered answer, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Uncached input tokens.
    pub input: u64,
    /// Generated tokens.
    pub output: u64,
    /// Input tokens served from the prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation: u64,
}

impl Metrics {
    fn tenant(&self, tenant: &str) -> TenantLabels {
        TenantLabels {
            tenant: self.tenants.value(tenant),
        }
    }

    fn tenant_status(&self, tenant: &str, status: &'static str) -> TenantStatusLabels {
        TenantStatusLabels {
            tenant: self.tenants.value(tenant),
            status: status.to_string(),
        }
    }

    /// One execution of `tenant` reached the final `status` (as the API names
    /// it) after running for `duration`.
    pub fn execution_finished(&self, tenant: &str, status: &'static str, duration: Duration) {
        let labels = self.tenant_status(tenant, status);
        self.finished.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// One execution of `tenant` ended as `status` without ever running
    /// (cancelled while queued): counted with the others, no duration.
    pub fn execution_ended_unstarted(&self, tenant: &str, status: &'static str) {
        self.finished
            .get_or_create(&self.tenant_status(tenant, status))
            .inc();
    }

    /// This supervisor claimed an execution of `tenant` that had waited
    /// `waited` in the queue.
    pub fn execution_claimed(&self, tenant: &str, waited: Duration) {
        self.queue_wait
            .get_or_create(&self.tenant(tenant))
            .observe(waited.as_secs_f64());
    }

    /// An agent container was created and started in `took`.
    pub fn container_started(&self, took: Duration) {
        self.container_start.observe(took.as_secs_f64());
    }

    /// The gateway metered one answer for `tenant`. `model` is the price
    /// table's name for the model that answered, `None` when it is not priced
    /// (the model name comes from inside the sandbox: only names the operator's
    /// price table knows become label values, anything else is `other`).
    pub fn model_answered(
        &self,
        tenant: &str,
        model: Option<&str>,
        tokens: Tokens,
        cost_usd: Option<f64>,
    ) {
        let tenant = self.tenants.value(tenant);
        let model = model.map_or_else(|| OTHER.to_string(), |m| self.models.value(m));
        for (kind, tokens) in [
            ("input", tokens.input),
            ("output", tokens.output),
            ("cache_read", tokens.cache_read),
            ("cache_creation", tokens.cache_creation),
        ] {
            let labels = TokenLabels {
                tenant: tenant.clone(),
                model: model.clone(),
                kind: kind.to_string(),
            };
            self.tokens.get_or_create(&labels).inc_by(tokens);
        }
        if let Some(cost) = cost_usd.filter(|c| c.is_finite() && *c >= 0.0) {
            self.cost
                .get_or_create(&CostLabels { tenant, model })
                .inc_by(cost);
        }
    }

    /// The gateway handled one request from a sandbox.
    pub fn gateway_request(&self, outcome: GatewayOutcome) {
        self.gateway_requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// One webhook delivery attempt ended: `delivered`, `retry` or `dead`.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A large repository's workspace got its checkout: `built` (a template
    /// made for it), `reused` (an existing template) or `plain` (checked
    /// out in the sandbox after a template failed).
    pub fn checkout_template(&self, outcome: &'static str) {
        self.templates
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A gateway request was refused or failed, or upstream answered an error.
    pub fn gateway_error(&self, kind: GatewayError) {
        self.gateway_errors
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_string(),
            })
            .inc();
    }

    /// The admins' policy refused a request by `rule`.
    pub fn policy_refused(&self, rule: &str) {
        self.refusals
            .get_or_create(&RuleLabels {
                rule: self.rules.value(rule),
            })
            .inc();
    }

    /// The admins' policy lowered a request field to its cap by `rule`.
    pub fn policy_clamped(&self, rule: &str) {
        self.clamps
            .get_or_create(&RuleLabels {
                rule: self.rules.value(rule),
            })
            .inc();
    }

    /// Reconciliation removed `count` leftovers of one kind.
    pub fn reconcile_removed(&self, kind: Removal, count: usize) {
        if count == 0 {
            return;
        }
        self.removals
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_string(),
            })
            .inc_by(count as u64);
    }

    /// `count` events were stored.
    pub fn events_stored(&self, count: u64) {
        self.events.inc_by(count);
    }

    /// One HTTP request was answered (`route` is the matched route template,
    /// never the concrete path).
    pub fn http_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let labels = HttpLabels {
            method: bound::http_method(method).to_string(),
            route: route.to_string(),
            status: status.to_string(),
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_seconds
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
    }
}
