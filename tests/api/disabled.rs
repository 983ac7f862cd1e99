//! A disabled tenant spends nothing more: its keys stop, and so do the
//! executions it queued or started before.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::policy::{admin, local_paths, service, tenant};
use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_tenant_stops_its_queued_and_running_executions() {
    let (app, key) = service(sleeping_scenario(90)).await;
    let admin = admin(&app);
    admin
        .ok(
            "put",
            "/v1/admin/tenants/t/policy",
            json!({"sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    let t = tenant(&app, &key);
    // Two slots: two run, the third waits in the queue.
    let mut ids = Vec::new();
    for prompt in ["one", "two", "three"] {
        let answer = t.submit(&app.request(prompt)).await;
        assert_eq!(answer.status, 202, "{}", answer.json());
        ids.push(answer.json()["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    admin
        .ok("post", "/v1/admin/tenants/t/disable", json!({}))
        .await;

    let store = app.supervisor.store().clone();
    let started = Instant::now();
    for id in &ids {
        loop {
            let record = store.get_execution(None, id).await.unwrap().unwrap();
            if record.status.is_final() {
                assert_eq!(record.status.as_str(), "cancelled", "{id}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(45),
                "{id} is still {} after its tenant was disabled",
                record.status.as_str()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    app.finish().await;
}
