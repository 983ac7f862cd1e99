//! The gateway with the real CLI behind it: authoritative metering, budgets
//! that stop the sandbox, upstream errors the CLI retries, redaction, and
//! recording then replaying a run.

use std::time::Duration;

use agentd::execution::{EventBody, SupervisorEvent};
use serde_json::json;

use crate::support::*;

/// A turn running one Bash command, with `input` tokens of usage.
fn costly_bash(command: &str, input: u64) -> serde_json::Value {
    json!({
        "content": [{"type": "tool_use", "name": "Bash",
                     "input": {"command": command, "description": "work", "timeout": 600000}}],
        "usage": {"input_tokens": input, "output_tokens": 10}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_stops_the_sandbox_mid_run() {
    let world = World::new();
    // Sonnet 4.5 at $3 per million input tokens: each turn costs about $0.60.
    let file = world.scenario(json!({"turns": [
        costly_bash("echo one > /workspace/repo/one.txt", 200_000),
        costly_bash("timeout 60 tail -f /dev/null; echo two > /workspace/repo/two.txt", 200_000),
        done()
    ]}));
    let mut command = world.agentd_run("spend money").await;
    command.arg("--scripted-model").arg(&file).args([
        "--model",
        "claude-sonnet-4-5",
        "--max-budget-usd",
        "1",
    ]);
    let ran = finish(command);
    let summary = &ran.summary;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(summary.status.as_str(), "budget_exceeded");
    let reason = summary.reason.clone().unwrap();
    assert!(reason.starts_with("max_budget_usd 1 reached"), "{reason}");
    // Stopped at once, not after the 60 s the agent's command would take.
    assert!(
        ran.elapsed < Duration::from_secs(40),
        "took {:?}",
        ran.elapsed
    );
    assert_eq!(summary.gateway.requests, 2);
    assert_eq!(summary.gateway.usage.input_tokens, 400_000);
    let cost = summary.gateway.cost_usd.unwrap();
    assert!(
        (cost - 2.0 * (200_000.0 * 3.0 + 10.0 * 15.0) / 1e6).abs() < 1e-9,
        "{cost}"
    );
    // The work before the cut-off is kept; the interrupted command never finished.
    let paths: Vec<&str> = summary
        .files_changed
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["one.txt"]);
    // Each model request is an event with the gateway's own figures.
    let calls: Vec<_> = ran
        .events()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Agentd(SupervisorEvent::ModelCall { usage, totals, .. }) => {
                Some((usage, totals))
            }
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].1.requests, 2);
    assert_nothing_left(&summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_limit_is_refused_and_ends_the_run() {
    let world = World::new();
    let file = world.scenario(json!({"turns": [
        bash("echo 1"), bash("echo 2"), bash("echo 3"), done()
    ]}));
    let mut command = world.agentd_run("loop").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .args(["--max-requests", "2"]);
    let ran = finish(command);
    assert_eq!(
        ran.summary.status.as_str(),
        "budget_exceeded",
        "{}",
        ran.stderr
    );
    assert!(
        ran.summary
            .reason
            .as_deref()
            .unwrap()
            .starts_with("max_requests 2 reached"),
        "{:?}",
        ran.summary.reason
    );
    assert_eq!(ran.summary.gateway.requests, 2);
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_429_is_retried_by_the_agent_and_the_run_completes() {
    let world = World::new();
    let model = model(json!({"turns": [
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input": {"command": "echo ok > /workspace/repo/ok.txt", "description": "w"}}],
         "usage": {"input_tokens": 100, "output_tokens": 20},
         "errors": [{"status": 429, "type": "rate_limit_error", "message": "slow down"}]},
        done()
    ]}))
    .await;
    let mut command = world.agentd_run("retry").await;
    command
        .env("ANTHROPIC_API_KEY", "sk-ant-test-429")
        .env("ANTHROPIC_BASE_URL", model.base_url());
    let ran = finish(command);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let events = ran.events();
    let retried = events.iter().any(|e| {
        matches!(
            e.body,
            EventBody::Agent(agentd::execution::AgentEvent::ApiRetry { .. })
        )
    });
    assert!(retried, "the CLI reported its retry");
    let failed_call = events.iter().find_map(|e| match &e.body {
        EventBody::Agentd(SupervisorEvent::ModelCall {
            status: 429, error, ..
        }) => error.clone(),
        _ => None,
    });
    assert!(
        failed_call
            .as_deref()
            .unwrap_or_default()
            .contains("rate_limit_error"),
        "{failed_call:?}"
    );
    assert!(ran.stderr.contains("model request 429"), "{}", ran.stderr);
    // The 429 counts as a request but used no tokens.
    assert_eq!(ran.summary.gateway.requests, 3);
    assert_eq!(ran.summary.gateway.usage.input_tokens, 100 + 10);
    assert_eq!(
        ran.summary.usage.input_tokens,
        ran.summary.gateway.usage.input_tokens
    );
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_secrets_are_redacted_from_events_and_transcript() {
    let world = World::new();
    let secret = format!("corp-token-{}", uuid::Uuid::new_v4().simple());
    // The agent prints the secret (as if it found it in the repository).
    std::fs::write(world.repo.join("config.txt"), format!("token={secret}\n")).unwrap();
    git(&world.repo, &["add", "config.txt"]);
    git(&world.repo, &["commit", "--quiet", "-m", "config"]);
    let file = world.scenario(json!({"turns": [bash("cat /workspace/repo/config.txt"), done()]}));
    let mut command = world.agentd_run("show the config").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .env("AGENTD_REDACT", &secret);
    let ran = finish(command);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let dir = std::path::Path::new(&ran.summary.data_dir);
    for name in ["events.jsonl", "transcript.jsonl"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(!text.contains(&secret), "{name} holds the secret");
        assert!(text.contains("token=[REDACTED]"), "{name}: {text}");
    }
    assert!(!ran.stderr.contains(&secret));
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_to_the_same_diff_twice() {
    let world = World::new();
    let key = format!("sk-ant-api03-record-{}", uuid::Uuid::new_v4().simple());
    let file = world.scenario(json!({"turns": [
        {"content": [{"type": "tool_use", "name": "Write", "input": {
            "file_path": "/workspace/repo/notes.md", "content": "recorded\n"}}],
         "usage": {"input_tokens": 50, "output_tokens": 10}},
        bash("echo replayed >> /workspace/repo/notes.md"),
        done()
    ]}));
    let mut record = world.agentd_run("record me").await;
    record
        .arg("--scripted-model")
        .arg(&file)
        .arg("--record")
        .env("ANTHROPIC_API_KEY", &key);
    let recorded = finish(record);
    assert_eq!(recorded.code, 0, "{}", recorded.stderr);
    let cassette = std::path::Path::new(&recorded.summary.data_dir).join("cassette.jsonl");
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(!text.contains(&key), "the cassette holds the API key");
    assert!(text.lines().count() >= 4, "header and three exchanges");

    let mut diffs = Vec::new();
    for _ in 0..2 {
        let mut replay = world.agentd_run("record me").await;
        replay.arg("--replay").arg(&cassette);
        let ran = finish(replay);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(ran.summary.base_commit, recorded.summary.base_commit);
        diffs.push(std::fs::read_to_string(ran.summary.diff_path.unwrap()).unwrap());
        assert_nothing_left(&ran.summary.id, &world.run_dir());
    }
    let original = std::fs::read_to_string(recorded.summary.diff_path.unwrap()).unwrap();
    assert_eq!(diffs[0], diffs[1]);
    assert_eq!(diffs[0], original);
    assert!(
        original.contains("+recorded") && original.contains("+replayed"),
        "{original}"
    );
    assert_nothing_left(&recorded.summary.id, &world.run_dir());
}
