//! Only the exact routes the CLI uses pass, matched on the raw request target:
//! every way of walking out of an allowed prefix is refused before upstream.

use serde_json::json;

use crate::support::*;

/// Request targets a hostile sandbox might send, with the method to send them with.
const TRAVERSALS: &[(&str, &str)] = &[
    ("GET", "/v1/models/../files"),
    ("GET", "/v1/models/%2e%2e/files"),
    ("GET", "/v1/models/%2E%2e/files"),
    ("GET", "/v1/models/.%2e/files"),
    ("GET", "/v1/models/%2e./files"),
    ("GET", "/v1/models/../messages/batches"),
    ("GET", "/v1/models/../../etc/passwd"),
    ("GET", "/v1/models/..%2ffiles"),
    ("GET", "/v1/models/%2f..%2ffiles"),
    ("GET", "/v1/models/%2F..%2Ffiles"),
    ("GET", "/v1/models/..%5cfiles"),
    ("GET", "/v1/models/..\\files"),
    ("GET", "/v1/models\\..\\files"),
    ("GET", "/v1/models/./x"),
    ("GET", "/v1/models/."),
    ("GET", "/v1/models/.."),
    ("GET", "/v1/models/"),
    ("GET", "/v1/models/claude%2dsonnet"),
    ("GET", "/v1/models/a/b"),
    ("GET", "/v1/models//files"),
    ("GET", "/v1/models?after_id=../../files"),
    ("GET", "/v1/models?limit=1%26x=y"),
    ("GET", "/v1/files"),
    ("GET", "/v1/messages/batches"),
    ("POST", "/v1/messages/../files"),
    ("POST", "/v1/messages/%2e%2e/files"),
    ("POST", "/v1/messages/./"),
    ("POST", "/v1/messages/"),
    ("POST", "//v1/messages"),
    ("POST", "/v1//messages"),
    ("POST", "/./v1/messages"),
    ("POST", "/v1/messages/batches"),
    ("POST", "/V1/MESSAGES"),
    ("POST", "/v1/messages%3fbeta=true"),
    ("POST", "/v1/messages;x=1"),
    ("POST", "/v1/messages?beta=true&x=../../files"),
    ("POST", "/v1/messages?beta=true&beta=true"),
    ("POST", "/v1/messages?beta=%74rue"),
    ("POST", "/v1/messages?../../files"),
    ("POST", "http://x/v1/files"),
    ("POST", "http://x/v1/messages"),
    ("POST", "http://api.anthropic.com/v1/messages"),
    ("OPTIONS", "*"),
    ("CONNECT", "api.anthropic.com:443"),
    ("PUT", "/v1/messages"),
    ("DELETE", "/v1/models/x"),
];

#[tokio::test]
async fn traversal_and_unlisted_targets_never_reach_upstream() {
    let door = Door::open().await;
    let body = messages_request().to_string();
    for (method, target) in TRAVERSALS {
        let bytes = if *method == "POST" {
            body.as_bytes()
        } else {
            b""
        };
        let request = head(
            method,
            target,
            &[("content-type", "application/json")],
            bytes,
        );
        let (status, text) = raw(&door.path, &request).await;
        assert!(
            (400..500).contains(&status),
            "{method} {target} was answered {status}:\n{text}"
        );
        assert!(
            door.upstream_saw().is_empty(),
            "{method} {target} reached upstream: {:?}",
            door.upstream_saw()
        );
    }
    // The routes the CLI uses still pass, to exactly the path they name.
    let (status, text) = raw(
        &door.path,
        &head("POST", "/v1/messages?beta=true", &[], body.as_bytes()),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let count = json!({"model": "claude-sonnet-4-5",
                       "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let (status, text) = raw(
        &door.path,
        &head(
            "POST",
            "/v1/messages/count_tokens?beta=true",
            &[],
            count.as_bytes(),
        ),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let seen: Vec<(String, String, Option<String>)> = door
        .upstream_saw()
        .into_iter()
        .map(|r| (r.method, r.path, r.query))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "POST".into(),
                "/v1/messages".into(),
                Some("beta=true".into())
            ),
            (
                "POST".into(),
                "/v1/messages/count_tokens".into(),
                Some("beta=true".into())
            ),
        ]
    );
    door.close().await;
}

#[tokio::test]
async fn refusals_are_messages_api_errors_and_reported() {
    let door = Door::open().await;
    let (status, text) = raw(&door.path, &head("GET", "/v1/models/../files", &[], b"")).await;
    assert_eq!(status, 403, "{text}");
    assert_api_error(&text);
    assert!(text.contains("permission_error"), "{text}");
    let exchanges = door.seen.0.lock().unwrap().clone();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].status, Some(403));
    assert_eq!(exchanges[0].path, "/v1/models/../files");
    door.close().await;
}
