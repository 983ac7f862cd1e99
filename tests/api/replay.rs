//! Recording an execution's model exchanges, then replaying them by id.

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_execution_replays_by_id_to_the_same_diff() {
    let app = spawn_app(writing_scenario(), 2).await;
    let mut request = app.request("Add a note");
    request["record"] = true.into();
    let recorded = app.post_json("/v1/executions", &request, None).await;
    assert_eq!(recorded.status, 202, "{}", recorded.json());
    let source = recorded.json()["id"].as_str().unwrap().to_string();
    let done = app.wait_final(&source).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["record"], true);
    let original = app.get(&format!("/v1/executions/{source}/diff")).await;
    assert_eq!(original.status, 200);
    let requests_to_model = app.model.requests().len();

    let mut replay = app.request("Add a note");
    replay["replay"] = source.clone().into();
    let replayed = app.post_json("/v1/executions", &replay, None).await;
    assert_eq!(replayed.status, 202, "{}", replayed.json());
    let id = replayed.json()["id"].as_str().unwrap().to_string();
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["replay"], source.as_str());
    let diff = app.get(&format!("/v1/executions/{id}/diff")).await;
    assert_eq!(
        diff.bytes, original.bytes,
        "the replay made the same change"
    );
    assert_eq!(
        app.model.requests().len(),
        requests_to_model,
        "the replay never called the model"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_must_name_a_recorded_execution_of_the_tenant() {
    let app = spawn_app(writing_scenario(), 1).await;
    for replay in [
        "/etc/passwd",
        "../../../../etc/passwd",
        "01900000-0000-7000-8000-000000000000",
    ] {
        let mut request = app.request("x");
        request["replay"] = replay.into();
        app.post_json("/v1/executions", &request, None)
            .await
            .assert_error(422, "invalid_field", Some("replay"));
    }
    // An execution that did not record has no cassette to replay.
    let plain = app
        .post_json("/v1/executions", &app.request("plain"), None)
        .await;
    let id = plain.json()["id"].as_str().unwrap().to_string();
    app.wait_final(&id).await;
    let mut request = app.request("x");
    request["replay"] = id.into();
    app.post_json("/v1/executions", &request, None)
        .await
        .assert_error(422, "invalid_field", Some("replay"));
    app.finish().await;
}
