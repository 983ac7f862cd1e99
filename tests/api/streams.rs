//! Event streams with bounded memory: clients that never read hold a bounded
//! share of agentd's memory whatever the size of the events, the memory comes
//! back when they leave, and streams are capped per tenant and in all.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// Resident memory of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Forty turns of three 50 KB text blocks: a log of about 6 MB in large events.
fn large_events() -> Value {
    let block = |n: usize| json!({"type": "text", "text": format!("{n}:{}", "x".repeat(50_000))});
    let turns: Vec<Value> = (0..40)
        .map(|turn| {
            json!({"content": [
                {"type": "tool_use", "name": "Bash",
                 "input": {"command": format!("echo turn {turn}"), "description": "step"}},
                block(turn * 3), block(turn * 3 + 1), block(turn * 3 + 2)],
                "usage": {"input_tokens": 10, "output_tokens": 5}})
        })
        .chain([json!({"content": [{"type": "text", "text": "Done."}],
                       "usage": {"input_tokens": 10, "output_tokens": 5}})])
        .collect();
    json!({"turns": turns})
}

/// An SSE client that sends its request and never reads (a small receive window).
async fn idle_client(app: &App, id: &str) -> tokio::net::TcpStream {
    let address: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /v1/executions/{id}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Clients that never read, as many as issue 10 asks for.
const IDLE_CLIENTS: usize = 100;

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_never_read_hold_bounded_memory_and_give_it_back() {
    let app = spawn_app(large_events(), 1).await;
    let id = app.submit("talk a lot").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let events = app.events(&id, None, "").await;
    let log_bytes: usize = events.iter().map(|e| e.data.to_string().len()).sum();
    assert!(
        log_bytes > 2_000_000,
        "the log should be large: {log_bytes} bytes"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    let mut clients = Vec::new();
    for _ in 0..IDLE_CLIENTS {
        clients.push(idle_client(&app, &id).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // What agentd itself holds for them, by its own count: at most each
    // stream's budget, though each reader is owed the whole log. (Once the
    // sockets' buffers are full the streams stop: held bytes appear.)
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (streams, bytes) = loop {
        let metrics = crate::metrics::scrape(&app, None).await;
        let streams = crate::metrics::total(&metrics, "agentd_event_streams", &[]);
        let bytes = crate::metrics::total(&metrics, "agentd_event_stream_bytes", &[]);
        if bytes > 0.0 || std::time::Instant::now() > deadline {
            break (streams, bytes);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(streams, IDLE_CLIENTS as f64);
    assert!(bytes > 0.0, "the idle readers were handed nothing");
    assert!(
        bytes <= (IDLE_CLIENTS * agentd::api::STREAM_BYTES) as f64,
        "{bytes} bytes held for {IDLE_CLIENTS} streams of at most {} each",
        agentd::api::STREAM_BYTES
    );
    let held = rss().saturating_sub(before);
    let per_client = held / IDLE_CLIENTS as u64;
    eprintln!(
        "{IDLE_CLIENTS} idle clients on a {log_bytes}-byte log: +{} KiB RSS, {} KiB each; {bytes} bytes of events held",
        held >> 10,
        per_client >> 10
    );
    assert!(
        (per_client as usize) < log_bytes / 2,
        "each idle client holds {per_client} bytes, near the whole log ({log_bytes})"
    );
    drop(clients);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = crate::metrics::scrape(&app, None).await;
    assert_eq!(
        crate::metrics::total(&metrics, "agentd_event_streams", &[]),
        0.0
    );
    assert_eq!(
        crate::metrics::total(&metrics, "agentd_event_stream_bytes", &[]),
        0.0
    );
    let after = rss();
    assert!(
        after < before + (24 << 20),
        "memory did not come back: {before} before, {after} after the clients left"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_beyond_the_caps_are_refused_with_retry_after() {
    let config = agentd::api::ApiConfig {
        stream_caps: agentd::api::StreamCaps {
            total: 3,
            per_tenant: 2,
        },
        ..agentd::api::ApiConfig::default()
    };
    let app = spawn_app_configured(sleeping_scenario(60), 1, config).await;
    let id = app.submit("sleep").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let open = |app: &App| {
        app.client
            .get(app.url(&format!("/v1/executions/{id}/events")))
            .header("accept", "text/event-stream")
            .send()
    };
    let first = open(&app).await.unwrap();
    let second = open(&app).await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = read(open(&app).await.unwrap()).await;
    third.assert_error(429, "too_many_streams", None);
    assert_eq!(third.header("retry-after"), Some("5"));
    // A closed stream frees its slot.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = open(&app).await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    drop((second, again));
    let _ = app
        .post_json(&format!("/v1/executions/{id}/cancel"), &json!({}), None)
        .await;
    app.wait_final(&id).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_at_its_stream_cap_leaves_other_tenants_theirs() {
    use crate::policy::{ADMIN, admin, local_paths, service_with, tenant};
    let config = agentd::api::ApiConfig {
        stream_caps: agentd::api::StreamCaps {
            total: 10,
            per_tenant: 1,
        },
        ..agentd::api::ApiConfig::default()
    };
    let (app, t_key) = service_with(sleeping_scenario(60), config).await;
    let admin = admin(&app);
    admin
        .ok(
            "put",
            "/v1/admin/policy",
            json!({"sources": {"local_paths": local_paths(&app)}}),
        )
        .await;
    admin
        .ok("post", "/v1/admin/tenants", json!({"name": "u"}))
        .await;
    let u_key = admin
        .ok("post", "/v1/admin/tenants/u/keys", json!({}))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let submit = |key: String| {
        let app = &app;
        async move {
            let answer = tenant(app, &key).submit(&app.request("sleep")).await;
            assert_eq!(answer.status, 202, "{}", answer.json());
            answer.json()["id"].as_str().unwrap().to_string()
        }
    };
    let t_id = submit(t_key.clone()).await;
    let u_id = submit(u_key.clone()).await;
    let open = |key: &str, id: &str| {
        app.client
            .get(app.url(&format!("/v1/executions/{id}/events")))
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    let held = open(&t_key, &t_id).await.unwrap();
    assert_eq!(held.status().as_u16(), 200);
    read(open(&t_key, &t_id).await.unwrap())
        .await
        .assert_error(429, "too_many_streams", None);
    // Another tenant's execution is not there for U, and asking costs no slot…
    read(open(&u_key, &t_id).await.unwrap())
        .await
        .assert_error(404, "not_found", None);
    // …and T's full share takes nothing from U's.
    let other = open(&u_key, &u_id).await.unwrap();
    assert_eq!(other.status().as_u16(), 200);
    drop((held, other));
    for id in [&t_id, &u_id] {
        let cancelled = app
            .client
            .post(app.url(&format!(
                "/v1/admin/tenants/{}/disable",
                if id == &t_id { "t" } else { "u" }
            )))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status().as_u16(), 200);
    }
    // Disabling the tenants cancelled their executions.
    let store = app.supervisor.store().clone();
    for id in [&t_id, &u_id] {
        let started = std::time::Instant::now();
        while !store
            .get_execution(None, id)
            .await
            .unwrap()
            .unwrap()
            .status
            .is_final()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{id} still runs"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    app.finish().await;
}
