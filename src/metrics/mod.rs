//! The process's metrics in one Prometheus registry (the Prometheus project's
//! `prometheus-client`), served at `/metrics` in the text exposition format.
//!
//! Counters and histograms are kept as things happen (executions finished,
//! time queued, container starts, tokens and cost, gateway requests, policy
//! decisions, reconciliation, events, HTTP requests); gauges that are a state
//! (executions by tenant and status, queue depth) are read by the caller at
//! scrape time and handed to [`Metrics::render`]. Every label value that comes
//! from outside is bounded (see `bound.rs`): tenants are admin-chosen but
//! capped in number, model names come from inside the sandbox and only those in
//! the price table are kept, HTTP methods are the standard ones or `other`.
//!
//! The lowest room: it speaks in names and numbers and uses no other room, so
//! every room may report to it.

mod bound;
mod buckets;
mod families;
mod labels;
mod record;
mod scrape;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use prometheus_client::encoding::prometheus_text;

pub use families::Metrics;
pub use labels::{GatewayError, GatewayOutcome, Removal};
pub use record::Tokens;
pub use scrape::{ExecutionCount, Gauges};

/// The `Content-Type` of [`Metrics::render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What rendering the metrics can fail with.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The encoder refused to write the exposition.
    #[error("encoding the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    /// The exposition text, with the scrape-time `gauges` set first.
    pub fn render(&self, gauges: &Gauges) -> Result<String, MetricsError> {
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.executions.clear();
        for count in &gauges.executions {
            let labels = labels::TenantStatusLabels {
                tenant: self.tenants.value(&count.tenant),
                status: count.status.to_string(),
            };
            self.executions
                .get_or_create(&labels)
                .inc_by(saturating(count.count));
        }
        self.queue_depth.clear();
        for (tenant, depth) in &gauges.queue_depths {
            let labels = labels::TenantLabels {
                tenant: self.tenants.value(tenant),
            };
            self.queue_depth
                .get_or_create(&labels)
                .inc_by(saturating(*depth));
        }
        self.queue_oldest
            .set(gauges.queue_oldest_ms as f64 / 1000.0);
        self.live.set(saturating(gauges.live));
        self.running_here.set(saturating(gauges.running_here));
        self.event_channels.set(saturating(gauges.event_channels));
        self.event_streams.set(saturating(gauges.event_streams));
        self.event_stream_bytes
            .set(saturating(gauges.event_stream_bytes));
        for (scope, paused) in [
            ("replica", Some(gauges.claiming_paused_here)),
            ("cluster", gauges.claiming_paused_cluster),
        ] {
            let labels = labels::ScopeLabels {
                scope: scope.to_string(),
            };
            match paused {
                Some(paused) => {
                    self.claiming_paused
                        .get_or_create(&labels)
                        .set(i64::from(paused));
                }
                None => {
                    self.claiming_paused.remove(&labels);
                }
            }
        }
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
