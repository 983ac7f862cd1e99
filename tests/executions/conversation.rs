//! Conversations from the command line: `agentd run --continue` resumes a
//! run's session on its branch, a recorded conversation replays to the same
//! diffs, and `--interactive` passes typed lines to the running agent.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn conversation() -> Value {
    json!({
        "turns": [
            {"content": [{"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes/first.txt", "content": "first\n"}}],
             "usage": {"input_tokens": 10, "output_tokens": 5}},
            {"content": [{"type": "text", "text": "Wrote the first note."}]},
            {"expect": ["write the first note", "Wrote the first note.", "and the second"],
             "content": [{"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes/second.txt", "content": "second\n"}}]},
            {"content": [{"type": "text", "text": "Wrote the second note."}]}
        ]
    })
}

/// `agentd run --continue <parent> --prompt <prompt>`, in `world`.
async fn continued(world: &World, parent: &str, prompt: &str) -> std::process::Command {
    let mut command = world.agentd();
    command
        .args(["run", "--continue", parent, "--prompt", prompt, "--json"])
        .arg("--image")
        .arg(agent_image().await);
    command
}

fn diff_of(ran: &Ran) -> String {
    ran.summary
        .diff_path
        .as_ref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_run_resumes_the_session_and_a_recorded_conversation_replays() {
    let world = World::new();
    let file = world.scenario(conversation());
    let mut first = world.agentd_run("write the first note").await;
    first.arg("--scripted-model").arg(&file).arg("--record");
    let first = finish(first);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let parent = first.summary.id.clone();

    // --continue takes the repository, its ref and its limits from the parent.
    let mut second = continued(&world, &parent, "and the second").await;
    second.arg("--scripted-model").arg(&file).arg("--record");
    let second = finish(second);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.json["parent_id"], parent.as_str());
    assert_eq!(second.json["branch"], first.json["branch"]);
    assert!(diff_of(&second).contains("notes/second.txt"));
    assert!(!diff_of(&second).contains("notes/first.txt"));

    // The conversation again, from the two cassettes, without the model.
    let cassette = |ran: &Ran| std::path::Path::new(&ran.summary.data_dir).join("cassette.jsonl");
    let mut replay_first = world.agentd_run("write the first note").await;
    replay_first.arg("--replay").arg(cassette(&first));
    let replay_first = finish(replay_first);
    assert_eq!(replay_first.code, 0, "{}", replay_first.stderr);
    assert_eq!(diff_of(&replay_first), diff_of(&first));
    let mut replay_second = continued(&world, &replay_first.summary.id, "and the second").await;
    replay_second.arg("--replay").arg(cassette(&second));
    let replay_second = finish(replay_second);
    assert_eq!(replay_second.code, 0, "{}", replay_second.stderr);
    assert_eq!(diff_of(&replay_second), diff_of(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_typed_during_an_interactive_run_reaches_the_model() {
    let world = World::new();
    let file = world.scenario(json!({
        "turns": [
            bash("timeout 15 tail -f /dev/null; echo waited"),
            {"expect": ["typed while it ran"],
             "content": [{"type": "text", "text": "Heard you."}]}
        ]
    }));
    let mut command = world.agentd_run("wait a little").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--interactive")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_secs(6));
    stdin.write_all(b"typed while it ran\n").unwrap();
    stdin.flush().unwrap();
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let ran = parse(output, started.elapsed());
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stderr.contains("typed while it ran"), "{}", ran.stderr);
    assert!(
        ran.elapsed < Duration::from_secs(90),
        "the run ended by itself: {:?}",
        ran.elapsed
    );
}
