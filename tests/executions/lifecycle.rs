//! The in-process lifecycle (issue 11), as an embedding program sees it: the
//! `examples/lifecycle.rs` program itself is run (cargo builds it with the
//! tests) against a sample repository, once through, once with a failing setup.

use std::process::Command;

use serde_json::json;

use crate::support::*;

/// The example program cargo built beside this test binary.
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let path = debug.join("examples").join("lifecycle");
    assert!(path.exists(), "{} (built by cargo test)", path.display());
    path
}

fn stages(output: &std::process::Output) -> Vec<String> {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedding_program_is_told_every_stage_and_each_failure() {
    let world = World::new();
    let scenario = world.scenario(json!({
        "turns": [{"content": [{"type": "text", "text": "Nothing to do."}],
                   "usage": {"input_tokens": 1, "output_tokens": 1}}]
    }));
    let image = agent_image().await;
    let run = |extra: &[&str]| {
        Command::new(example())
            .arg(&world.repo)
            .arg(&scenario)
            .arg(&image)
            .args(extra)
            .env("AGENTD_RUN_DIR", world.run_dir())
            .output()
            .unwrap()
    };
    assert_eq!(
        stages(&run(&[])),
        [
            "before prepare (preparing)",
            "after prepare",
            "before run (preparing)",
            "after run",
            "before collect (preparing)",
            "after collect",
            "before finish (preparing)",
            "after finish: succeeded",
            "status succeeded",
        ]
    );
    let failed = stages(&run(&["--setup", "exit 4"]));
    assert_eq!(
        failed[..4],
        [
            "before prepare (preparing)",
            "after prepare",
            "before run (preparing)",
            "error in run: setup_failed: setup hook 0 exited with code 4",
        ]
    );
    assert_eq!(
        failed.last().map(String::as_str),
        Some("status failed"),
        "{failed:?}"
    );
}
