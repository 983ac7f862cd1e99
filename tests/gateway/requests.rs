//! Only what the CLI needs passes: an allow-list of headers with bounded
//! values, a bounded request line and head, and a bounded body that must be a
//! Messages request, all checked before upstream sees a byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd::gateway::{Credential, Gateway, GatewayLimits, ModelLimits, Upstream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Headers the real CLI (Claude Code 2.1.330) sends, captured from a run.
const CLI_HEADERS: &[(&str, &str)] = &[
    ("accept", "application/json"),
    ("user-agent", "claude-cli/2.1.330 (external, sdk-cli)"),
    (
        "x-claude-code-session-id",
        "e306c314-26a2-401b-a332-d966438710c0",
    ),
    ("x-stainless-arch", "x64"),
    ("x-stainless-lang", "js"),
    ("x-stainless-os", "Linux"),
    ("x-stainless-package-version", "0.128.0"),
    ("x-stainless-retry-count", "0"),
    ("x-stainless-runtime", "node"),
    ("x-stainless-runtime-version", "v26.12.1"),
    ("x-stainless-timeout", "600"),
    (
        "anthropic-beta",
        "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
    ),
    ("anthropic-dangerous-direct-browser-access", "true"),
    ("anthropic-version", "2023-06-01"),
    ("x-app", "cli"),
];

/// Headers a sandbox may add that must never reach upstream.
const FOREIGN_HEADERS: &[(&str, &str)] = &[
    ("cookie", "session=stolen"),
    ("x-forwarded-for", "10.0.0.1"),
    ("x-forwarded-host", "evil.example"),
    ("forwarded", "for=10.0.0.1"),
    ("x-real-ip", "10.0.0.1"),
    ("via", "1.1 sandbox"),
    ("origin", "http://evil.example"),
    ("referer", "http://evil.example/"),
    ("anthropic-workspace-id", "wrkspc_other"),
    ("x-organization-uuid", "org-other"),
    ("proxy-authorization", "Basic Zm9vOmJhcg=="),
    ("x-api-key", "sk-sandbox"),
    ("authorization", "Bearer sandbox"),
    ("x-custom-exfiltration", "payload"),
    ("expect-ct", "x"),
    ("if-none-match", "*"),
];

/// What the gateway itself may add towards upstream.
const GATEWAY_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept-encoding",
    "x-api-key",
];

#[tokio::test]
async fn only_the_cli_headers_reach_upstream() {
    let door = Door::open().await;
    let mut headers: Vec<(&str, &str)> = CLI_HEADERS.to_vec();
    headers.extend_from_slice(FOREIGN_HEADERS);
    let (status, body) = post(
        &door.path,
        "/v1/messages?beta=true",
        &headers,
        messages_request(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = door.upstream_saw();
    assert_eq!(seen.len(), 1);
    for (name, value) in &seen[0].headers {
        let from_cli = CLI_HEADERS.iter().any(|(n, v)| n == name && v == value);
        assert!(
            from_cli || GATEWAY_HEADERS.contains(&name.as_str()),
            "upstream received {name}: {value}"
        );
    }
    for (name, value) in CLI_HEADERS {
        assert!(
            seen[0].headers.iter().any(|(n, v)| n == name && v == value),
            "{name} was not forwarded: {:?}",
            seen[0].headers
        );
    }
    assert_eq!(seen[0].x_api_key.as_deref(), Some("sk-real-key"));
    door.close().await;
}

#[tokio::test]
async fn unbounded_or_malformed_header_values_are_refused() {
    let door = Door::open().await;
    let body = messages_request().to_string();
    let long_beta = "b".repeat(8 << 10);
    let cases: Vec<(&str, String)> = vec![
        ("anthropic-beta", long_beta),
        ("user-agent", "u".repeat(4 << 10)),
        ("anthropic-version", "2023\t06-01".to_string()),
    ];
    for (name, value) in &cases {
        let (status, text) = raw(
            &door.path,
            &head("POST", "/v1/messages", &[(name, value)], body.as_bytes()),
        )
        .await;
        assert_eq!(status, 400, "{name}: {text}");
        assert_api_error(&text);
    }
    // A value that is not text at all.
    let mut request =
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nconnection: close\r\nuser-agent: \xff\xfe\r\n"
            .to_vec();
    request.extend_from_slice(format!("content-length: {}\r\n\r\n{body}", body.len()).as_bytes());
    let (status, text) = raw(&door.path, &request).await;
    assert!((400..500).contains(&status), "{text}");
    assert!(door.upstream_saw().is_empty(), "{:?}", door.upstream_saw());
    door.close().await;
}

#[tokio::test]
async fn an_oversize_request_line_or_head_is_refused() {
    let door = Door::open().await;
    let body = messages_request().to_string();
    let long_target = format!("/v1/messages?beta=true&pad={}", "a".repeat(40 << 10));
    let (status, text) = raw(
        &door.path,
        &head("POST", &long_target, &[], body.as_bytes()),
    )
    .await;
    assert!(matches!(status, 414 | 431), "{status}: {text}");
    let pads: Vec<(String, String)> = (0..40)
        .map(|i| (format!("x-pad-{i}"), "p".repeat(1000)))
        .collect();
    let pads: Vec<(&str, &str)> = pads.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (status, text) = raw(
        &door.path,
        &head("POST", "/v1/messages", &pads, body.as_bytes()),
    )
    .await;
    assert_eq!(status, 431, "{text}");
    let many: Vec<(String, String)> = (0..150).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (status, text) = raw(
        &door.path,
        &head("POST", "/v1/messages", &many, body.as_bytes()),
    )
    .await;
    assert!((400..500).contains(&status), "{status}: {text}");
    assert!(door.upstream_saw().is_empty(), "{:?}", door.upstream_saw());
    door.close().await;
}

#[tokio::test]
async fn an_oversize_or_unframed_body_is_refused_before_upstream() {
    let door = Door::open().await;
    // Over the Messages API's 32 MB request limit: refused from the head alone,
    // without waiting for (or forwarding) a byte of the body.
    let head_only = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"model\":",
        (32u64 << 20) + 1
    );
    let started = Instant::now();
    let (status, text) = raw(&door.path, head_only.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert_api_error(&text);
    assert!(started.elapsed() < Duration::from_secs(5));
    // A 500 MB declaration is refused the same way.
    let huge = head_only.replace(&((32u64 << 20) + 1).to_string(), "524288000");
    let (status, text) = raw(&door.path, huge.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    // A body without a length (chunked) is refused: the CLI always sends one.
    let body = messages_request().to_string();
    let chunked = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (status, text) = raw(&door.path, chunked.as_bytes()).await;
    assert_eq!(status, 411, "{text}");
    // A GET carries no body.
    let (status, text) = raw(&door.path, &head("GET", "/v1/models", &[], b"{\"x\":1}")).await;
    assert_eq!(status, 400, "{text}");
    assert!(door.upstream_saw().is_empty(), "{:?}", door.upstream_saw());
    door.close().await;
}

#[tokio::test]
async fn a_body_that_is_not_a_messages_request_never_reaches_upstream() {
    let door = Door::open().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<(&str, String)> = vec![
        ("/v1/messages", "not json".into()),
        ("/v1/messages", "[]".into()),
        ("/v1/messages", "\"text\"".into()),
        ("/v1/messages", json!({"model": "m"}).to_string()),
        ("/v1/messages", json!({"messages": []}).to_string()),
        (
            "/v1/messages",
            json!({"model": 1, "messages": []}).to_string(),
        ),
        (
            "/v1/messages",
            json!({"model": "", "messages": []}).to_string(),
        ),
        (
            "/v1/messages",
            json!({"model": "m", "messages": {}}).to_string(),
        ),
        (
            "/v1/messages",
            json!({"model": "m".repeat(1000), "messages": []}).to_string(),
        ),
        (
            "/v1/messages",
            r#"{"model":"m","messages":[]} trailing"#.into(),
        ),
        (
            "/v1/messages",
            r#"{"model":"a","model":"b","messages":[]}"#.into(),
        ),
        ("/v1/messages", r#"["m", []]"#.into()),
        (
            "/v1/messages",
            format!(r#"{{"model":"m","messages":{deep}}}"#),
        ),
        ("/v1/messages", String::new()),
        ("/v1/messages/count_tokens", "{}".into()),
        (
            "/v1/messages/count_tokens",
            json!({"model": "m"}).to_string(),
        ),
    ];
    for (path, body) in &bodies {
        let (status, text) = raw(
            &door.path,
            &head(
                "POST",
                path,
                &[("content-type", "application/json")],
                body.as_bytes(),
            ),
        )
        .await;
        assert_eq!(status, 400, "{path} {body:.80}: {text}");
        assert_api_error(&text);
        assert!(text.contains("invalid_request_error"), "{text}");
    }
    assert!(door.upstream_saw().is_empty(), "{:?}", door.upstream_saw());
    door.close().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused() {
    let limit = Duration::from_secs(2);
    let door = Door::open_with(GatewayLimits {
        body_read_timeout: limit,
        ..GatewayLimits::default()
    })
    .await;
    let body = messages_request().to_string();
    // The head and half the body, then nothing: the gateway gives up on it.
    let mut request = head("POST", "/v1/messages", &[], body.as_bytes());
    request.truncate(request.len() - body.len() / 2);
    let started = Instant::now();
    let (status, text) = raw_within(&door.path, &request, Duration::from_secs(60)).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    assert!(door.upstream_saw().is_empty(), "{:?}", door.upstream_saw());
    door.close().await;
}

#[tokio::test]
async fn a_request_that_reaches_past_the_sandbox_never_reaches_upstream() {
    let door = Door::open().await;
    let with = |extra: Value| {
        let mut body = messages_request();
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let bodies = [
        with(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
        with(json!({"tools": [{"type": "web_fetch_20250910", "name": "web_fetch"}]})),
        with(json!({"tools": [{"type": "code_execution_20250825", "name": "code_execution"}]})),
        with(
            json!({"mcp_servers": [{"type": "url", "url": "https://evil.example/sse", "name": "x"}]}),
        ),
        with(json!({"container": "container_011"})),
        with(json!({"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": "file_011"}}]}]})),
    ];
    for body in &bodies {
        let (status, text) = post(&door.path, "/v1/messages", &[], body.clone()).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains("reach the network"), "{text}");
    }
    assert!(door.upstream_saw().is_empty(), "{:?}", door.upstream_saw());
    door.close().await;
}

#[tokio::test]
async fn only_the_answer_headers_the_cli_reads_come_back() {
    // An upstream that answers with headers the sandbox has no business seeing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let _ = stream.read(&mut buffer).await;
                let body = r#"{"type":"message","role":"assistant","model":"m","content":[],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_1\r\n\
                     anthropic-ratelimit-requests-limit: 50\r\nretry-after: 3\r\n\
                     anthropic-organization-id: org-secret\r\nset-cookie: session=abc\r\n\
                     x-internal-route: cell-7\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    let upstream = Upstream::new(
        &format!("http://{address}"),
        Some(Credential::ApiKey("k".into())),
    )
    .unwrap();
    let gateway = Gateway::new(upstream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llm.sock");
    let socket = gateway
        .open(
            &path,
            route(&gateway, Arc::new(Seen::default()), ModelLimits::default()),
        )
        .unwrap();
    let (status, text) = raw(
        &path,
        &head(
            "POST",
            "/v1/messages",
            &[],
            messages_request().to_string().as_bytes(),
        ),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let headers = text.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    for kept in [
        "content-type: application/json",
        "request-id: req_1",
        "anthropic-ratelimit-requests-limit: 50",
        "retry-after: 3",
    ] {
        assert!(headers.contains(kept), "{kept} missing:\n{headers}");
    }
    for dropped in ["org-secret", "set-cookie", "x-internal-route"] {
        assert!(
            !headers.contains(dropped),
            "{dropped} forwarded:\n{headers}"
        );
    }
    socket.close().await;
}
