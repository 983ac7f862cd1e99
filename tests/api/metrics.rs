//! `/metrics` scraped with the admin credential and read with a Prometheus
//! text-format parser: the families, their types, and the values real actions
//! leave (a tenant's execution run to success, a request the policy refuses).

use std::time::Duration;

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "admin-credential-for-metrics-0123456789";

/// A tenant name no other test uses: the metrics are process-wide, shared by
/// every test in this binary.
const TENANT: &str = "metrics-tenant";

type Exposition = MetricsExposition<PrometheusType, PrometheusValue>;

/// `/metrics` as `token` (none: no credential), parsed.
pub async fn scrape(app: &App, token: Option<&str>) -> Exposition {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let answer = read(request.send().await.unwrap()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(answer.bytes).unwrap();
    parse_prometheus(&text).unwrap_or_else(|error| panic!("{error:?}\n{text}"))
}

/// The samples of `family` whose labels include `labels`.
pub fn samples<'a>(
    exposition: &'a Exposition,
    family: &str,
    labels: &[(&str, &str)],
) -> Vec<&'a PrometheusValue> {
    let Some(family) = exposition.families.get(family) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .filter(|sample| {
            let set = sample.get_labelset().unwrap();
            labels
                .iter()
                .all(|(name, value)| set.get_label_value(name) == Some(*value))
        })
        .map(|sample| &sample.value)
        .collect()
}

/// The sum of the counters or gauges of `family` whose labels include `labels`.
pub fn total(exposition: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    samples(exposition, family, labels)
        .into_iter()
        .map(|value| match value {
            PrometheusValue::Counter(counter) => counter.value.as_f64(),
            PrometheusValue::Gauge(gauge) => gauge.as_f64(),
            other => panic!("{family} is not a counter or gauge: {other:?}"),
        })
        .sum()
}

/// Observations in the histograms of `family` whose labels include `labels`,
/// checking each has its buckets up to `+Inf` holding them all.
fn observations(exposition: &Exposition, family: &str, labels: &[(&str, &str)]) -> u64 {
    samples(exposition, family, labels)
        .into_iter()
        .map(|value| {
            let PrometheusValue::Histogram(histogram) = value else {
                panic!("{family} is not a histogram: {value:?}")
            };
            let count = histogram.count.expect("a _count");
            assert!(histogram.buckets.len() > 5, "{family}: {histogram:?}");
            let last = histogram.buckets.last().unwrap();
            assert_eq!(last.upper_bound, f64::INFINITY, "{family}");
            assert_eq!(last.count.as_f64(), count as f64, "{family}");
            count
        })
        .sum()
}

async fn as_admin(app: &App, path: &str, body: Value) -> Value {
    let answer = send(app, ADMIN, path, &body).await;
    assert!(
        matches!(answer.status, 200 | 201),
        "{path}: {}",
        answer.json()
    );
    answer.json()
}

async fn send(app: &App, key: &str, path: &str, body: &Value) -> Answer {
    let request = app
        .client
        .post(app.url(path))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    let answer = read(request.send().await.unwrap()).await;
    if answer.status == 202
        && let Some(id) = answer.json()["id"].as_str()
    {
        app.created(id);
    }
    answer
}

/// Tenant `name`, made by the admin, with a key (returned) and a policy that
/// lets it use the sample repository, a host path (and nothing else there).
async fn tenant_with_key(app: &App, name: &str) -> String {
    as_admin(app, "/v1/admin/tenants", json!({"name": name})).await;
    let issued = as_admin(app, &format!("/v1/admin/tenants/{name}/keys"), json!({})).await;
    let policy: agentd::tenancy::Policy = serde_json::from_value(
        json!({"sources": {"local_paths": [app.repo.display().to_string()]}}),
    )
    .unwrap();
    app.supervisor
        .store()
        .put_policy(agentd::tenancy::Scope::Tenant(name), &policy)
        .await
        .unwrap();
    issued["key"].as_str().unwrap().to_string()
}

async fn execution(app: &App, key: &str, id: &str) -> Value {
    let answer = read(
        app.client
            .get(app.url(&format!("/v1/executions/{id}")))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    answer.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_tenants_execution_and_a_policy_refusal() {
    let app = spawn_app_with(
        writing_scenario(),
        2,
        agentd::api::AuthConfig::with_admin(ADMIN),
    )
    .await;
    let key = tenant_with_key(&app, TENANT).await;

    // Only the admin reads the metrics: they name every tenant.
    let tenant_scrape = read(
        app.client
            .get(app.url("/metrics"))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tenant_scrape.status, 403);

    let before = scrape(&app, Some(ADMIN)).await;
    let rule = [("rule", "sources.local_paths")];
    let refusals_before = total(&before, "agentd_policy_refusals_total", &rule);
    let refused = send(
        &app,
        &key,
        "/v1/executions",
        &json!({"repo": "/etc", "prompt": "read the passwords"}),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.json());

    let created = send(&app, &key, "/v1/executions", &app.request("Add a note")).await;
    assert_eq!(created.status, 202, "{}", created.json());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let done = loop {
        let shown = execution(&app, &key, &id).await;
        if is_final(&shown) {
            break shown;
        }
        assert!(std::time::Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");

    let after = scrape(&app, Some(ADMIN)).await;
    for (family, kind) in [
        ("agentd_executions", PrometheusType::Gauge),
        ("agentd_queue_depth", PrometheusType::Gauge),
        ("agentd_executions_live", PrometheusType::Gauge),
        ("agentd_executions_running_here", PrometheusType::Gauge),
        ("agentd_event_channels", PrometheusType::Gauge),
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
        ("agentd_policy_refusals_total", PrometheusType::Counter),
        ("agentd_events_stored_total", PrometheusType::Counter),
        ("agentd_http_requests_total", PrometheusType::Counter),
        (
            "agentd_http_request_duration_seconds",
            PrometheusType::Histogram,
        ),
    ] {
        let found = after
            .families
            .get(family)
            .unwrap_or_else(|| panic!("{family} missing"));
        assert_eq!(found.family_type, kind, "{family}");
    }

    let mine = [("tenant", TENANT), ("status", "succeeded")];
    assert_eq!(
        total(&after, "agentd_executions_finished_total", &mine),
        1.0
    );
    assert_eq!(
        observations(&after, "agentd_execution_duration_seconds", &mine),
        1
    );
    assert_eq!(total(&after, "agentd_executions", &mine), 1.0);
    assert_eq!(
        total(&after, "agentd_queue_depth", &[("tenant", TENANT)]),
        0.0
    );
    assert_eq!(
        observations(&after, "agentd_queue_wait_seconds", &[("tenant", TENANT)]),
        1
    );
    assert!(observations(&after, "agentd_container_start_seconds", &[]) >= 1);

    let model = [("tenant", TENANT), ("model", "claude-sonnet-4-5")];
    for (kind, field) in [("input", "input_tokens"), ("output", "output_tokens")] {
        let labels = [model[0], model[1], ("kind", kind)];
        assert_eq!(
            total(&after, "agentd_model_tokens_total", &labels),
            done["usage"][field].as_f64().unwrap(),
            "{kind} tokens"
        );
    }
    assert!(total(&after, "agentd_model_cost_usd_total", &model) > 0.0);
    assert!(
        total(
            &after,
            "agentd_gateway_requests_total",
            &[("outcome", "forwarded")]
        ) >= 3.0
    );

    assert!(
        total(&after, "agentd_policy_refusals_total", &rule) >= refusals_before + 1.0,
        "a refusal by sources.local_paths was counted"
    );
    assert!(total(&after, "agentd_events_stored_total", &[]) > 0.0);
    let submitted = [
        ("method", "POST"),
        ("route", "/v1/executions"),
        ("status", "202"),
    ];
    assert!(total(&after, "agentd_http_requests_total", &submitted) >= 1.0);
    let polled = [
        ("method", "GET"),
        ("route", "/v1/executions/{id}"),
        ("status", "200"),
    ];
    assert!(total(&after, "agentd_http_requests_total", &polled) >= 1.0);
    assert!(observations(&after, "agentd_http_request_duration_seconds", &polled) >= 1);
    app.finish().await;
}

/// Issue 10: of 500 executions cancelled, the counter showed 53 — those
/// cancelled while queued never passed the runner's finish. Every terminal
/// transition is counted once, whichever path ends it.
#[tokio::test(flavor = "multi_thread")]
async fn mass_cancellation_counts_every_execution_once() {
    const MANY: usize = 24;
    let tenant = "mass-cancel-tenant";
    let app = spawn_app_with(
        sleeping_scenario(120),
        2,
        agentd::api::AuthConfig::with_admin(ADMIN),
    )
    .await;
    let key = tenant_with_key(&app, tenant).await;

    let mut ids = Vec::new();
    for n in 0..MANY {
        let created = send(
            &app,
            &key,
            "/v1/executions",
            &app.request(&format!("sleep {n}")),
        )
        .await;
        assert_eq!(created.status, 202, "{}", created.json());
        ids.push(created.json()["id"].as_str().unwrap().to_string());
    }
    // The first two hold the slots, the rest wait in the queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while execution(&app, &key, &ids[0]).await["status"] != "running" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/v1/executions/{id}/cancel"))
        .collect();
    let nothing = json!({});
    let cancels = paths.iter().map(|path| send(&app, &key, path, &nothing));
    for answer in futures::future::join_all(cancels).await {
        assert_eq!(answer.status, 202, "{}", answer.json());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let shown = execution(&app, &key, id).await;
            if is_final(&shown) {
                assert_eq!(shown["status"], "cancelled", "{shown}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{shown}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Cancelling again ends nothing new and counts nothing.
    for id in &ids[..3] {
        let again = send(
            &app,
            &key,
            &format!("/v1/executions/{id}/cancel"),
            &json!({}),
        )
        .await;
        assert_eq!(again.status, 202);
    }

    let after = scrape(&app, Some(ADMIN)).await;
    let finished = "agentd_executions_finished_total";
    assert_eq!(
        total(
            &after,
            finished,
            &[("tenant", tenant), ("status", "cancelled")]
        ),
        MANY as f64
    );
    assert_eq!(total(&after, finished, &[("tenant", tenant)]), MANY as f64);
    assert_eq!(
        total(
            &after,
            "agentd_executions",
            &[("tenant", tenant), ("status", "cancelled")]
        ),
        MANY as f64
    );
    app.finish().await;
}
