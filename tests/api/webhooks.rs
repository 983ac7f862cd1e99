//! Status webhooks end to end (issue 11): a real receiver checks every
//! delivery's signature; one that fails three times is delivered to on the
//! fourth attempt; one that never answers is dead-lettered without holding
//! the execution up, and redelivered by hand.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::receiver::{Behaviour, Receiver};
use crate::support::{App, spawn_app_tuned, writing_scenario};

const SECRET: &str = "whsec_test_secret_0123456789";

async fn app() -> App {
    spawn_app_tuned(
        writing_scenario(),
        2,
        agentd::api::ApiConfig::default(),
        |runner, supervisor| {
            runner.secret_key = Some(
                agentd::tenancy::SecretKey::from_text("a-secret-key-for-the-webhook-test-01234")
                    .unwrap(),
            );
            supervisor.webhooks.interval = Duration::from_millis(100);
            supervisor.webhooks.backoff = Duration::from_millis(100);
            supervisor.webhooks.max_backoff = Duration::from_millis(400);
            supervisor.webhooks.timeout = Duration::from_millis(500);
            supervisor.webhooks.max_attempts = 4;
        },
    )
    .await
}

async fn register(app: &App, url: &str, events: Value) -> Value {
    let answer = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": url, "secret": SECRET, "events": events}),
            None,
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json());
    answer.json()
}

async fn deliveries(app: &App, webhook: &str) -> Vec<Value> {
    let page = app.get(&format!("/v1/webhooks/{webhook}/deliveries")).await;
    assert_eq!(page.status, 200, "{}", page.json());
    page.json()["items"].as_array().unwrap().clone()
}

async fn body(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null)
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_fails_three_times_gets_every_status_signed_on_the_fourth() {
    let app = app().await;
    let receiver = Receiver::start(0, SECRET, Behaviour::FailFirst(3)).await;
    let webhook = register(&app, &receiver.url, json!(["status", "tool_call"])).await;
    let id = webhook["id"].as_str().unwrap().to_string();
    assert!(
        webhook.get("secret").is_none(),
        "a given secret is not echoed"
    );

    let execution = app.submit("Add a note").await;
    let execution = execution["id"].as_str().unwrap().to_string();
    let done = app.wait_final(&execution).await;
    assert_eq!(done["status"], "succeeded");

    wait_until(
        "every delivery delivered",
        Duration::from_secs(30),
        async || {
            let all = deliveries(&app, &id).await;
            !all.is_empty() && all.iter().all(|d| d["state"] == "delivered")
        },
    )
    .await;
    let all = deliveries(&app, &id).await;
    for delivery in &all {
        assert_eq!(delivery["attempts"], 4, "{delivery}");
        assert_eq!(delivery["last_status"], 200, "{delivery}");
    }
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), all.len());
    assert_eq!(receiver.forged(), 0);
    let statuses: Vec<&str> = accepted
        .iter()
        .filter(|d| d["type"] == "status")
        .map(|d| d["event"]["status"].as_str().unwrap())
        .collect();
    for status in ["preparing", "running", "succeeded"] {
        assert!(statuses.contains(&status), "{status} in {statuses:?}");
    }
    assert!(
        accepted.iter().any(|d| d["type"] == "tool_call"),
        "tool calls were asked for"
    );
    assert!(
        accepted
            .iter()
            .all(|d| d["execution_id"] == execution.as_str())
    );
    // Every attempt of one delivery carried the same id.
    assert!(receiver.attempts().values().all(|n| *n == 4));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_holds_nothing_up_and_is_dead_lettered() {
    let app = app().await;
    let receiver = Receiver::start(0, SECRET, Behaviour::Silent).await;
    let webhook = register(&app, &receiver.url, json!(["status"])).await;
    let id = webhook["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let execution = app.submit("Add a note").await;
    let execution = execution["id"].as_str().unwrap().to_string();
    let done = app.wait_final(&execution).await;
    assert_eq!(done["status"], "succeeded");
    let ran = started.elapsed();

    wait_until("every delivery dead", Duration::from_secs(30), async || {
        let all = deliveries(&app, &id).await;
        !all.is_empty() && all.iter().all(|d| d["state"] == "dead")
    })
    .await;
    let all = deliveries(&app, &id).await;
    for delivery in &all {
        assert_eq!(delivery["attempts"], 4, "{delivery}");
        assert!(
            delivery["last_error"]
                .as_str()
                .unwrap()
                .contains("did not answer"),
            "{delivery}"
        );
    }
    // Four attempts of 500 ms each and their pauses: the execution did not
    // wait for any of them.
    assert!(ran < Duration::from_secs(60), "{ran:?}");

    let first = all[0]["id"].as_i64().unwrap();
    let again = app
        .post_json(
            &format!("/v1/webhooks/{id}/deliveries/{first}/redeliver"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.json());
    assert_eq!(again.json()["state"], "pending");
    assert_eq!(again.json()["attempts"], 0);
    let wrong = app
        .post_json(
            &format!("/v1/webhooks/not-mine/deliveries/{first}/redeliver"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(wrong.status, 404);
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/webhooks/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_checked_when_registered() {
    let app = app().await;
    for (body, field) in [
        (json!({"url": "ftp://example.org/x"}), "url"),
        (json!({"url": "http://user:pw@example.org/x"}), "url"),
        (
            json!({"url": "https://example.org/x", "secret": "short"}),
            "secret",
        ),
    ] {
        let answer = app.post_json("/v1/webhooks", &body, None).await;
        answer.assert_error(422, "invalid_field", Some(field));
    }
    // Made by agentd when not given, and shown once.
    let made = app
        .post_json(
            "/v1/webhooks",
            &json!({"url": "https://example.org/hook"}),
            None,
        )
        .await;
    assert_eq!(made.status, 201);
    assert!(
        made.json()["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let listed = app.get("/v1/webhooks").await;
    assert!(!listed.json().to_string().contains("whsec_"));
    assert_eq!(listed.json()["items"][0]["events"], json!(["status"]));
    app.finish().await;
}

/// A tenant (governed by a policy) tries to point agentd's webhook sender
/// into the operator's network: registering a loopback receiver is refused,
/// and one registered while the policy allowed private hosts gets nothing
/// once the policy no longer does — the sender vets the address again at
/// every attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_aim_webhooks_at_the_operators_network() {
    const ADMIN: &str = "admin-credential-for-webhook-ssrf-0123";
    let app = spawn_app_tuned(
        writing_scenario(),
        2,
        agentd::api::ApiConfig {
            auth: agentd::api::AuthConfig::with_admin(ADMIN),
            ..agentd::api::ApiConfig::default()
        },
        |runner, supervisor| {
            runner.secret_key = Some(
                agentd::tenancy::SecretKey::from_text("a-secret-key-for-the-webhook-test-01234")
                    .unwrap(),
            );
            supervisor.webhooks.interval = Duration::from_millis(100);
            supervisor.webhooks.backoff = Duration::from_millis(100);
            supervisor.webhooks.max_backoff = Duration::from_millis(200);
            supervisor.webhooks.max_attempts = 2;
        },
    )
    .await;
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        app.client
            .request(method, app.url(path))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert_eq!(
        admin(
            reqwest::Method::POST,
            "/v1/admin/tenants",
            json!({"name": "acme"})
        )
        .await
        .unwrap()
        .status(),
        201
    );
    let prefix = app.repo.parent().unwrap().display().to_string();
    let policy =
        |private: bool| json!({"sources": {"local_paths": [prefix], "private_hosts": private}});
    admin(
        reqwest::Method::PUT,
        "/v1/admin/tenants/acme/policy",
        policy(false),
    )
    .await
    .unwrap();
    let issued: Value = body(
        admin(
            reqwest::Method::POST,
            "/v1/admin/tenants/acme/keys",
            json!({}),
        )
        .await
        .unwrap(),
    )
    .await;
    let key = issued["key"].as_str().unwrap().to_string();
    let receiver = Receiver::start(0, SECRET, Behaviour::FailFirst(0)).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let tenant_post = |path: &str, body: Value| {
        app.client
            .post(app.url(path))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://0x7f000001:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let answer = tenant_post("/v1/webhooks", json!({"url": url, "secret": SECRET}))
            .await
            .unwrap();
        assert_eq!(answer.status(), 422, "{url}");
        let body: Value = body(answer).await;
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
    }

    // Allowed for a moment, then not: the sender checks again and sends nothing.
    admin(
        reqwest::Method::PUT,
        "/v1/admin/tenants/acme/policy",
        policy(true),
    )
    .await
    .unwrap();
    let webhook: Value = body(
        tenant_post(
            "/v1/webhooks",
            json!({"url": receiver.url, "secret": SECRET}),
        )
        .await
        .unwrap(),
    )
    .await;
    let id = webhook["id"].as_str().unwrap().to_string();
    admin(
        reqwest::Method::PUT,
        "/v1/admin/tenants/acme/policy",
        policy(false),
    )
    .await
    .unwrap();
    let mut request = app.request("Add a note");
    request["repo"] = json!(app.repo.display().to_string());
    let created: Value = body(tenant_post("/v1/executions", request).await.unwrap()).await;
    assert!(created["id"].is_string(), "{created}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let dead = loop {
        let page: Value = body(
            app.client
                .get(app.url(&format!("/v1/webhooks/{id}/deliveries")))
                .header("authorization", format!("Bearer {key}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let items = page["items"].as_array().unwrap().clone();
        if !items.is_empty() && items.iter().all(|d| d["state"] == "dead") {
            break items;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        dead.iter().all(|d| d["last_error"]
            .as_str()
            .unwrap()
            .contains("no public address")),
        "{dead:?}"
    );
    assert!(receiver.attempts().is_empty(), "the receiver was reached");
    app.finish().await;
}
