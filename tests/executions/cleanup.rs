//! Nothing is left behind on the paths that are not a clean finish: Ctrl-C, an
//! error in agentd itself, and agentd killed outright.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// Starts `agentd run` and returns once the agent is running its long Bash call.
async fn start_long_run(world: &World) -> (std::process::Child, String) {
    let file = world.scenario(json!({"turns": [bash("sleep 600"), done()]}));
    let mut command = world.agentd_run("wait a long time").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut id = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("agentd: execution ") {
                id = rest.trim().to_string();
            }
            if line.contains("⚙ Bash") {
                let _ = tx.send(id.clone());
            }
        }
    });
    let id = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the agent started its Bash call");
    (child, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_cleanly() {
    let world = World::new();
    let (child, id) = start_long_run(&world).await;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let ran = parse(output, started.elapsed());
    assert_eq!(ran.code, 130);
    assert_eq!(ran.summary.status.as_str(), "cancelled");
    assert_eq!(ran.summary.id, id);
    assert!(
        ran.elapsed < Duration::from_secs(15),
        "took {:?}",
        ran.elapsed
    );
    assert_nothing_left(&id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_in_agentd_itself_leaks_nothing() {
    let world = World::new();
    let file = world.scenario(json!({"turns": [done()]}));
    let mut command = world.agentd_run("no image").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--image")
        .arg("agentd-no-such-image:missing");
    let ran = finish(command);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.summary.status.as_str(), "failed");
    let reason = ran.summary.reason.clone().unwrap();
    assert!(reason.contains("docker"), "{reason}");
    // The volume and socket were created before the container failed: both gone.
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agentd_is_cleaned_up_by_gc() {
    let world = World::new();
    let (mut child, id) = start_long_run(&world).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let filter = format!("label=agentd.execution={id}");
    assert!(
        !docker(&["ps", "-aq", "--filter", &filter])
            .trim()
            .is_empty()
    );

    let gc = std::process::Command::new(env!("CARGO_BIN_EXE_agentd"))
        .arg("gc")
        .env("AGENTD_RUN_DIR", world.run_dir())
        .env("AGENTD_DATA_DIR", world.data_dir())
        .output()
        .unwrap();
    assert!(gc.status.success(), "{gc:?}");
    let said = String::from_utf8_lossy(&gc.stderr);
    assert!(
        said.contains("removed 1 containers and 1 volumes"),
        "{said}"
    );
    assert!(said.contains("released 1 workspace filesystems"), "{said}");
    assert_nothing_left(&id, &world.run_dir());
}
