//! Forwarding: the sandbox's credential is replaced by the real one, only the Messages API
//! family passes, and upstream failures come back in the Messages API error shape.

use std::sync::Arc;

use agentd::gateway::{Credential, Gateway, ModelLimits, Upstream};
use agentd::scripted::{Scenario, ScriptedModel};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn replaces_the_sandbox_key_and_streams_the_answer() {
    let scenario = Scenario::from_json(
        &json!({"turns": [{"content": [{"type": "text", "text": "hi there"}],
                            "usage": {"input_tokens": 5, "output_tokens": 2}}]})
        .to_string(),
    )
    .unwrap();
    let model = ScriptedModel::start(scenario, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let upstream = Upstream::new(
        &model.base_url(),
        Some(Credential::ApiKey("sk-real-key".into())),
    )
    .unwrap();
    let gateway = Gateway::new(upstream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.sock");
    let seen = Arc::new(Seen::default());
    let socket = gateway
        .open(&path, route(&gateway, seen.clone(), ModelLimits::default()))
        .unwrap();

    let (status, body) = post(
        &path,
        "/v1/messages?beta=true",
        &[
            ("x-api-key", "placeholder"),
            ("authorization", "Bearer sandbox"),
        ],
        messages_request(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("event: message_start"), "{body}");
    assert!(body.contains("\"text_delta\""), "{body}");
    assert!(body.contains("event: message_stop"), "{body}");
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].x_api_key.as_deref(), Some("sk-real-key"));
    assert_eq!(requests[0].authorization, None);
    assert_eq!(requests[0].query.as_deref(), Some("beta=true"));

    // Anything but the Messages API family is refused without reaching upstream.
    let (status, body) = post(&path, "/v1/complete", &[], json!({})).await;
    assert_eq!(status, 403);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "permission_error");
    assert_eq!(model.requests().len(), 1);

    let exchanges = seen.0.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 2);
    assert_eq!(exchanges[0].status, Some(200));
    assert_eq!(exchanges[1].status, Some(403));

    socket.close().await;
    assert!(!path.exists(), "the socket file is removed on close");
    model.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_retryable_api_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gateway = Gateway::new(Upstream::new(&dead, None).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.sock");
    let seen = Arc::new(Seen::default());
    let socket = gateway
        .open(&path, route(&gateway, seen.clone(), ModelLimits::default()))
        .unwrap();

    let (status, body) = post(&path, "/v1/messages", &[], messages_request()).await;
    assert_eq!(status, 502, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["type"], "api_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream unreachable"),
        "{body}"
    );
    assert!(seen.0.lock().unwrap()[0].error.is_some());
    socket.close().await;
}

#[tokio::test]
async fn socket_paths_too_long_for_unix_sockets_are_refused() {
    let gateway = Gateway::new(Upstream::new("http://127.0.0.1:1", None).unwrap()).unwrap();
    let long = std::path::PathBuf::from(format!("/tmp/{}/llm.sock", "x".repeat(120)));
    let error = gateway
        .open(
            &long,
            route(
                &gateway,
                Arc::new(agentd::gateway::NoObserver),
                ModelLimits::default(),
            ),
        )
        .unwrap_err();
    assert!(error.to_string().contains("longer than"), "{error}");
}
