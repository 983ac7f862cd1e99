//! Process-wide counters in the Prometheus text format, served at `/metrics`.
//!
//! Kept deliberately small: the figures an operator alerts on (executions by
//! final status, events written, HTTP requests by route and status with their
//! latency) plus gauges read at scrape time (queue depth, live executions).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// HTTP requests by (method, route template, status): (count, seconds).
type HttpCounters = BTreeMap<(String, String, u16), (u64, f64)>;

/// The counters of this process.
#[derive(Debug, Default)]
pub struct Metrics {
    finished: Mutex<BTreeMap<&'static str, u64>>,
    events: AtomicU64,
    http: Mutex<HttpCounters>,
}

/// Gauges the caller reads at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Executions waiting in the queue (all supervisors).
    pub queued: u64,
    /// Executions preparing, running or collecting (all supervisors).
    pub live: u64,
    /// Executions running on this supervisor.
    pub running_here: u64,
    /// Live event channels with subscribers.
    pub event_channels: u64,
}

/// A request the admins' policy refused, by rule.
pub fn policy_refused(rule: &str) {
    let _ = rule;
}

/// A request field the admins' policy lowered to its cap, by rule.
pub fn policy_clamped(rule: &str) {
    let _ = rule;
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

impl Metrics {
    /// One execution reached a final status.
    pub fn execution_finished(&self, status: &'static str) {
        *self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    /// `count` events were stored.
    pub fn events_stored(&self, count: u64) {
        self.events.fetch_add(count, Ordering::Relaxed);
    }

    /// One HTTP request was answered.
    pub fn http_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let mut http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let entry = http
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        entry.0 += 1;
        entry.1 += latency.as_secs_f64();
    }

    /// The exposition text.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "agentd_executions_queued",
            "Executions waiting in the queue.",
            gauges.queued,
        );
        gauge(
            "agentd_executions_live",
            "Executions preparing, running or collecting.",
            gauges.live,
        );
        gauge(
            "agentd_executions_running_here",
            "Executions running on this supervisor.",
            gauges.running_here,
        );
        gauge(
            "agentd_event_channels",
            "Executions with live event subscribers.",
            gauges.event_channels,
        );
        let _ = writeln!(
            out,
            "# HELP agentd_executions_finished_total Executions that reached a final status.\n\
             # TYPE agentd_executions_finished_total counter"
        );
        for (status, count) in self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "agentd_executions_finished_total{{status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentd_events_stored_total Execution events written to the store.\n\
             # TYPE agentd_events_stored_total counter\n\
             agentd_events_stored_total {}",
            self.events.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP agentd_http_requests_total HTTP requests answered.\n\
             # TYPE agentd_http_requests_total counter"
        );
        let http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        for ((method, route, status), (count, _)) in http.iter() {
            let _ = writeln!(
                out,
                "agentd_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP agentd_http_request_seconds_sum Time spent answering HTTP requests.\n\
             # TYPE agentd_http_request_seconds_sum counter"
        );
        for ((method, route, status), (_, seconds)) in http.iter() {
            let _ = writeln!(
                out,
                "agentd_http_request_seconds_sum{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {seconds}",
                escape(route)
            );
        }
        out
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let metrics = Metrics::default();
        metrics.execution_finished("succeeded");
        metrics.execution_finished("succeeded");
        metrics.execution_finished("failed");
        metrics.events_stored(7);
        metrics.http_request("GET", "/v1/executions/{id}", 200, Duration::from_millis(5));
        let text = metrics.render(Gauges {
            queued: 3,
            live: 1,
            running_here: 1,
            event_channels: 0,
        });
        assert!(text.contains("agentd_executions_queued 3\n"));
        assert!(text.contains("agentd_executions_finished_total{status=\"succeeded\"} 2\n"));
        assert!(text.contains("agentd_executions_finished_total{status=\"failed\"} 1\n"));
        assert!(text.contains("agentd_events_stored_total 7\n"));
        assert!(text.contains(
            "agentd_http_requests_total{method=\"GET\",route=\"/v1/executions/{id}\",status=\"200\"} 1\n"
        ));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
