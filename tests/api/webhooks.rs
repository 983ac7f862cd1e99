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
