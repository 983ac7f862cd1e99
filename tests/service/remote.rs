//! `agentd run --server URL` gives the same output as the embedded mode, with
//! the results downloaded locally.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_against_a_server_prints_the_same_summary_with_local_files() {
    let world = World::new(json!({"turns": [
        {"content": [{"type": "tool_use", "name": "Write",
                      "input": {"file_path": "/workspace/repo/hello.txt", "content": "hello\n"}}],
         "usage": {"input_tokens": 100, "output_tokens": 20}},
        bash("echo report > \"$AGENTD_ARTIFACTS_DIR/report.txt\""),
        done()
    ]}));
    let server = world.serve(&[]);
    let local = world.root.path().join("client");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agentd"))
        .args([
            "run",
            "--server",
            &server.url,
            "--json",
            "--prompt",
            "hello",
        ])
        .arg("--repo")
        .arg(&world.repo)
        .env("AGENTD_DATA_DIR", &local)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("⚙ Write"), "{stderr}");
    assert!(stderr.contains("✔ succeeded"), "{stderr}");
    let summary: agentd::execution::Summary = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary.status.as_str(), "succeeded");
    assert_eq!(summary.usage.input_tokens, 100 + 10 + 10);
    let diff = std::fs::read_to_string(summary.diff_path.as_ref().unwrap()).unwrap();
    assert!(diff.contains("+hello"), "{diff}");
    assert!(
        summary
            .diff_path
            .as_ref()
            .unwrap()
            .starts_with(local.to_str().unwrap())
    );
    assert!(
        summary
            .bundle_path
            .as_ref()
            .unwrap()
            .starts_with(local.to_str().unwrap())
    );
    assert_eq!(summary.artifacts.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&summary.artifacts[0]).unwrap(),
        "report\n"
    );
    let events = std::fs::read_to_string(&summary.events_path).unwrap();
    assert!(events.lines().count() > 5);
    assert_nothing_left(&summary.id, &world.run_dir());
}

/// The conversation through a server: `--server --interactive` passes a
/// typed line to the running agent over the API, and `--server --continue`
/// follows the run up, its session resumed on its branch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_through_a_server_messages_and_continues() {
    let world = World::new(json!({"turns": [
        bash("timeout 15 tail -f /dev/null; echo waited"),
        {"expect": ["typed to the server"],
         "content": [{"type": "tool_use", "name": "Write",
                      "input": {"file_path": "/workspace/repo/heard.txt", "content": "heard\n"}}]},
        {"content": [{"type": "text", "text": "Heard you."}]},
        {"expect": ["wait for a message", "Heard you.", "and now continue"],
         "content": [{"type": "text", "text": "Continued."}]}
    ]}));
    let server = world.serve(&[]);
    let local = world.root.path().join("client");
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_agentd"));
        command
            .args(["run", "--server", &server.url, "--json"])
            .args(args)
            .env("AGENTD_DATA_DIR", &local)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    let mut first = run(&["--interactive", "--prompt", "wait for a message", "--repo"]);
    first.arg(&world.repo).stdin(std::process::Stdio::piped());
    let mut child = first.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6));
    use std::io::Write;
    stdin.write_all(b"typed to the server\n").unwrap();
    stdin.flush().unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let summary: agentd::execution::Summary = serde_json::from_slice(&output.stdout).unwrap();
    assert!(stderr.contains("typed to the server"), "{stderr}");

    let output = run(&["--continue", &summary.id, "--prompt", "and now continue"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let next: agentd::execution::Summary = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(next.parent_id.as_deref(), Some(summary.id.as_str()));
    assert_eq!(next.branch, summary.branch);
    assert_nothing_left(&next.id, &world.run_dir());
}
