//! SIGTERM: agentd stops taking work, ends event streams and leaves promptly;
//! running executions are detached and re-attached by the next start (the
//! default), or cancelled with `--on-shutdown cancel`.

use std::time::Duration;

use agentd::execution::Status;
use serde_json::json;

use crate::support::*;

const LONG: Duration = Duration::from_secs(120);

fn scenario() -> serde_json::Value {
    json!({"turns": [
        bash("timeout 5 tail -f /dev/null; echo slept > /workspace/repo/slept.txt"),
        done()
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_detaches_and_the_next_start_finishes_the_work() {
    let world = World::new(scenario());
    let mut first = world.serve(&[]);
    let id = first.submit(&world.request("sleep")).await;
    let watcher = Watcher::start(&first.client, &id);
    wait_until(&first.client, &watcher, &id, LONG, |_, events| {
        has(events, "tool_call")
    })
    .await;
    first.signal(libc::SIGTERM);
    let took = first.wait_exit(Duration::from_secs(12));
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    // The open event stream was ended by the shutdown, not left hanging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(watcher.snapshot().len() > 1);
    drop(watcher);
    // Detached: the sandbox is still there.
    let filter = format!("label=agentd.execution={id}");
    let running = std::process::Command::new("docker")
        .args(["ps", "-q", "--filter", &filter])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&running.stdout).trim().is_empty());

    let second = world.serve(&[]);
    let events = all_events(&second.client, &id).await;
    let execution = second.client.execution(&id).await.unwrap();
    assert_eq!(
        execution.status,
        Status::Succeeded,
        "{:?}\n{}",
        execution.reason,
        second.log()
    );
    assert_eq!(execution.files_changed[0].path, "slept.txt");
    assert_whole_log(&events);
    assert_nothing_left(&id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_cancel_mode_cancels_running_work_and_refuses_new_work() {
    let world = World::new(scenario());
    let mut server = world.serve(&["--on-shutdown", "cancel"]);
    let id = server.submit(&world.request("sleep")).await;
    let watcher = Watcher::start(&server.client, &id);
    wait_until(&server.client, &watcher, &id, LONG, |_, events| {
        has(events, "tool_call")
    })
    .await;
    let client = server.client.clone();
    server.signal(libc::SIGTERM);
    // While it drains, new work is refused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Err(error) = client.submit(&world.request("late"), None).await {
        let text = error.to_string();
        assert!(text.contains("503") || text.contains("reach"), "{text}");
    } else {
        panic!("a submission during shutdown was accepted");
    }
    let took = server.wait_exit(Duration::from_secs(15));
    assert!(took < Duration::from_secs(11), "shutdown took {took:?}");
    drop(watcher);

    let restarted = world.serve(&[]);
    let execution = restarted.client.execution(&id).await.unwrap();
    assert_eq!(execution.status, Status::Cancelled);
    let events = all_events(&restarted.client, &id).await;
    assert_whole_log(&events);
    assert_nothing_left(&id, &world.run_dir());
}
