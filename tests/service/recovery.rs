//! `kill -9` of agentd at different moments of an execution, then a restart on
//! the same data: the execution reaches a final state, its stored events have
//! no gaps and no repeats, and nothing labelled is left.

use std::time::Duration;

use agentd::execution::Status;
use serde_json::json;

use crate::support::*;

const LONG: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_running_the_agent_is_reattached_and_finishes() {
    let world = World::new(json!({"turns": [
        bash("echo one > /workspace/repo/one.txt; timeout 6 tail -f /dev/null; echo two > /workspace/repo/two.txt"),
        {"content": [{"type": "tool_use", "name": "Write",
                      "input": {"file_path": "/workspace/repo/three.txt", "content": "three\n"}}],
         "usage": {"input_tokens": 10, "output_tokens": 10}},
        done()
    ]}));
    let mut first = world.serve(&[]);
    let id = first.submit(&world.request("three files")).await;
    wait_for_event(&first.client, &id, "tool_call", LONG).await;
    first.kill_9();

    let second = world.serve(&[]);
    let events = all_events(&second.client, &id).await;
    let execution = second.client.execution(&id).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded, "{}", second.log());
    assert_whole_log(&events);
    assert!(has(&events, "progress"));
    assert!(
        events
            .iter()
            .any(|e| serde_json::to_string(e).unwrap().contains("re-attached")),
        "no re-attach event"
    );
    let paths: Vec<&str> = execution
        .files_changed
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["one.txt", "three.txt", "two.txt"]);
    assert_eq!(execution.num_turns, 3);
    assert_nothing_left(&id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_preparing_fails_as_supervisor_restarted() {
    let world = World::new(json!({"turns": [done()]}));
    // A repository big enough that fetching its mirror takes a moment.
    let blob: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(world.repo.join("big.bin"), blob).unwrap();
    git(&world.repo, &["add", "big.bin"]);
    git(&world.repo, &["commit", "--quiet", "-m", "big"]);
    let mut request = world.request("nothing");
    request.repo = format!("file://{}", world.repo.display());

    let mut first = world.serve(&[]);
    let id = first.submit(&request).await;
    let watcher = Watcher::start(&first.client, &id);
    let seen = wait_until(&first.client, &watcher, &id, LONG, |e, _| {
        e.status != Status::Queued
    })
    .await;
    first.kill_9();
    assert_eq!(seen.status, Status::Preparing, "the window was missed");

    let second = world.serve(&[]);
    let events = all_events(&second.client, &id).await;
    let execution = second.client.execution(&id).await.unwrap();
    assert_eq!(execution.status, Status::Failed);
    assert!(
        execution
            .reason
            .as_deref()
            .unwrap()
            .starts_with("supervisor_restarted"),
        "{:?}",
        execution.reason
    );
    assert_whole_log(&events);
    assert_nothing_left(&id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_collecting_is_collected_again() {
    let world = World::new(json!({"turns": [
        bash("head -c 200m /dev/urandom > \"$AGENTD_ARTIFACTS_DIR/big.bin\"; echo done > /workspace/repo/done.txt"),
        done()
    ]}));
    let mut first = world.serve(&[]);
    let id = first.submit(&world.request("big artifact")).await;
    let watcher = Watcher::start(&first.client, &id);
    let seen = wait_until(&first.client, &watcher, &id, LONG, |e, _| {
        e.status == Status::Collecting || e.status.is_final()
    })
    .await;
    first.kill_9();
    assert_eq!(seen.status, Status::Collecting, "the window was missed");

    let second = world.serve(&[]);
    let events = all_events(&second.client, &id).await;
    let execution = second.client.execution(&id).await.unwrap();
    assert_eq!(execution.status, Status::Succeeded, "{}", second.log());
    assert_whole_log(&events);
    let artifacts = second.client.artifacts(&id).await.unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].size, 200 << 20);
    assert_eq!(execution.files_changed.len(), 1);
    assert_nothing_left(&id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_a_restart_in_order() {
    let world = World::new(json!({"turns": [
        bash("timeout 3 tail -f /dev/null; echo ok > /workspace/repo/ok.txt"),
        done()
    ]}));
    let mut first = world.serve(&["--max-concurrent", "1"]);
    let a = first.submit(&world.request("first")).await;
    let b = first.submit(&world.request("second")).await;
    let watcher = Watcher::start(&first.client, &a);
    wait_until(&first.client, &watcher, &a, LONG, |_, events| {
        has(events, "tool_call")
    })
    .await;
    assert_eq!(
        first.client.execution(&b).await.unwrap().status,
        Status::Queued
    );
    first.kill_9();

    let second = world.serve(&["--max-concurrent", "1"]);
    let events_a = all_events(&second.client, &a).await;
    let events_b = all_events(&second.client, &b).await;
    let (ea, eb) = (
        second.client.execution(&a).await.unwrap(),
        second.client.execution(&b).await.unwrap(),
    );
    assert_eq!(ea.status, Status::Succeeded);
    assert_eq!(eb.status, Status::Succeeded);
    assert!(eb.started_at.unwrap() >= ea.started_at.unwrap());
    assert_whole_log(&events_a);
    assert_whole_log(&events_b);
    assert_nothing_left(&a, &world.run_dir());
    assert_nothing_left(&b, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_another_data_directory_writes_the_whole_event_log() {
    let world = World::new(json!({"turns": [
        bash("timeout 6 tail -f /dev/null; echo done"),
        done()
    ]}));
    let mut first = world.serve(&[]);
    let id = first.submit(&world.request("wait")).await;
    wait_for_event(&first.client, &id, "tool_call", LONG).await;
    first.kill_9();

    // Another replica (its own data directory) takes the work over.
    let other_data = world.root.path().join("other-data");
    let database = format!("sqlite://{}", world.data_dir().join("agentd.db").display());
    let second = world.serve_in(
        &other_data,
        &world.run_dir(),
        &["--database-url", &database],
    );
    let events = all_events(&second.client, &id).await;
    assert_whole_log(&events);
    // The file is written from the store once the final status is stored.
    let file = other_data.join("executions").join(&id).join("events.jsonl");
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut lines = read();
    while lines.len() < events.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = read();
    }
    assert_eq!(
        lines.len(),
        events.len(),
        "the file holds a fragment: {} of {} events\n{lines:#?}\n{}",
        lines.len(),
        events.len(),
        second.log()
    );
    assert_eq!(lines[0]["seq"], 1);
    // The first replica's workspace image is in its own data directory: it
    // sweeps it when it starts again (or `agentd gc` does).
    drop(second);
    let first_again = world.serve(&["--database-url", &database]);
    drop(first_again);
    assert_nothing_left(&id, &world.run_dir());
}
