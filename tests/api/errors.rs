//! Every refusal answers `{"error":{"code","message","field"?}}` with the
//! right status and names what to fix.

use serde_json::{Value, json};

use crate::support::*;

async fn post_raw(app: &App, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    let mut request = app.client.post(app.url("/v1/executions")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    read(request.send().await.unwrap()).await
}

fn with(mut request: Value, pointer: &str, value: Value) -> Value {
    let mut target = &mut request;
    let mut keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let last = keys.pop().unwrap();
    for key in keys {
        if !target[key].is_object() {
            target[key] = json!({});
        }
        target = &mut target[key];
    }
    target[last] = value;
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_do_not_fit_are_refused_naming_the_field() {
    let app = spawn_app(writing_scenario(), 0).await;
    let good = app.request("fine");
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            with(good.clone(), "/bogus", json!(1)),
            400,
            "invalid_body",
            "bogus",
        ),
        (
            with(good.clone(), "/agent/max_turns", json!("three")),
            400,
            "invalid_body",
            "agent.max_turns",
        ),
        (
            with(good.clone(), "/limits/cpu", json!(2)),
            400,
            "invalid_body",
            "limits.cpu",
        ),
        (
            with(good.clone(), "/limits/timeout", json!("ten minutes")),
            400,
            "invalid_body",
            "limits.timeout",
        ),
        (
            json!({"repo": app.repo.display().to_string()}),
            400,
            "invalid_body",
            "prompt",
        ),
        (
            with(good.clone(), "/prompt", json!(" ")),
            422,
            "invalid_field",
            "prompt",
        ),
        (
            with(good.clone(), "/prompt", json!("x".repeat(100 * 1024 + 1))),
            422,
            "invalid_field",
            "prompt",
        ),
        (
            with(good.clone(), "/limits/pids", json!(1)),
            422,
            "invalid_field",
            "limits.pids",
        ),
        (
            with(good.clone(), "/limits/memory_bytes", json!(1024)),
            422,
            "invalid_field",
            "limits.memory_bytes",
        ),
        (
            with(good.clone(), "/agent/max_turns", json!(0)),
            422,
            "invalid_field",
            "agent.max_turns",
        ),
        (
            with(good.clone(), "/repo", json!("-oops")),
            422,
            "invalid_field",
            "repo",
        ),
        // Branch names git would refuse, or that need an id not given.
        (
            with(good.clone(), "/branch_template", json!("agent/../x")),
            422,
            "invalid_field",
            "branch_template",
        ),
        (
            with(good.clone(), "/branch_template", json!("agent/{agent_id}")),
            422,
            "invalid_field",
            "branch_template",
        ),
        (
            with(
                good.clone(),
                "/branch_template",
                json!("{tenant}".repeat(5)),
            ),
            422,
            "invalid_field",
            "branch_template",
        ),
        (
            with(good.clone(), "/agent_id", json!("a b")),
            422,
            "invalid_field",
            "agent_id",
        ),
        (
            with(good.clone(), "/task_id", json!("-x")),
            422,
            "invalid_field",
            "task_id",
        ),
    ];
    for (body, status, code, field) in cases {
        let answer = app.post_json("/v1/executions", &body, None).await;
        answer.assert_error(status, code, Some(field));
    }

    // A duration written as seconds or as text is accepted.
    for timeout in [json!(90), json!("10m")] {
        let answer = app
            .post_json(
                "/v1/executions",
                &with(good.clone(), "/limits/timeout", timeout),
                None,
            )
            .await;
        assert_eq!(answer.status, 202, "{}", answer.json());
    }

    let answer = post_raw(&app, Some("application/json"), b"{\"repo\": ".to_vec()).await;
    answer.assert_error(400, "malformed_json", None);
    let answer = post_raw(&app, Some("text/plain"), good.to_string().into_bytes()).await;
    answer.assert_error(415, "unsupported_media_type", None);
    let answer = post_raw(&app, None, good.to_string().into_bytes()).await;
    answer.assert_error(415, "unsupported_media_type", None);
    let mut huge = with(good.clone(), "/context_file", json!("y".repeat(2 << 20)));
    huge["prompt"] = json!("big");
    let answer = post_raw(
        &app,
        Some("application/json"),
        huge.to_string().into_bytes(),
    )
    .await;
    answer.assert_error(413, "body_too_large", None);
    // Without a Content-Length, the limit holds while reading.
    let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512 * 1024]));
    let answer = read(
        app.client
            .post(app.url("/v1/executions"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(413, "body_too_large", None);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_headers_parameters_ids_and_routes_are_refused() {
    let app = spawn_app(writing_scenario(), 0).await;
    let good = app.request("fine");
    for key in ["has space", &"k".repeat(256), "tab\there", "ключ"] {
        let request = app
            .client
            .post(app.url("/v1/executions"))
            .header("content-type", "application/json")
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap(),
            )
            .body(good.to_string());
        let answer = read(request.send().await.unwrap()).await;
        answer.assert_error(400, "invalid_header", Some("Idempotency-Key"));
    }

    for (query, field) in [
        ("status=sleeping", "status"),
        ("status=", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("stauts=queued", "stauts"),
    ] {
        let answer = app.get(&format!("/v1/executions?{query}")).await;
        answer.assert_error(400, "invalid_parameter", Some(field));
    }

    let unknown = "0190f3c4-0000-7000-8000-000000000000";
    for path in [
        "",
        "/events",
        "/diff",
        "/bundle",
        "/artifacts",
        "/artifacts/a.txt",
    ] {
        let answer = app.get(&format!("/v1/executions/{unknown}{path}")).await;
        answer.assert_error(404, "not_found", None);
    }
    let answer = read(
        app.client
            .post(app.url(&format!("/v1/executions/{unknown}/cancel")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(404, "not_found", None);

    app.get("/v2/nothing")
        .await
        .assert_error(404, "not_found", None);
    app.get("/").await.assert_error(404, "not_found", None);
    let answer = read(
        app.client
            .delete(app.url("/v1/executions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(405, "method_not_allowed", None);

    let id = app.submit("queued forever").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = read(
        app.client
            .get(app.url(&format!("/v1/executions/{id}/events")))
            .header("Last-Event-ID", "seven")
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(400, "invalid_header", Some("Last-Event-ID"));
    let answer = app
        .get(&format!("/v1/executions/{id}/events?after=-1"))
        .await;
    answer.assert_error(400, "invalid_parameter", Some("after"));
    app.get(&format!("/v1/executions/{id}/diff"))
        .await
        .assert_error(404, "not_found", None);
    app.finish().await;
}

/// What hyper answers by itself (a head it cannot parse, a target or headers
/// larger than it reads) had an empty body (issue 10): the same JSON shape as
/// every other error, sent over a raw connection as a client might.
#[tokio::test(flavor = "multi_thread")]
async fn requests_http_cannot_read_get_the_json_error_shape() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(writing_scenario(), 0).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let long_target = format!(
        "GET /v1/executions?repo={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let large_headers = format!(
        "GET /v1/executions HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\n\r\n",
        "b".repeat(500 * 1024)
    );
    let many_headers = format!(
        "GET /v1/executions HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..150)
            .map(|n| format!("x-h{n}: 1\r\n"))
            .collect::<String>()
    );
    for (request, status, code) in [
        (long_target, 414, "uri_too_long"),
        (large_headers, 431, "headers_too_large"),
        (many_headers, 431, "headers_too_large"),
        (
            "GET /v1/executions HTTP/1.1\r\nbad header\r\n\r\n".to_string(),
            400,
            "malformed_request",
        ),
        ("NOT\tHTTP\r\n\r\n".to_string(), 400, "malformed_request"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        // The server may answer and close before all of it is sent.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("the server answers and closes");
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("{answer}"));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
        assert_eq!(json["error"]["code"], code, "{json}");
        assert!(
            json["error"]["message"].as_str().unwrap().len() > 10,
            "{json}"
        );
    }
    // The server still serves.
    assert_eq!(app.get("/healthz").await.status, 200);
    app.finish().await;
}
