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
