//! Replicas on one database, each with its own data and run directory (as
//! pods are): a replica paused past its lease — a stop signal here; a long
//! pause, a partition or an overloaded node in production — loses its work
//! to another within about two leases, and when it wakes up it writes
//! nothing and removes nothing: the store's lease row decides who holds an
//! execution.

use std::time::{Duration, Instant};

use agentd::execution::Status;
use serde_json::json;

use crate::support::*;

const LEASE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_past_its_lease_is_fenced_and_another_takes_over_within_two_leases() {
    let world = World::new(json!({"turns": [
        bash("echo one > /workspace/repo/one.txt; timeout 10 tail -f /dev/null; echo two > /workspace/repo/two.txt"),
        done()
    ]}));
    let database = format!("sqlite://{}", world.data_dir().join("agentd.db").display());
    let lease = format!("{}s", LEASE.as_secs());
    let first = world.serve(&[
        "--database-url",
        &database,
        "--lease",
        &lease,
        "--reconcile-interval",
        "1s",
    ]);
    let id = first.submit(&world.request("two files")).await;
    wait_for_event(&first.client, &id, "tool_call", Duration::from_secs(120)).await;

    // Paused: alive, holding its sockets and its view of the work, silent.
    first.signal(libc::SIGSTOP);
    let paused = Instant::now();
    let other = world.root.path().join("other");
    let second = world.serve_in(
        &other.join("data"),
        &other.join("run"),
        &["--database-url", &database, "--lease", &lease],
    );
    let watcher = Watcher::start(&second.client, &id);
    let taken_over = loop {
        if watcher
            .snapshot()
            .iter()
            .any(|e| serde_json::to_string(e).unwrap().contains("re-attached"))
        {
            break paused.elapsed();
        }
        assert!(
            paused.elapsed() < LEASE * 10,
            "not taken over after {:?}:\n{}",
            paused.elapsed(),
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(watcher);
    println!(
        "takeover by a replica with another run directory: {:.1} s = {:.2} leases of {:?}",
        taken_over.as_secs_f64(),
        taken_over.as_secs_f64() / LEASE.as_secs_f64(),
        LEASE
    );
    assert!(
        taken_over <= LEASE * 2 + Duration::from_secs(1),
        "taken over only after {taken_over:?} (lease {LEASE:?})"
    );

    // Awake again: it finds the lease gone and lets go.
    first.signal(libc::SIGCONT);
    let events = all_events(&second.client, &id).await;
    let execution = second.client.execution(&id).await.unwrap();
    assert_eq!(
        execution.status,
        Status::Succeeded,
        "the sandbox was disturbed:\n{}\n{}",
        first.log(),
        second.log()
    );
    assert_whole_log(&events);
    let paths: Vec<&str> = execution
        .files_changed
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["one.txt", "two.txt"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !first.log().contains("another replica holds the lease")
        && !first.log().contains("lost the lease")
    {
        assert!(
            Instant::now() < deadline,
            "the paused replica never noticed:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What it tried to write after waking was refused: the log is the
    // second replica's, whole, and stays so.
    tokio::time::sleep(LEASE).await;
    assert_eq!(all_events(&second.client, &id).await, events);
    // Its own leftovers (the workspace image in its data directory) it
    // releases itself once the new holder removed the volume.
    let image = world
        .data_dir()
        .join("workspaces")
        .join(format!("{id}.img"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while image.exists() {
        assert!(
            Instant::now() < deadline,
            "{} left:\n{}",
            image.display(),
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);
    drop(second);
    assert_nothing_left(&id, &world.run_dir());
    assert_nothing_left(&id, &other.join("run"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_renew_its_lease_stops_on_its_own_and_resumes_later() {
    use sqlx::Connection;
    let world = World::new(json!({"turns": [
        bash("echo one > /workspace/repo/one.txt; timeout 10 tail -f /dev/null; echo two > /workspace/repo/two.txt"),
        done()
    ]}));
    let path = world.data_dir().join("agentd.db");
    let database = format!("sqlite://{}", path.display());
    let lease = format!("{}s", LEASE.as_secs());
    let server = world.serve(&["--database-url", &database, "--lease", &lease]);
    let id = server.submit(&world.request("two files")).await;
    wait_for_event(&server.client, &id, "tool_call", Duration::from_secs(120)).await;

    // The store stops answering writes (a lock held longer than the lease, as
    // a stalled database or a lost connection would): the replica cannot
    // know whether another took the work over, so it must stop serving it.
    let mut blocker = sqlx::sqlite::SqliteConnection::connect(&database)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let deadline = Instant::now() + LEASE * 4;
    while !server
        .log()
        .contains("could not be renewed for a whole lease")
    {
        assert!(
            Instant::now() < deadline,
            "the replica went on without its lease:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    drop(blocker);

    // The store back, the work is taken over again (by the same replica)
    // and ends once, its log whole.
    let events = all_events(&server.client, &id).await;
    let execution = server.client.execution(&id).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded, "{}", server.log());
    assert_whole_log(&events);
    let paths: Vec<&str> = execution
        .files_changed
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["one.txt", "two.txt"]);
    drop(server);
    assert_nothing_left(&id, &world.run_dir());
}

/// The attack: a replica paused while it copies an execution's files into
/// the database wakes up after another took the execution over and ended it,
/// and finishes its copy — over what the new holder decided. Its copy must
/// be thrown away: nothing it publishes after losing the lease is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_while_publishing_publishes_nothing_once_it_lost_the_lease() {
    use sqlx::Connection;
    let world = World::new(json!({"turns": [
        bash("echo one > /workspace/repo/one.txt"),
        done()
    ]}));
    let database = fresh_postgres_database().await;
    let lease = format!("{}s", LEASE.as_secs());
    let flags = [
        "--database-url",
        &database,
        "--results",
        "database",
        "--lease",
        &lease,
    ];
    let first = world.serve(&flags);
    let id = first.submit(&world.request("one file")).await;
    // Claimed first: the row below references the execution, and its key
    // lock would make the claim (FOR UPDATE … SKIP LOCKED) pass it by.
    let claimed_by = Instant::now() + Duration::from_secs(60);
    while first.client.execution(&id).await.unwrap().status == agentd::execution::Status::Queued {
        assert!(
            Instant::now() < claimed_by,
            "never claimed:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The diff's row, held by an open transaction: the replica's copy of it
    // waits on that row, mid-publication, until the transaction ends.
    let mut holder = sqlx::postgres::PgConnection::connect(&database)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(
        "INSERT INTO result_files (execution_id, name, size, created_at) \
         VALUES ($1, 'changes.diff', 0, now())",
    )
    .bind(&id)
    .execute(&mut holder)
    .await
    .unwrap();
    let mut watch = sqlx::postgres::PgConnection::connect(&database)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO result_files%'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never published:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Paused mid-copy; another replica takes the execution over and ends it
    // (its sandbox was already removed).
    first.signal(libc::SIGSTOP);
    let other = world.root.path().join("other");
    let second = world.serve_in(&other.join("data"), &other.join("run"), &flags);
    all_events(&second.client, &id).await;
    let ended = second.client.execution(&id).await.unwrap();
    assert!(ended.status.is_final(), "{:?}", ended.status);
    // What the new holder published, its event log last (exported once its
    // final status was stored).
    let deadline = Instant::now() + Duration::from_secs(20);
    let decided = loop {
        let stored = stored_files(&mut watch, &id).await;
        if stored.iter().any(|(name, _)| name == "events.jsonl") {
            break stored;
        }
        assert!(
            Instant::now() < deadline,
            "the new holder published no event log:\n{}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The copy goes on once the row is free and the replica awake.
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    first.signal(libc::SIGCONT);
    let deadline = Instant::now() + Duration::from_secs(20);
    let noticed = |log: &str| {
        [
            "lost the lease",
            "stopped publishing",
            "cannot store the final status",
        ]
        .iter()
        .any(|said| log.contains(said))
    };
    while !noticed(&first.log()) {
        assert!(
            Instant::now() < deadline,
            "the paused replica never noticed:\n{}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(LEASE).await;
    assert_eq!(
        stored_files(&mut watch, &id).await,
        decided,
        "the fenced replica published over the new holder's results:\n{}",
        first.log()
    );
    assert_eq!(
        second.client.execution(&id).await.unwrap().status,
        ended.status
    );
    drop(first);
    drop(second);
}

/// The result files stored for `execution`: name and size.
async fn stored_files(
    db: &mut sqlx::postgres::PgConnection,
    execution: &str,
) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT name, size FROM result_files WHERE execution_id = $1 ORDER BY name")
        .bind(execution)
        .fetch_all(db)
        .await
        .unwrap()
}
