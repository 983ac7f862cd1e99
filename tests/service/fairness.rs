//! Fair scheduling with real executions: tenant A queues several, tenant B
//! then queues one, and B's starts at the next free slot — before A's
//! later ones — on one server with SQLite and on two replicas sharing
//! PostgreSQL (A submitting to one replica, B to the other).

use std::time::{Duration, Instant};

use serde_json::json;

use agentd::client::Client;
use agentd::execution::ExecutionRequest;

use crate::support::*;

const ADMIN: &str = "operator-credential-for-fairness-00001";

/// A scenario that holds its slot for about two seconds.
fn busy() -> serde_json::Value {
    json!({"turns": [bash("timeout 2 tail -f /dev/null; echo done"), done()]})
}

async fn admin_call(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let answer = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Tenants `a` and `b` with keys; repositories under the world's folder allowed.
async fn tenants(world: &World, url: &str) -> (Client, Client) {
    let folder = world.repo.parent().unwrap().display().to_string();
    admin_call(
        url,
        reqwest::Method::PUT,
        "/v1/admin/policy",
        json!({"sources": {"local_paths": [folder]}}),
    )
    .await;
    let mut clients = Vec::new();
    for name in ["a", "b"] {
        admin_call(
            url,
            reqwest::Method::POST,
            "/v1/admin/tenants",
            json!({"name": name}),
        )
        .await;
        let key = admin_call(
            url,
            reqwest::Method::POST,
            &format!("/v1/admin/tenants/{name}/keys"),
            json!({}),
        )
        .await;
        clients.push(key["key"].as_str().unwrap().to_string());
    }
    let b = clients.pop().unwrap();
    let a = clients.pop().unwrap();
    (
        Client::with_token(url, Some(&a)).unwrap(),
        Client::with_token(url, Some(&b)).unwrap(),
    )
}

/// A queues four, B queues one once A's first two hold both slots; B's must
/// start before A's third.
async fn b_starts_at_the_next_free_slot(
    world: &World,
    a: &Client,
    b: &Client,
    request: &ExecutionRequest,
) {
    let mut a_ids = Vec::new();
    for _ in 0..4 {
        a_ids.push(a.submit(request, None).await.unwrap().id.clone());
    }
    let started = Instant::now();
    loop {
        let mut live = 0;
        for id in &a_ids[..2] {
            let shown = a.execution(id).await.unwrap();
            if shown.started_at.is_some() {
                live += 1;
            }
        }
        if live == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "A's first two never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_id = b.submit(request, None).await.unwrap().id.clone();
    let mut finals = Vec::new();
    for (client, id) in a_ids.iter().map(|id| (a, id)).chain([(b, &b_id)]) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let shown = client.execution(id).await.unwrap();
            if shown.finished_at.is_some() {
                assert_eq!(shown.status.as_str(), "succeeded", "{shown:?}");
                finals.push(shown);
                break;
            }
            assert!(Instant::now() < deadline, "{shown:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let start = |i: usize| finals[i].started_at.unwrap();
    let b_start = start(4);
    assert!(
        b_start < start(2) && b_start < start(3),
        "B waited behind A's later executions: A {:?}, B {b_start}",
        (0..4).map(start).collect::<Vec<_>>()
    );
    for shown in &finals {
        assert_nothing_left(&shown.id.clone(), &world.run_dir());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_on_sqlite_gives_the_next_slot_to_the_waiting_tenant() {
    let world = World::new(busy());
    let token = world.root.path().join("admin-token");
    std::fs::write(&token, ADMIN).unwrap();
    let server = world.serve(&[
        "--admin-token-file",
        token.to_str().unwrap(),
        "--max-concurrent",
        "2",
    ]);
    let (a, b) = tenants(&world, &server.url).await;
    b_starts_at_the_next_free_slot(&world, &a, &b, &world.request("work")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_give_the_next_slot_to_the_waiting_tenant() {
    let database = fresh_postgres_database().await;
    let world = World::new(busy());
    let token = world.root.path().join("admin-token");
    std::fs::write(&token, ADMIN).unwrap();
    let replica = |n: usize| {
        let dir = world.root.path().join(format!("replica-{n}"));
        world.serve_in(
            &dir.join("data"),
            &world.run_dir(),
            &[
                "--admin-token-file",
                token.to_str().unwrap(),
                "--max-concurrent",
                "1",
                "--database-url",
                &database,
            ],
        )
    };
    let one = replica(1);
    let two = replica(2);
    let (a, _) = tenants(&world, &one.url).await;
    let b_key_client = {
        let key = admin_call(
            &two.url,
            reqwest::Method::POST,
            "/v1/admin/tenants/b/keys",
            json!({}),
        )
        .await;
        Client::with_token(&two.url, key["key"].as_str()).unwrap()
    };
    b_starts_at_the_next_free_slot(&world, &a, &b_key_client, &world.request("work")).await;
    drop((one, two));
}
