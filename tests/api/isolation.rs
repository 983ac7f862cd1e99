//! Who may call what: every route of the OpenAPI document (the list comes from
//! the document itself, so a new route cannot escape) called as tenant A,
//! tenant B, the admin, nobody, a revoked key and an expired key.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "admin-credential-for-tests-0123456789";

/// A principal and the header it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    A,
    B,
    Admin,
    Nobody,
    Revoked,
    Expired,
}

struct Keys {
    a: String,
    b: String,
    revoked: String,
    expired: String,
}

impl Keys {
    fn header(&self, who: Who) -> Option<String> {
        let key = match who {
            Who::A => &self.a,
            Who::B => &self.b,
            Who::Admin => ADMIN,
            Who::Nobody => return None,
            Who::Revoked => &self.revoked,
            Who::Expired => &self.expired,
        };
        Some(format!("Bearer {key}"))
    }
}

async fn call(
    app: &App,
    keys: &Keys,
    who: Who,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let url = app.url(path);
    let mut request = match method {
        "get" => app.client.get(url),
        "post" => app.client.post(url),
        "delete" => app.client.delete(url),
        "put" => app.client.put(url),
        other => panic!("method {other}"),
    };
    if let Some(header) = keys.header(who) {
        request = request.header("authorization", header);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let answer = read(
        request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap(),
    )
    .await;
    if answer.status == 202
        && (path == "/v1/executions" || path.ends_with("/follow-ups"))
        && let Some(id) = answer.json()["id"].as_str()
    {
        app.created(id);
    }
    answer
}

async fn admin_post(app: &App, path: &str, body: Value) -> Value {
    let answer = read(
        app.client
            .post(app.url(path))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{path}: {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.bytes)
    );
    answer.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_whoever_may_not_call_it() {
    let mut scenario = writing_scenario();
    scenario["after_last"] = json!("repeat_last");
    let app = crate::support::spawn_app_tuned(
        scenario,
        2,
        agentd::api::ApiConfig {
            auth: agentd::api::AuthConfig::with_admin(ADMIN),
            ..agentd::api::ApiConfig::default()
        },
        |runner, _| {
            runner.secret_key = Some(
                agentd::tenancy::SecretKey::from_text("a-secret-key-for-the-isolation-matrix-01")
                    .unwrap(),
            );
        },
    )
    .await;

    for tenant in ["a", "b", "c", "d"] {
        admin_post(&app, "/v1/admin/tenants", json!({"name": tenant})).await;
    }
    // Tenants may name host paths only under a prefix the admin allows.
    let policy = read(
        app.client
            .put(app.url("/v1/admin/policy"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(allow_repos(&app).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        policy.status,
        200,
        "{}",
        String::from_utf8_lossy(&policy.bytes)
    );
    let key = |issued: Value| issued["key"].as_str().unwrap().to_string();
    let a = key(admin_post(&app, "/v1/admin/tenants/a/keys", json!({})).await);
    let b = key(admin_post(&app, "/v1/admin/tenants/b/keys", json!({})).await);
    let revoked_issue = admin_post(&app, "/v1/admin/tenants/a/keys", json!({})).await;
    let expires_at = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let expired = key(admin_post(
        &app,
        "/v1/admin/tenants/a/keys",
        json!({"expires_at": expires_at}),
    )
    .await);
    let doomed_key = admin_post(&app, "/v1/admin/tenants/c/keys", json!({})).await;
    let revoked = key(revoked_issue.clone());
    let keys = Keys {
        a,
        b,
        revoked,
        expired,
    };
    let deleted = read(
        app.client
            .delete(app.url(&format!(
                "/v1/admin/tenants/a/keys/{}",
                revoked_issue["id"].as_str().unwrap()
            )))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(deleted.status, 204);
    tokio::time::sleep(Duration::from_millis(1600)).await;

    // A's webhooks (one to keep, one to delete) and a credential of c's.
    let webhook = |url: &str| json!({"url": url, "secret": "whsec_isolation_0123456789"});
    let kept_webhook = call(
        &app,
        &keys,
        Who::A,
        "post",
        "/v1/webhooks",
        Some(&webhook("http://127.0.0.1:9/kept")),
    )
    .await
    .json();
    let doomed_webhook = call(
        &app,
        &keys,
        Who::A,
        "post",
        "/v1/webhooks",
        Some(&webhook("http://127.0.0.1:9/doomed")),
    )
    .await
    .json();
    let doomed_credential = admin_post(
        &app,
        "/v1/admin/tenants/c/credentials",
        json!({"kind": "https", "token": "doomed-token-1", "repo_pattern": "https://git.example.org/*"}),
    )
    .await;

    // Tenant A's execution, finished with a diff, a bundle and an artifact,
    // its model exchanges recorded.
    let mut request = app.request("write a note");
    request["record"] = json!(true);
    let created = call(
        &app,
        &keys,
        Who::A,
        "post",
        "/v1/executions",
        Some(&request),
    )
    .await;
    assert_eq!(
        created.status,
        202,
        "{}",
        String::from_utf8_lossy(&created.bytes)
    );
    let id = created.json()["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let shown = call(
            &app,
            &keys,
            Who::A,
            "get",
            &format!("/v1/executions/{id}"),
            None,
        )
        .await
        .json();
        if shown["status"] == "succeeded" {
            break;
        }
        assert!(
            !crate::common::is_final_status(shown["status"].as_str().unwrap()),
            "{shown}"
        );
        assert!(std::time::Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // B cannot replay A's cassette: the id names no execution of B's.
    let mut replay = app.request("replay A's model");
    replay["replay"] = json!(id);
    call(&app, &keys, Who::B, "post", "/v1/executions", Some(&replay))
        .await
        .assert_error(422, "invalid_field", Some("replay"));

    let kept = kept_webhook["id"].as_str().unwrap().to_string();
    let deliveries = call(
        &app,
        &keys,
        Who::A,
        "get",
        &format!("/v1/webhooks/{kept}/deliveries"),
        None,
    )
    .await
    .json();
    let ids = Ids {
        execution: id.clone(),
        doomed_key: doomed_key["id"].as_str().unwrap().to_string(),
        kept_webhook: kept,
        doomed_webhook: doomed_webhook["id"].as_str().unwrap().to_string(),
        delivery: deliveries["items"][0]["id"]
            .as_i64()
            .expect("A's execution made deliveries"),
        doomed_credential: doomed_credential["id"].as_str().unwrap().to_string(),
    };
    let doc = app.get("/v1/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (template, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let admin_route = template.starts_with("/v1/admin") || template == "/metrics";
            let tenant_route = template.starts_with("/v1/executions")
                || template.starts_with("/v1/conversations")
                || template.starts_with("/v1/webhooks")
                || template == "/v1/policy";
            let open = !admin_route && !tenant_route;
            assert_eq!(
                operation.get("security").is_some(),
                !open,
                "{method} {template}: documented security"
            );
            for who in [
                Who::A,
                Who::B,
                Who::Admin,
                Who::Nobody,
                Who::Revoked,
                Who::Expired,
            ] {
                let (path, body) = concrete(template, method, &ids, &app, who);
                let answer = call(&app, &keys, who, method, &path, body.as_ref()).await;
                let status = answer.status;
                let expected = expectation(open, admin_route, who);
                let shown = String::from_utf8_lossy(&answer.bytes)
                    .chars()
                    .take(300)
                    .collect::<String>();
                match expected {
                    Expect::Status(code) => {
                        assert_eq!(status, code, "{who:?} {method} {path}: {shown}")
                    }
                    // A's finished, non-streaming execution takes no
                    // message: reached, and refused for that (409).
                    Expect::Allowed
                        if template.ends_with("/messages") || template.ends_with("/interrupt") =>
                    {
                        answer.assert_error(409, "conflict", None)
                    }
                    Expect::Allowed => assert!(
                        (200..300).contains(&status),
                        "{who:?} {method} {path}: {status} {shown}"
                    ),
                    Expect::TenantB => {
                        if template.contains("{id}") || template.contains("{webhook_id}") {
                            assert_eq!(status, 404, "B reaches A's {method} {path}: {shown}");
                        } else {
                            assert!(
                                (200..300).contains(&status),
                                "B {method} {path}: {status} {shown}"
                            );
                            assert!(!shown.contains(&id), "B sees A's execution in {path}");
                        }
                    }
                }
                if status == 401 {
                    let challenge = answer.header("www-authenticate").unwrap_or_default();
                    assert!(
                        challenge.starts_with("Bearer"),
                        "{who:?} {method} {path}: {challenge:?}"
                    );
                    answer.assert_error(401, "unauthorized", None);
                }
                if status == 403 {
                    let body = answer.json();
                    assert!(body["error"]["code"].is_string(), "{body}");
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 6 * 20,
        "only {checked} calls: the document lists too few routes"
    );

    // Idempotency keys are per tenant: B's key equal to A's makes B's own execution.
    let answer = read(
        app.client
            .post(app.url("/v1/executions"))
            .header("authorization", keys.header(Who::A).unwrap())
            .header("content-type", "application/json")
            .header("Idempotency-Key", "shared-key")
            .body(app.request("first").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 202);
    let a_id = answer.json()["id"].as_str().unwrap().to_string();
    app.created(&a_id);
    let answer = read(
        app.client
            .post(app.url("/v1/executions"))
            .header("authorization", keys.header(Who::B).unwrap())
            .header("content-type", "application/json")
            .header("Idempotency-Key", "shared-key")
            .body(app.request("first").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 202);
    assert!(answer.header("idempotent-replayed").is_none());
    let b_id = answer.json()["id"].as_str().unwrap().to_string();
    app.created(&b_id);
    assert_ne!(a_id, b_id);

    // The audit log holds the actions, the refusals, and never a key.
    let log = read(
        app.client
            .get(app.url("/v1/admin/audit?limit=200"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(log.status, 200);
    let text = String::from_utf8_lossy(&log.bytes).to_string();
    for key in [&keys.a, &keys.b, &keys.revoked, &keys.expired] {
        assert!(!text.contains(key.as_str()), "a key in the audit log");
    }
    assert!(
        !text.contains(ADMIN),
        "the admin credential in the audit log"
    );
    let events = log.json()["items"].as_array().unwrap().clone();
    for action in [
        "tenant.create",
        "tenant.disable",
        "key.create",
        "key.revoke",
        "execution.create",
        "execution.cancel",
        "policy.update",
        "claiming.resume",
        "request.refused",
    ] {
        assert!(
            events.iter().any(|e| e["action"] == action),
            "no {action} in {events:#?}"
        );
    }
    let refused = events
        .iter()
        .find(|e| e["action"] == "request.refused")
        .unwrap();
    assert_eq!(refused["outcome"], "refused");
    assert!(
        refused["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{refused}"
    );
    // The same replay is A's to make.
    let replayed = call(&app, &keys, Who::A, "post", "/v1/executions", Some(&replay)).await;
    assert_eq!(
        replayed.status,
        202,
        "{}",
        String::from_utf8_lossy(&replayed.bytes)
    );
    app.finish().await;
}

enum Expect {
    Status(u16),
    Allowed,
    TenantB,
}

fn expectation(open: bool, admin_route: bool, who: Who) -> Expect {
    if open {
        return Expect::Allowed;
    }
    match who {
        Who::Nobody | Who::Revoked | Who::Expired => Expect::Status(401),
        Who::Admin if admin_route => Expect::Allowed,
        Who::Admin => Expect::Status(403),
        Who::A | Who::B if admin_route => Expect::Status(403),
        Who::A => Expect::Allowed,
        Who::B => Expect::TenantB,
    }
}

/// A's things (and c's) the matrix names in paths.
struct Ids {
    execution: String,
    doomed_key: String,
    kept_webhook: String,
    doomed_webhook: String,
    delivery: i64,
    doomed_credential: String,
}

/// The route with its parameters filled in, and a body for the routes that take one.
fn concrete(
    template: &str,
    method: &str,
    ids: &Ids,
    app: &App,
    who: Who,
) -> (String, Option<Value>) {
    let webhook = if method == "delete" {
        &ids.doomed_webhook
    } else {
        &ids.kept_webhook
    };
    let path = template
        .replace("{id}", &ids.execution)
        .replace("{webhook_id}", webhook)
        .replace("{delivery_id}", &ids.delivery.to_string())
        .replace("{credential_id}", &ids.doomed_credential)
        .replace("{path}", "reports/summary.txt")
        .replace(
            "{tenant}",
            if template.ends_with("/disable") {
                "d"
            } else {
                "c"
            },
        )
        .replace("{key_id}", &ids.doomed_key);
    let body = match (method, template) {
        ("post", "/v1/executions") => Some(app.request("matrix")),
        ("post", "/v1/executions/{id}/follow-ups") => Some(json!({"prompt": "matrix"})),
        ("post", "/v1/executions/{id}/messages") => Some(json!({"text": "matrix"})),
        ("post", "/v1/admin/tenants") => {
            Some(json!({"name": format!("made-by-{who:?}").to_lowercase()}))
        }
        ("post", "/v1/admin/tenants/{tenant}/keys") => Some(json!({})),
        ("post", "/v1/admin/tenants/{tenant}/credentials") => Some(
            json!({"kind": "https", "token": "matrix-token-1", "repo_pattern": "https://git.example.org/*"}),
        ),
        ("post", "/v1/webhooks") => Some(json!({"url": "http://127.0.0.1:9/matrix"})),
        ("put", "/v1/admin/policy") => Some(allow_repos(app)),
        ("put", "/v1/admin/tenants/{tenant}/policy") => Some(json!({"max_concurrent": 3})),
        // Claiming stays on: the matrix only proves who may call it.
        ("put", "/v1/admin/claiming") => Some(json!({"paused": false})),
        _ => None,
    };
    (path, body)
}

/// A global policy that lets tenants name the test's repository on this host.
fn allow_repos(app: &App) -> Value {
    let prefix = app.repo.parent().unwrap().display().to_string();
    json!({"sources": {"local_paths": [prefix], "private_hosts": true}})
}
