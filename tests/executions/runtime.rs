//! The sandbox's OCI runtime is checked against the real engine at start-up: a
//! runtime the engine does not have is refused, naming the ones it has, before
//! any execution, container, volume or socket exists.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

const MISSING: &str = "agentd-test-no-such-runtime";

/// What the refusal must say: the runtime asked for and those the engine has.
fn assert_refusal(stderr: &str) {
    assert!(
        stderr.contains(&format!("no runtime named \"{MISSING}\"")),
        "{stderr}"
    );
    let registered = docker(&[
        "info",
        "--format",
        "{{range $name, $_ := .Runtimes}}{{$name}} {{end}}",
    ]);
    for name in registered.split_whitespace() {
        assert!(stderr.contains(name), "{name} not named in:\n{stderr}");
    }
    assert!(!stderr.contains("agentd: execution "), "{stderr}");
}

/// Nothing of an execution was made: no results, no socket folder (the World's
/// drop checks the engine for anything labelled with its run directory).
fn assert_nothing_made(world: &World) {
    let results = world.data_dir().join("executions");
    assert!(
        !results.exists() || std::fs::read_dir(&results).unwrap().next().is_none(),
        "an execution was recorded under {}",
        results.display()
    );
    let sockets: Vec<_> = crate::common::walk(&world.run_dir())
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "llm.sock"))
        .collect();
    assert!(sockets.is_empty(), "{sockets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_an_unknown_runtime_before_creating_anything() {
    let world = World::new();
    let file = world.scenario(json!({"turns": [done()]}));
    let mut command = world.agentd_run("never runs").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--runtime")
        .arg(MISSING);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert_refusal(&stderr);
    assert_nothing_made(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_unknown_runtime_at_start_up() {
    let world = World::new();
    let file = world.scenario(json!({"turns": [done()]}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--image"])
        .arg(agent_image().await)
        .env("AGENTD_RUNTIME", MISSING)
        .env("AGENTD_SCRIPTED_MODEL", &file)
        .env("AGENTD_DATA_DIR", world.data_dir())
        .env("AGENTD_RUN_DIR", world.run_dir())
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "agentd serve started with an unknown runtime:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    assert_refusal(&stderr);
    assert_nothing_made(&world);
}

/// gVisor's ptrace platform runs each sandbox process on about ten host
/// threads of its own, and the engine's pids limit counts those: with the
/// default limit as is, a command running a few dozen processes (a parallel
/// test run) made gVisor panic and the whole sandbox die, result lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_gvisor_the_default_pids_limit_leaves_room_for_gvisor_itself() {
    let Some(gvisor) = gvisor().await else { return };
    let world = World::new();
    let command = "for i in $(seq 40); do sleep 3 & done; wait; echo all-40-done";
    let model = model(json!({"turns": [bash(command), done()]})).await;
    let mut run = world.agentd_run_under("run many processes", gvisor).await;
    run.env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("ANTHROPIC_BASE_URL", model.base_url());
    let ran = finish(run);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.summary.status.as_str(), "succeeded");
    assert!(
        ran.tool_results()
            .iter()
            .any(|text| text.contains("all-40-done")),
        "{:?}",
        ran.tool_results()
    );
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}
