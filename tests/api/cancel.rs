//! Cancelling queued and running executions.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

async fn cancel(app: &App, id: &str) -> Answer {
    read(
        app.client
            .post(app.url(&format!("/v1/executions/{id}/cancel")))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn id_of(execution: &Value) -> String {
    execution["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_execution_cancelled_never_starts() {
    // One slot, taken by an execution that sleeps: the second waits in the queue.
    let app = spawn_app(sleeping_scenario(60), 1).await;
    let running = id_of(&app.submit("sleep").await);
    app.wait_for(&running, Duration::from_secs(120), |e| {
        e["status"] == "running"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.execution(&running).await["status"], "running");
    let queued = id_of(&app.submit("wait your turn").await);
    assert_eq!(app.execution(&queued).await["status"], "queued");

    let answer = cancel(&app, &queued).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    assert_eq!(answer.json()["status"], "cancelled");
    assert_eq!(answer.json()["id"], queued.as_str());

    // Free the slot: the cancelled one must still not start.
    let answer = cancel(&app, &running).await;
    assert_eq!(answer.status, 202);
    app.wait_final(&running).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = app.execution(&queued).await;
    assert_eq!(after["status"], "cancelled", "{after}");
    assert!(after["started_at"].is_null(), "{after}");
    assert!(after["image"].is_null(), "{after}");
    let events = app.events(&queued, None, "").await;
    assert!(
        events.iter().all(|e| e.data["status"] != "preparing"),
        "{events:?}"
    );
    // Cancelling again changes nothing and still answers 202.
    let again = cancel(&app, &queued).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["status"], "cancelled");
    assert_eq!(again.json()["updated_at"], after["updated_at"]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_execution_cancelled_stops_within_five_seconds() {
    let app = spawn_app(sleeping_scenario(120), 2).await;
    let id = id_of(&app.submit("sleep long").await);
    // Running, and (after a moment) the agent is inside its Bash call.
    app.wait_for(&id, Duration::from_secs(120), |e| e["status"] == "running")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let filter = format!("label=agentd.execution={id}");
    assert!(
        !docker(&["ps", "-q", "--filter", &filter]).trim().is_empty(),
        "the sandbox runs: {}",
        app.execution(&id).await
    );

    let asked = Instant::now();
    let answer = cancel(&app, &id).await;
    assert_eq!(answer.status, 202, "{}", answer.json());
    assert_eq!(answer.json()["cancel_requested"], true);
    let done = app.wait_for(&id, Duration::from_secs(5), is_final).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert_nothing_left(&id);

    let again = cancel(&app, &id).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["status"], "cancelled");
    app.finish().await;
}
