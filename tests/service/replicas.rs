//! Issue 10's scenario as an operator runs it: three replicas on one
//! PostgreSQL with results in an S3 bucket (a real `s3s-fs` process), each
//! with its own data and run directory as pods have; the replica running two
//! executions is killed with SIGKILL mid-run. Both are taken over within two
//! leases, succeed once, and every surviving replica serves the same whole
//! event log, diff and bundle; the event log exported to the bucket is the
//! store's, whole.

use std::time::{Duration, Instant};

use agentd::execution::Status;
use serde_json::json;

use crate::s3::S3Server;
use crate::support::*;

const LEASE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_killed_mid_run_lose_nothing() {
    let database = fresh_postgres_database().await;
    let bucket = tempfile::Builder::new()
        .prefix("s3")
        .tempdir_in("/tmp")
        .unwrap();
    let s3 = S3Server::start(bucket.path(), "agentd-results");
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let world = World::new(json!({"turns": [
        bash("echo one > /workspace/repo/one.txt; timeout 6 tail -f /dev/null; echo two > /workspace/repo/two.txt"),
        done()
    ]}));
    let lease = format!("{}s", LEASE.as_secs());
    let flags = [
        "--database-url",
        &database,
        "--results",
        "s3://agentd-results/replicas",
        "--lease",
        &lease,
        "--max-concurrent",
        "2",
    ];
    let dir = |name: &str| world.root.path().join(name);
    let replica = |name: &str| {
        world.serve_with(
            &dir(name).join("data"),
            &dir(name).join("run"),
            &flags,
            &env,
        )
    };

    // Replica a alone claims both.
    let mut a = replica("a");
    let mut ids = Vec::new();
    for n in 0..2 {
        ids.push(a.submit(&world.request(&format!("two files, {n}"))).await);
    }
    for id in &ids {
        wait_for_event(&a.client, id, "tool_call", Duration::from_secs(120)).await;
    }
    let b = replica("b");
    let c = replica("c");

    a.kill_9();
    let killed = Instant::now();
    let watchers: Vec<Watcher> = ids.iter().map(|id| Watcher::start(&b.client, id)).collect();
    let mut taken_over = vec![None; ids.len()];
    while taken_over.iter().any(Option::is_none) {
        for (seen, watcher) in taken_over.iter_mut().zip(&watchers) {
            if seen.is_none()
                && watcher
                    .snapshot()
                    .iter()
                    .any(|e| serde_json::to_string(e).unwrap().contains("re-attached"))
            {
                *seen = Some(killed.elapsed());
            }
        }
        assert!(
            killed.elapsed() < LEASE * 10,
            "not taken over after {:?}:\n{}\n{}",
            killed.elapsed(),
            b.log(),
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(watchers);
    let taken_over: Vec<Duration> = taken_over.into_iter().flatten().collect();
    let slowest = *taken_over.iter().max().unwrap();
    println!(
        "two executions of a replica killed mid-run taken over after {:.1} s = {:.2} leases of {:?}",
        slowest.as_secs_f64(),
        slowest.as_secs_f64() / LEASE.as_secs_f64(),
        LEASE
    );
    assert!(
        slowest <= LEASE * 2 + Duration::from_secs(1),
        "taken over only after {slowest:?} (lease {LEASE:?})"
    );

    let http = reqwest::Client::new();
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(120);
        let done = loop {
            let shown = c.client.execution(id).await.unwrap();
            if shown.finished_at.is_some() {
                break shown;
            }
            assert!(Instant::now() < deadline, "{shown:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(done.status, Status::Succeeded, "{}\n{}", b.log(), c.log());
        let paths: Vec<&str> = done.files_changed.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["one.txt", "two.txt"]);

        // One log, the same whole log from every surviving replica.
        let from_b = all_events(&b.client, id).await;
        let from_c = all_events(&c.client, id).await;
        assert_whole_log(&from_b);
        assert_eq!(from_b, from_c);
        // The exported file is the store's log, written whole.
        let exported = bucket
            .path()
            .join("agentd-results/replicas/executions")
            .join(id)
            .join("events.jsonl");
        let lines = || {
            std::fs::read_to_string(&exported)
                .map(|text| text.lines().count())
                .unwrap_or(0)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while lines() < from_b.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(lines(), from_b.len(), "{}", exported.display());

        // The results, byte for byte the same from both.
        for route in ["diff", "bundle"] {
            let mut bodies = Vec::new();
            for server in [&b, &c] {
                let answer = http
                    .get(format!("{}/v1/executions/{id}/{route}", server.url))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200, "{route} from {}", server.url);
                bodies.push(answer.bytes().await.unwrap());
            }
            assert!(!bodies[0].is_empty() && bodies[0] == bodies[1], "{route}");
        }
    }

    drop((b, c));
    // The killed replica's workspace images are in its own data directory:
    // it sweeps them when it starts again (or `agentd gc` does).
    drop(replica("a"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in &ids {
        for name in ["a", "b", "c"] {
            assert_nothing_left(id, &dir(name).join("run"));
        }
    }
    drop(s3);
}
