//! The exposition, read back with a Prometheus text-format parser.

use std::time::Duration;

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};

use super::bound::OTHER;
use super::*;

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

fn scrape(metrics: &Metrics, gauges: &Gauges) -> Exposition {
    let text = metrics.render(gauges).unwrap();
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

/// The value of the one sample of `family` whose labels include `labels`.
fn value<'a>(
    exposition: &'a Exposition,
    family: &str,
    labels: &[(&str, &str)],
) -> Option<&'a PrometheusValue> {
    let family = exposition.families.get(family)?;
    let mut found = family.iter_samples().filter(|sample| {
        let set = sample.get_labelset().unwrap();
        labels
            .iter()
            .all(|(name, value)| set.get_label_value(name) == Some(*value))
    });
    let first = found.next();
    assert!(found.next().is_none(), "{labels:?} names several samples");
    first.map(|sample| &sample.value)
}

fn number(value: Option<&PrometheusValue>) -> f64 {
    match value {
        Some(PrometheusValue::Counter(c)) => c.value.as_f64(),
        Some(PrometheusValue::Gauge(n)) => n.as_f64(),
        other => panic!("not a counter or gauge: {other:?}"),
    }
}

fn count(tenant: &str, status: &'static str, count: u64) -> ExecutionCount {
    ExecutionCount {
        tenant: tenant.into(),
        status,
        count,
    }
}

#[test]
fn every_family_is_there_with_its_type() {
    // A labelled family shows once it has a series: give each one.
    let metrics = Metrics::new();
    metrics.execution_finished("acme", "succeeded", Duration::from_secs(1));
    metrics.execution_claimed("acme", Duration::from_secs(1));
    metrics.model_answered("acme", Some("m"), Tokens::default(), Some(0.0));
    metrics.gateway_request(GatewayOutcome::Forwarded);
    metrics.gateway_error(GatewayError::UpstreamServerError);
    metrics.policy_refused("r");
    metrics.policy_clamped("r");
    metrics.reconcile_removed(Removal::Volume, 1);
    metrics.http_request("GET", "/healthz", 200, Duration::ZERO);
    let gauges = Gauges {
        executions: vec![count("acme", "queued", 1)],
        queue_depths: vec![("acme".into(), 1)],
        ..Gauges::default()
    };
    let exposition = scrape(&metrics, &gauges);
    for (family, kind) in [
        ("agentd_executions", PrometheusType::Gauge),
        ("agentd_queue_depth", PrometheusType::Gauge),
        ("agentd_queue_oldest_seconds", PrometheusType::Gauge),
        ("agentd_executions_live", PrometheusType::Gauge),
        ("agentd_executions_running_here", PrometheusType::Gauge),
        ("agentd_event_channels", PrometheusType::Gauge),
        ("agentd_event_streams", PrometheusType::Gauge),
        ("agentd_event_stream_bytes", PrometheusType::Gauge),
        ("agentd_claiming_paused", PrometheusType::Gauge),
        ("agentd_executions_finished_total", PrometheusType::Counter),
        (
            "agentd_execution_duration_seconds",
            PrometheusType::Histogram,
        ),
        ("agentd_queue_wait_seconds", PrometheusType::Histogram),
        ("agentd_container_start_seconds", PrometheusType::Histogram),
        ("agentd_model_tokens_total", PrometheusType::Counter),
        ("agentd_model_cost_usd_total", PrometheusType::Counter),
        ("agentd_gateway_requests_total", PrometheusType::Counter),
        ("agentd_gateway_errors_total", PrometheusType::Counter),
        ("agentd_policy_refusals_total", PrometheusType::Counter),
        ("agentd_policy_clamps_total", PrometheusType::Counter),
        ("agentd_reconcile_removals_total", PrometheusType::Counter),
        ("agentd_events_stored_total", PrometheusType::Counter),
        ("agentd_http_requests_total", PrometheusType::Counter),
        (
            "agentd_http_request_duration_seconds",
            PrometheusType::Histogram,
        ),
    ] {
        let found = exposition
            .families
            .get(family)
            .unwrap_or_else(|| panic!("{family} missing"));
        assert_eq!(found.family_type, kind, "{family}");
        assert!(!found.help.is_empty(), "{family} has help");
    }
    assert_eq!(exposition.families.len(), 23);
}

#[test]
fn unlabelled_and_switch_families_show_from_the_start() {
    let exposition = scrape(&Metrics::new(), &Gauges::default());
    let mut names: Vec<&str> = exposition.families.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "agentd_claiming_paused",
            "agentd_container_start_seconds",
            "agentd_event_channels",
            "agentd_event_stream_bytes",
            "agentd_event_streams",
            "agentd_events_stored_total",
            "agentd_executions_live",
            "agentd_executions_running_here",
            "agentd_queue_oldest_seconds",
        ]
    );
}

#[test]
fn events_are_counted_by_their_labels() {
    let metrics = Metrics::new();
    metrics.execution_finished("acme", "succeeded", Duration::from_secs(3));
    metrics.execution_finished("acme", "succeeded", Duration::from_secs(90));
    metrics.execution_finished("beta", "failed", Duration::from_secs(1));
    metrics.events_stored(7);
    metrics.http_request("GET", "/v1/executions/{id}", 200, Duration::from_millis(5));
    metrics.http_request("BREW", "unmatched", 405, Duration::from_millis(1));
    metrics.policy_refused("sources.local_paths");
    metrics.policy_clamped("limits.timeout");
    metrics.policy_clamped("limits.timeout");
    metrics.reconcile_removed(Removal::Container, 2);
    metrics.reconcile_removed(Removal::Socket, 0);
    metrics.gateway_request(GatewayOutcome::Forwarded);
    metrics.gateway_request(GatewayOutcome::Refused);
    metrics.gateway_error(GatewayError::Throttled);
    metrics.execution_claimed("acme", Duration::from_millis(300));
    metrics.container_started(Duration::from_millis(700));
    let e = scrape(&metrics, &Gauges::default());

    let finished = "agentd_executions_finished_total";
    assert_eq!(
        number(value(
            &e,
            finished,
            &[("tenant", "acme"), ("status", "succeeded")]
        )),
        2.0
    );
    assert_eq!(
        number(value(
            &e,
            finished,
            &[("tenant", "beta"), ("status", "failed")]
        )),
        1.0
    );
    let Some(PrometheusValue::Histogram(durations)) = value(
        &e,
        "agentd_execution_duration_seconds",
        &[("tenant", "acme"), ("status", "succeeded")],
    ) else {
        panic!("a duration histogram")
    };
    assert_eq!(durations.count, Some(2));
    assert_eq!(durations.sum.as_ref().unwrap().as_f64(), 93.0);
    let within = |le: f64| {
        durations
            .buckets
            .iter()
            .find(|b| b.upper_bound == le)
            .map(|b| b.count.as_f64())
    };
    assert_eq!(within(1.0), Some(0.0));
    assert_eq!(within(5.0), Some(1.0));
    assert_eq!(within(120.0), Some(2.0));
    assert_eq!(within(f64::INFINITY), Some(2.0));

    assert_eq!(number(value(&e, "agentd_events_stored_total", &[])), 7.0);
    let http = "agentd_http_requests_total";
    let get = [
        ("method", "GET"),
        ("route", "/v1/executions/{id}"),
        ("status", "200"),
    ];
    assert_eq!(number(value(&e, http, &get)), 1.0);
    assert_eq!(
        number(value(&e, http, &[("method", OTHER), ("status", "405")])),
        1.0,
        "an extension method is not a label value"
    );
    let Some(PrometheusValue::Histogram(latency)) =
        value(&e, "agentd_http_request_duration_seconds", &get)
    else {
        panic!("an HTTP latency histogram")
    };
    assert_eq!(latency.count, Some(1));
    assert!(latency.buckets.len() > 10);

    assert_eq!(
        number(value(
            &e,
            "agentd_policy_refusals_total",
            &[("rule", "sources.local_paths")]
        )),
        1.0
    );
    assert_eq!(
        number(value(
            &e,
            "agentd_policy_clamps_total",
            &[("rule", "limits.timeout")]
        )),
        2.0
    );
    let removals = "agentd_reconcile_removals_total";
    assert_eq!(number(value(&e, removals, &[("kind", "container")])), 2.0);
    assert!(value(&e, removals, &[("kind", "socket")]).is_none());
    let requests = "agentd_gateway_requests_total";
    assert_eq!(
        number(value(&e, requests, &[("outcome", "forwarded")])),
        1.0
    );
    assert_eq!(number(value(&e, requests, &[("outcome", "refused")])), 1.0);
    assert_eq!(
        number(value(
            &e,
            "agentd_gateway_errors_total",
            &[("kind", "throttled")]
        )),
        1.0
    );
    let Some(PrometheusValue::Histogram(waits)) =
        value(&e, "agentd_queue_wait_seconds", &[("tenant", "acme")])
    else {
        panic!("a queue wait histogram")
    };
    assert_eq!(waits.count, Some(1));
    let Some(PrometheusValue::Histogram(starts)) = value(&e, "agentd_container_start_seconds", &[])
    else {
        panic!("a container start histogram")
    };
    assert_eq!(starts.count, Some(1));
}

#[test]
fn tokens_and_cost_are_by_tenant_and_priced_model_only() {
    let metrics = Metrics::new();
    let usage = Tokens {
        input: 10,
        output: 5,
        cache_read: 100,
        cache_creation: 20,
    };
    metrics.model_answered("acme", Some("claude-sonnet-4-5"), usage, Some(0.25));
    metrics.model_answered("acme", Some("claude-sonnet-4-5"), usage, Some(0.25));
    metrics.model_answered("acme", None, usage, None);
    let e = scrape(&metrics, &Gauges::default());
    let tokens = "agentd_model_tokens_total";
    for (kind, expected) in [
        ("input", 20.0),
        ("output", 10.0),
        ("cache_read", 200.0),
        ("cache_creation", 40.0),
    ] {
        let labels = [
            ("tenant", "acme"),
            ("model", "claude-sonnet-4-5"),
            ("kind", kind),
        ];
        assert_eq!(number(value(&e, tokens, &labels)), expected, "{kind}");
    }
    let unpriced = [("tenant", "acme"), ("model", OTHER), ("kind", "input")];
    assert_eq!(number(value(&e, tokens, &unpriced)), 10.0);
    let cost = "agentd_model_cost_usd_total";
    assert_eq!(
        number(value(
            &e,
            cost,
            &[("tenant", "acme"), ("model", "claude-sonnet-4-5")]
        )),
        0.5
    );
    assert!(
        value(&e, cost, &[("model", OTHER)]).is_none(),
        "no cost for what is not priced"
    );
}

#[test]
fn scrape_time_gauges_are_the_latest_figures() {
    let metrics = Metrics::new();
    let first = Gauges {
        executions: vec![
            count("acme", "queued", 3),
            count("acme", "running", 2),
            count("beta", "succeeded", 4),
        ],
        queue_depths: vec![("acme".into(), 3), ("beta".into(), 0)],
        queue_oldest_ms: 92_500,
        live: 2,
        running_here: 2,
        event_channels: 1,
        event_streams: 3,
        event_stream_bytes: 4096,
        claiming_paused_here: false,
        claiming_paused_cluster: Some(true),
    };
    let e = scrape(&metrics, &first);
    let executions = "agentd_executions";
    assert_eq!(
        number(value(
            &e,
            executions,
            &[("tenant", "acme"), ("status", "queued")]
        )),
        3.0
    );
    assert_eq!(
        number(value(
            &e,
            executions,
            &[("tenant", "beta"), ("status", "succeeded")]
        )),
        4.0
    );
    let depth = "agentd_queue_depth";
    assert_eq!(number(value(&e, depth, &[("tenant", "acme")])), 3.0);
    assert_eq!(number(value(&e, depth, &[("tenant", "beta")])), 0.0);
    assert_eq!(number(value(&e, "agentd_queue_oldest_seconds", &[])), 92.5);
    assert_eq!(number(value(&e, "agentd_executions_live", &[])), 2.0);
    assert_eq!(
        number(value(&e, "agentd_executions_running_here", &[])),
        2.0
    );
    assert_eq!(number(value(&e, "agentd_event_channels", &[])), 1.0);
    let paused = "agentd_claiming_paused";
    assert_eq!(number(value(&e, paused, &[("scope", "cluster")])), 1.0);
    assert_eq!(number(value(&e, paused, &[("scope", "replica")])), 0.0);

    let second = Gauges {
        executions: vec![count("beta", "succeeded", 5)],
        queue_depths: vec![("beta".into(), 0)],
        ..Gauges::default()
    };
    let e = scrape(&metrics, &second);
    assert!(
        value(&e, executions, &[("tenant", "acme")]).is_none(),
        "a count no longer stored is gone"
    );
    assert!(value(&e, depth, &[("tenant", "acme")]).is_none());
    assert_eq!(number(value(&e, executions, &[("tenant", "beta")])), 5.0);
    assert_eq!(number(value(&e, "agentd_executions_live", &[])), 0.0);
    // The store did not say: the cluster's series is left out, not shown as 0.
    assert!(value(&e, paused, &[("scope", "cluster")]).is_none());
}

#[test]
fn odd_label_values_become_other() {
    let metrics = Metrics::new();
    metrics.policy_refused("a rule with\"quotes\nand lines");
    metrics.execution_finished("ACME corp", "failed", Duration::ZERO);
    let e = scrape(&metrics, &Gauges::default());
    assert_eq!(
        number(value(
            &e,
            "agentd_policy_refusals_total",
            &[("rule", OTHER)]
        )),
        1.0
    );
    assert_eq!(
        number(value(
            &e,
            "agentd_executions_finished_total",
            &[("tenant", OTHER)]
        )),
        1.0
    );
}
