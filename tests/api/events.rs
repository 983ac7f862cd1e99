//! The event log as Server-Sent Events, read with a real SSE client.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// A scenario slow enough (a pause before each answer) that clients connect
/// while it runs.
fn paced_scenario() -> serde_json::Value {
    let mut scenario = writing_scenario();
    for turn in scenario["turns"].as_array_mut().unwrap() {
        turn["delay_ms"] = json!(400);
    }
    scenario
}

fn assert_complete_log(events: &[Sse]) {
    assert!(!events.is_empty());
    let ids: Vec<u64> = events.iter().map(|e| e.id.parse().unwrap()).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(ids, expected, "ids are consecutive from 1");
    for event in events {
        assert_eq!(event.data["seq"].to_string(), event.id);
        assert_eq!(event.data["type"], event.event.as_str());
        assert!(event.data["at"].is_string());
    }
    let last = events.last().unwrap();
    assert_eq!(last.event, "status");
    assert_eq!(last.data["source"], "agentd");
    assert_eq!(last.data["status"], "succeeded", "{events:#?}");
    assert_eq!(events[0].data["status"], "preparing");
    assert!(events.iter().any(|e| e.event == "tool_call"));
}

#[tokio::test(flavor = "multi_thread")]
async fn live_clients_see_the_whole_log_and_late_ones_can_resume() {
    let app = spawn_app(paced_scenario(), 4).await;
    let id = app.submit("Add a note").await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Two clients at once, from the start, while it runs.
    let (first, second) = tokio::join!(app.events(&id, None, ""), app.events(&id, None, ""));
    assert_complete_log(&first);
    assert_eq!(first, second, "concurrent clients see the same sequence");
    let execution = app.execution(&id).await;
    assert_eq!(execution["status"], "succeeded");

    // After the end: the whole log, then the stream ends.
    let late = app.events(&id, None, "").await;
    assert_eq!(late, first);

    // Resuming returns exactly the rest.
    let k = first.len() / 2;
    let rest = app.events(&id, Some(&k.to_string()), "").await;
    assert_eq!(rest, first[k..].to_vec());
    let rest = app.events(&id, None, &format!("?after={k}")).await;
    assert_eq!(rest, first[k..].to_vec());
    // The header wins over the query (a reconnecting EventSource keeps its URL).
    let rest = app
        .events(&id, Some(&(k + 1).to_string()), &format!("?after={k}"))
        .await;
    assert_eq!(rest, first[k + 1..].to_vec());
    let none = app.events(&id, Some(&first.len().to_string()), "").await;
    assert!(none.is_empty());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_resuming_mid_run_gets_the_rest_without_repeats() {
    let app = spawn_app(paced_scenario(), 4).await;
    let id = app.submit("Add a note").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Read the first two events, then drop the connection.
    let response = app
        .client
        .get(app.url(&format!("/v1/executions/{id}/events")))
        .send()
        .await
        .unwrap();
    let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = tokio::time::timeout(
            Duration::from_secs(120),
            futures::StreamExt::next(&mut stream),
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
        seen.push(event.id);
    }
    drop(stream);
    assert_eq!(seen, vec!["1", "2"]);
    let rest = app.events(&id, Some("2"), "").await;
    assert_eq!(rest.first().map(|e| e.id.as_str()), Some("3"));
    let full = app.events(&id, None, "").await;
    assert_complete_log(&full);
    assert_eq!(rest, full[2..].to_vec());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutting_down_ends_open_streams() {
    let app = spawn_app(writing_scenario(), 0).await;
    let id = app.submit("never runs").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = app.url(&format!("/v1/executions/{id}/events"));
    let client = app.client.clone();
    let reader = tokio::spawn(async move {
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut stream = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
        let mut count = 0;
        while let Some(event) = futures::StreamExt::next(&mut stream).await {
            if event.is_err() {
                break;
            }
            count += 1;
        }
        count
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !reader.is_finished(),
        "a queued execution's stream stays open"
    );
    let started = std::time::Instant::now();
    app.finish().await;
    let count = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the stream ended with the server")
        .unwrap();
    assert_eq!(count, 0);
    assert!(started.elapsed() < Duration::from_secs(10));
}
