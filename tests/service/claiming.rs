//! Pausing the claiming of queued work for maintenance (issue 10), on two
//! replicas sharing PostgreSQL, driven by `agentd admin claiming`: paused
//! everywhere, nothing starts while submissions still queue; one replica
//! paused alone, the other runs everything.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use agentd::client::Client;

use crate::support::*;

const ADMIN: &str = "operator-credential-for-claiming-000001";

fn admin(server: &Server, args: &[&str]) -> Value {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .arg("admin")
        .arg("--json")
        .args(args)
        .env("AGENTD_SERVER", &server.url)
        .env("AGENTD_ADMIN_TOKEN", ADMIN)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claiming_paused_everywhere_then_on_one_replica() {
    let database = fresh_postgres_database().await;
    let world = World::new(json!({"turns": [bash("sleep 1; echo done"), done()]}));
    let replica = |n: usize| {
        let dir = world.root.path().join(format!("replica-{n}"));
        world.serve_with(
            &dir.join("data"),
            &dir.join("run"),
            &["--max-concurrent", "1", "--database-url", &database],
            &[("AGENTD_ADMIN_TOKEN", ADMIN)],
        )
    };
    let one = replica(1);
    let two = replica(2);

    admin(&one, &["tenant", "create", "maint"]);
    let key = admin(&one, &["key", "create", "maint"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let policy = world.root.path().join("policy.json");
    let folder = world.repo.parent().unwrap().display().to_string();
    std::fs::write(
        &policy,
        json!({"sources": {"local_paths": [folder]}}).to_string(),
    )
    .unwrap();
    admin(&one, &["policy", "set", "--file", policy.to_str().unwrap()]);

    // Paused everywhere through replica one: replica two sees it too.
    let paused = admin(&one, &["claiming", "pause", "--cluster"]);
    assert_eq!(paused["cluster"]["paused"], true, "{paused}");
    assert_eq!(paused["replica"]["paused"], false, "{paused}");
    let seen = admin(&two, &["claiming", "show"]);
    assert_eq!(seen["cluster"]["paused"], true, "{seen}");
    assert!(seen["cluster"]["since"].is_string(), "{seen}");

    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", two.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("agentd_claiming_paused{scope=\"cluster\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("agentd_claiming_paused{scope=\"replica\"} 0"));

    let team = Client::with_token(&two.url, Some(&key)).unwrap();
    let mut ids = Vec::new();
    for n in 0..2 {
        let created = team
            .submit(&world.request(&format!("task {n}")), None)
            .await
            .unwrap();
        ids.push(created.id.clone());
    }
    // Accepted, and nothing starts while the pause lasts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for id in &ids {
        let shown = team.execution(id).await.unwrap();
        assert_eq!(shown.status.as_str(), "queued", "{shown:?}");
    }

    // Replica one paused alone, claiming resumed everywhere: replica two runs
    // both, one after the other.
    let here = admin(&one, &["claiming", "pause"]);
    assert_eq!(here["replica"]["paused"], true, "{here}");
    let resumed = admin(&two, &["claiming", "resume", "--cluster"]);
    assert_eq!(resumed["cluster"]["paused"], false, "{resumed}");
    let deadline = Instant::now() + Duration::from_secs(180);
    for id in &ids {
        loop {
            let shown = team.execution(id).await.unwrap();
            if shown.finished_at.is_some() {
                assert_eq!(shown.status.as_str(), "succeeded", "{shown:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{shown:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            two.log().contains(id.as_str()),
            "replica two ran {id}:\n{}",
            two.log()
        );
        assert!(
            !one.log().contains(id.as_str()),
            "paused replica one ran {id}:\n{}",
            one.log()
        );
    }

    // Every change is in the audit log.
    let audit = admin(&one, &["audit", "--action", "claiming.pause"]);
    let targets: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"cluster"), "{audit}");
    assert_eq!(targets.len(), 2, "{audit}");
    let resumes = admin(&one, &["audit", "--action", "claiming.resume"]);
    assert_eq!(resumes["items"].as_array().unwrap().len(), 1, "{resumes}");

    // A tenant's key is no admin credential.
    let refused = reqwest::Client::new()
        .put(format!("{}/v1/admin/claiming", one.url))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(json!({"paused": false, "scope": "cluster"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    drop((one, two));
}
