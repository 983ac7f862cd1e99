//! Turn, time and memory limits end an execution with the right status.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_turns_reached_is_failed() {
    let world = World::new();
    let file = world.scenario(json!({
        "turns": [bash("echo one"), bash("echo two"), bash("echo three"), done()]
    }));
    let mut command = world.agentd_run("loop").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--max-turns")
        .arg("1");
    let ran = finish(command);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert_eq!(ran.summary.status.as_str(), "failed");
    let reason = ran.summary.reason.clone().unwrap();
    assert!(reason.contains("error_max_turns"), "{reason}");
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_kills_the_sandbox() {
    let world = World::new();
    let file = world.scenario(json!({
        "turns": [bash("echo started > /workspace/repo/partial.txt; sleep 600"), done()]
    }));
    let limit = Duration::from_secs(12);
    let mut command = world.agentd_run("take forever").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--timeout")
        .arg("12s");
    let ran = finish(command);
    assert_eq!(ran.code, 124, "{}", ran.stderr);
    assert_eq!(ran.summary.status.as_str(), "timed_out");

    // Killed within a few seconds of the limit, measured on agentd's own clock
    // from the moment the execution started.
    let events = ran.events();
    let first = ran.summary.started_at;
    let killed = events
        .iter()
        .find(|e| {
            serde_json::to_string(e)
                .unwrap()
                .contains("time limit reached")
        })
        .expect("a kill event")
        .at;
    let waited = (killed - first).to_std().unwrap();
    assert!(
        waited >= limit && waited < limit + Duration::from_secs(3),
        "killed after {waited:?}"
    );
    assert!(
        ran.elapsed < limit + Duration::from_secs(20),
        "took {:?}",
        ran.elapsed
    );
    // The partial work was still collected.
    let diff = std::fs::read_to_string(ran.summary.diff_path.as_ref().unwrap()).unwrap();
    assert!(diff.contains("+started"), "{diff}");
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_past_the_memory_limit_is_out_of_memory() {
    let world = World::new();
    let file = world.scenario(json!({
        "turns": [bash("head -c 1200m /dev/zero | tail | wc -c"), done()]
    }));
    let mut command = world.agentd_run("use lots of memory").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--memory")
        .arg("640m");
    let ran = finish(command);
    assert_eq!(ran.code, 137, "{}", ran.stderr);
    assert_eq!(ran.summary.status.as_str(), "out_of_memory");
    assert!(ran.summary.oom_killed);
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}
