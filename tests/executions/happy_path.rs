//! A scenario that writes, edits and hands back an artifact, end to end.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_edits_and_brings_back_diff_bundle_and_artifacts() {
    let world = World::new();
    let scenario = json!({
        "model": "claude-sonnet-4-5",
        "turns": [
            {"content": [
                {"type": "text", "text": "I'll add a notes file."},
                {"type": "tool_use", "name": "Write", "input": {
                    "file_path": "/workspace/repo/notes/hello.txt", "content": "hello from the agent\n"}},
                {"type": "tool_use", "name": "Read", "input": {"file_path": "/workspace/repo/README.md"}}],
             "usage": {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 0}},
            {"content": [
                {"type": "tool_use", "name": "Edit", "input": {
                    "file_path": "/workspace/repo/README.md",
                    "old_string": "# Sample project",
                    "new_string": "# Sample project\n\nEdited by the agent."}}],
             "usage": {"input_tokens": 150, "output_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 50}},
            {"content": [
                {"type": "tool_use", "name": "Bash", "input": {
                    "command": "printf '\\000\\001\\002binary' > /workspace/repo/data.bin && echo 'all good' > \"$AGENTD_ARTIFACTS_DIR/report.txt\"",
                    "description": "binary file and a report"}}],
             "usage": {"input_tokens": 170, "output_tokens": 25}},
            {"content": [{"type": "text", "text": "Added notes/hello.txt and edited the README."}],
             "usage": {"input_tokens": 190, "output_tokens": 15}}
        ]
    });
    let file = world.scenario(scenario);
    let mut command = world
        .agentd_run("Add a notes file and edit the README")
        .await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--model")
        .arg("claude-sonnet-4-5");
    let ran = finish(command);
    let summary = &ran.summary;
    assert_eq!(ran.code, 0, "stderr:\n{}", ran.stderr);
    assert_eq!(summary.status.as_str(), "succeeded");
    assert_eq!(ran.json["status"], "succeeded");
    // Turns are the model's answers as the gateway saw them: four. Claude Code
    // itself counts a turn per tool round trip (two tools in one answer count
    // twice), so its own claim is five.
    assert_eq!(summary.num_turns, 4);
    assert_eq!(summary.claimed.as_ref().map(|c| c.num_turns), Some(5));
    assert_eq!(summary.tool_calls, 4, "{}", ran.stderr);
    assert_eq!(summary.branch, format!("agent/{}", summary.id));
    assert_eq!(
        summary.result.as_deref(),
        Some("Added notes/hello.txt and edited the README.")
    );

    // Usage and cost are what the scenario scripted (Sonnet: $3 / $15 per million).
    assert_eq!(summary.usage.input_tokens, 120 + 150 + 170 + 190);
    assert_eq!(summary.usage.output_tokens, 30 + 40 + 25 + 15);
    assert_eq!(summary.usage.cache_creation_input_tokens, 50);
    assert_eq!(summary.usage.cache_read_input_tokens, 50);
    let expected_cost = (630.0 * 3.0 + 110.0 * 15.0 + 50.0 * 3.75 + 50.0 * 0.3) / 1e6;
    let cost = summary.cost_usd.expect("cost");
    assert!(
        (cost - expected_cost).abs() < 1e-9,
        "cost {cost} != {expected_cost}"
    );
    // The gateway's own metering agrees with the agent's report.
    assert_eq!(summary.gateway.requests, 4);
    assert_eq!(summary.gateway.usage, summary.usage);
    let claimed = summary.claimed.as_ref().expect("the agent's own report");
    assert_eq!(claimed.subtype, "success");
    assert_eq!(claimed.usage, summary.usage);
    assert!((claimed.cost_usd.expect("claimed cost") - expected_cost).abs() < 1e-9);
    assert_eq!(claimed.tool_calls, summary.tool_calls);
    let metered = summary.gateway.cost_usd.expect("gateway cost");
    assert!(
        (metered - expected_cost).abs() < 1e-9,
        "gateway cost {metered}"
    );
    for key in [
        "id",
        "status",
        "num_turns",
        "cost_usd",
        "diff_path",
        "artifacts",
        "branch",
    ] {
        assert!(ran.json.get(key).is_some(), "summary lacks {key}");
    }
    assert!(ran.json["usage"]["input_tokens"].is_u64());

    // The diff holds the new file, the edit and the binary file.
    let diff = std::fs::read_to_string(summary.diff_path.as_ref().unwrap()).unwrap();
    assert!(diff.contains("+++ b/notes/hello.txt"), "{diff}");
    assert!(diff.contains("+hello from the agent"), "{diff}");
    assert!(diff.contains("+Edited by the agent."), "{diff}");
    assert!(diff.contains("GIT binary patch"), "{diff}");
    let mut changed: Vec<_> = summary
        .files_changed
        .iter()
        .map(|f| format!("{} {}", f.change, f.path))
        .collect();
    changed.sort();
    assert_eq!(changed, ["A data.bin", "A notes/hello.txt", "M README.md"]);

    // The bundle holds a commit on agent/<id> with those changes, on top of main.
    let bundle = summary.bundle_path.as_ref().expect("bundle");
    let check = world.root.path().join("check");
    git(
        world.root.path(),
        &[
            "clone",
            "--quiet",
            world.repo.to_str().unwrap(),
            check.to_str().unwrap(),
        ],
    );
    git(&check, &["bundle", "verify", bundle]);
    let branch = &summary.branch;
    git(
        &check,
        &["fetch", "--quiet", bundle, &format!("{branch}:{branch}")],
    );
    assert_eq!(
        git(&check, &["rev-parse", branch]).trim(),
        summary.head_commit.as_deref().unwrap()
    );
    assert_eq!(
        git(&check, &["show", &format!("{branch}:notes/hello.txt")]),
        "hello from the agent\n"
    );
    assert_eq!(
        git(&check, &["rev-parse", &format!("{branch}~1")]).trim(),
        summary.base_commit.as_deref().unwrap()
    );
    let message = git(&check, &["log", "-1", "--format=%an <%ae>%n%B", branch]);
    assert!(
        message.starts_with("agentd <agentd@localhost>\nagentd: Add a notes file"),
        "{message}"
    );

    // The artifact came back.
    assert_eq!(summary.artifacts.len(), 1);
    assert!(summary.artifacts[0].ends_with("/artifacts/report.txt"));
    assert_eq!(
        std::fs::read_to_string(&summary.artifacts[0]).unwrap(),
        "all good\n"
    );
    assert!(summary.refused.is_empty());

    // The event log is ordered without gaps and tells the story.
    let events = ran.events();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for kind in [
        "status",
        "session_started",
        "text",
        "tool_call",
        "tool_result",
        "result",
    ] {
        assert!(
            kinds.contains(&kind.to_string()),
            "no {kind} event in {kinds:?}"
        );
    }
    assert!(
        std::path::Path::new(&summary.data_dir)
            .join("summary.json")
            .exists()
    );
    assert!(
        ran.stderr.contains("⚙ Write"),
        "live events on stderr:\n{}",
        ran.stderr
    );

    assert_nothing_left(&summary.id, &world.run_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_from_the_requested_ref_and_reports_unknown_refs() {
    let world = World::new();
    git(
        &world.repo,
        &["commit", "--quiet", "--allow-empty", "-m", "after the tag"],
    );
    let tagged = git(&world.repo, &["rev-parse", "v1"]).trim().to_string();
    let file = world.scenario(json!({"turns": [done()]}));

    let mut command = world.agentd_run("nothing to do").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--ref")
        .arg("v1");
    let ran = finish(command);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.summary.base_commit.as_deref(), Some(tagged.as_str()));
    assert_eq!(ran.summary.head_commit.as_deref(), Some(tagged.as_str()));
    assert!(ran.summary.files_changed.is_empty());
    assert!(ran.summary.bundle_path.is_none());
    assert_nothing_left(&ran.summary.id, &world.run_dir());

    let mut command = world.agentd_run("nothing to do").await;
    command
        .arg("--scripted-model")
        .arg(&file)
        .arg("--ref")
        .arg("no-such-branch");
    let ran = finish(command);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.summary.status.as_str(), "failed");
    assert!(
        ran.summary
            .reason
            .as_deref()
            .unwrap()
            .contains("no-such-branch"),
        "{:?}",
        ran.summary.reason
    );
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}
