//! The webhook outbox survives `kill -9` (issue 11): an execution's status
//! deliveries are due while the receiver is down; agentd is killed; the
//! receiver comes up and agentd starts again on the same database; every
//! delivery arrives, signed, exactly as the outbox held it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::receiver::{Behaviour, Receiver};
use crate::support::*;

const SECRET: &str = "whsec_kill9_secret_0123456789";
const KEY: &str = "a-secret-key-for-the-outbox-test-0123456";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_survives_kill_9_and_delivers_after_restart() {
    let world = World::new(json!({
        "turns": [{"content": [{"type": "text", "text": "Nothing to do."}],
                   "usage": {"input_tokens": 1, "output_tokens": 1}}]
    }));
    let port = crate::common::remotes::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let env = [("AGENTD_SECRET_KEY", KEY)];
    let flags = ["--webhook-backoff", "200ms", "--webhook-timeout", "1s"];
    let mut first = world.serve_with(&world.data_dir(), &world.run_dir(), &flags, &env);
    let http = reqwest::Client::new();
    let registered = http
        .post(format!("{}/v1/webhooks", first.url))
        .header("content-type", "application/json")
        .body(json!({"url": url, "secret": SECRET}).to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let registered: serde_json::Value = serde_json::from_slice(&registered).unwrap();
    let webhook = registered["id"].as_str().unwrap().to_string();
    let id = first.submit(&world.request("nothing")).await;
    let started = Instant::now();
    loop {
        let execution = first.client.execution(&id).await.unwrap();
        if execution.status.is_final() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pending = |base: String| {
        let http = http.clone();
        let webhook = webhook.clone();
        async move {
            let page = http
                .get(format!("{base}/v1/webhooks/{webhook}/deliveries"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let page: serde_json::Value = serde_json::from_slice(&page).unwrap();
            page["items"].as_array().unwrap().clone()
        }
    };
    let before = pending(first.url.clone()).await;
    assert!(before.len() >= 3, "status deliveries queued: {before:?}");
    assert!(before.iter().all(|d| d["state"] == "pending"), "{before:?}");
    first.kill_9();

    let receiver = Receiver::start(port, SECRET, Behaviour::FailFirst(0)).await;
    let second = world.serve_with(&world.data_dir(), &world.run_dir(), &flags, &env);
    let started = Instant::now();
    loop {
        let all = pending(second.url.clone()).await;
        if all.iter().all(|d| d["state"] == "delivered") {
            assert_eq!(all.len(), before.len());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not delivered after the restart: {all:?}\n{}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = receiver.accepted();
    assert_eq!(receiver.forged(), 0);
    let mut ids: Vec<i64> = accepted
        .iter()
        .map(|d| d["delivery_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        before.len(),
        "each delivery arrived: {accepted:?}"
    );
    let last = accepted
        .iter()
        .filter(|d| d["type"] == "status")
        .map(|d| d["event"]["status"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(last.iter().any(|s| s == "succeeded"), "{last:?}");
}
