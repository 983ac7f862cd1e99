//! Probes, the OpenAPI document, and refusing work while shutting down.

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn probes_answer_and_readiness_drops_on_shutdown() {
    let app = spawn_app(writing_scenario(), 0).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.json());
    assert_eq!(ready.json()["status"], "ready");

    // The supervisor stops taking work; the HTTP server still answers.
    app.supervisor.shutdown().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "unavailable");
    assert!(ready.json()["reason"].is_string());
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 200);
    let refused = app
        .post_json("/v1/executions", &app.request("too late"), None)
        .await;
    refused.assert_error(503, "shutting_down", None);
    assert!(refused.header("retry-after").is_some());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app(writing_scenario(), 0).await;
    let answer = app.get("/v1/openapi.json").await;
    assert_eq!(answer.status, 200);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/executions", &["get", "post"][..]),
        ("/v1/executions/{id}", &["get"]),
        ("/v1/executions/{id}/cancel", &["post"]),
        ("/v1/executions/{id}/events", &["get"]),
        ("/v1/executions/{id}/diff", &["get"]),
        ("/v1/executions/{id}/bundle", &["get"]),
        ("/v1/executions/{id}/artifacts", &["get"]),
        ("/v1/executions/{id}/artifacts/{path}", &["get"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/v1/openapi.json", &["get"]),
        ("/v1/admin/tenants", &["get", "post"]),
        ("/v1/admin/tenants/{tenant}", &["get"]),
        ("/v1/admin/tenants/{tenant}/disable", &["post"]),
        ("/v1/admin/tenants/{tenant}/keys", &["get", "post"]),
        ("/v1/admin/tenants/{tenant}/keys/{key_id}", &["delete"]),
        ("/v1/admin/audit", &["get"]),
        ("/v1/admin/policy", &["get", "put"]),
        ("/v1/admin/tenants/{tenant}/policy", &["get", "put"]),
        ("/v1/policy", &["get"]),
        ("/v1/admin/claiming", &["get", "put"]),
        ("/v1/executions/{id}/deliver", &["post"]),
        ("/v1/admin/tenants/{tenant}/credentials", &["get", "post"]),
        (
            "/v1/admin/tenants/{tenant}/credentials/{credential_id}",
            &["delete"],
        ),
        ("/v1/webhooks", &["get", "post"]),
        ("/v1/webhooks/{webhook_id}", &["delete"]),
        ("/v1/webhooks/{webhook_id}/deliveries", &["get"]),
        (
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            &["post"],
        ),
        ("/v1/executions/{id}/follow-ups", &["post"]),
        ("/v1/conversations/{id}", &["get"]),
        ("/v1/executions/{id}/messages", &["post"]),
        ("/v1/executions/{id}/interrupt", &["post"]),
    ] {
        for method in methods {
            let responses = &paths[path][method]["responses"];
            assert!(
                responses.as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} is not documented"
            );
        }
    }
    assert_eq!(paths.len(), 33);
    app.finish().await;
}
