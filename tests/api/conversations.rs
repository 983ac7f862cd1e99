//! Conversations: follow-ups that resume the agent's session on the parent's
//! branch, with the real CLI and a scripted model that checks what it is
//! sent.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

const FIRST_PROMPT: &str = "Write the first note";
const SECOND_PROMPT: &str = "Now write the second note";

/// Two steps of one conversation. The follow-up's first request must carry
/// the first step's prompt and answer (its session was resumed) and its own
/// prompt, or the model answers 400 and the follow-up fails.
fn two_step_scenario() -> Value {
    json!({
        "turns": [
            {"content": [{"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes/first.txt", "content": "first\n"}}],
             "usage": {"input_tokens": 10, "output_tokens": 5}},
            {"content": [{"type": "text", "text": "Wrote the first note."}],
             "usage": {"input_tokens": 10, "output_tokens": 5}},
            {"expect": [FIRST_PROMPT, "Wrote the first note.", SECOND_PROMPT],
             "content": [{"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes/second.txt", "content": "second\n"}}],
             "usage": {"input_tokens": 20, "output_tokens": 5}},
            {"content": [{"type": "text", "text": "Wrote the second note."}],
             "usage": {"input_tokens": 20, "output_tokens": 5}}
        ]
    })
}

fn id_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 202, "{}", answer.json());
    answer.json()["id"].as_str().unwrap().to_string()
}

async fn follow_up(app: &App, parent: &str, body: Value) -> String {
    id_of(
        &app.post_json(&format!("/v1/executions/{parent}/follow-ups"), &body, None)
            .await,
    )
}

/// The tree of `commit` after fetching `bundles` (in order) into a clone of
/// the sample repository: the files the branch holds.
fn files_at(repo: &Path, bundles: &[Vec<u8>], commit: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("clone");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            repo.to_str().unwrap(),
            "clone",
        ],
    );
    for (n, bundle) in bundles.iter().enumerate() {
        let path = dir.path().join(format!("{n}.bundle"));
        std::fs::write(&path, bundle).unwrap();
        git(
            &clone,
            &[
                "fetch",
                "--quiet",
                path.to_str().unwrap(),
                "refs/heads/*:refs/remotes/b/*",
            ],
        );
    }
    let out = Command::new("git")
        .current_dir(&clone)
        .args(["ls-tree", "-r", "--name-only", commit])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_resumes_the_session_on_the_parents_branch() {
    let app = spawn_app(two_step_scenario(), 2).await;
    let parent = id_of(
        &app.post_json("/v1/executions", &app.request(FIRST_PROMPT), None)
            .await,
    );
    // Submitted while the parent is still queued or running: it waits.
    let child = follow_up(&app, &parent, json!({"prompt": SECOND_PROMPT})).await;
    let done = app.wait_final(&parent).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["conversation_id"], parent.as_str());
    let after = app.wait_final(&child).await;
    assert_eq!(after["status"], "succeeded", "{after}");
    assert_eq!(after["parent_id"], parent.as_str());
    assert_eq!(after["conversation_id"], parent.as_str());
    assert_eq!(
        after["session_id"],
        child.as_str(),
        "agentd names the session"
    );
    assert_eq!(
        after["branch"], done["branch"],
        "the first follow-up continues the branch"
    );
    assert_eq!(
        after["base_commit"], done["head_commit"],
        "it starts where the parent ended"
    );
    assert!(
        after["started_at"].as_str().unwrap() >= done["finished_at"].as_str().unwrap(),
        "it waited for its parent: {after} {done}"
    );
    // The follow-up's diff is its own step; its branch holds both.
    let diff = app.get(&format!("/v1/executions/{child}/diff")).await;
    let diff = String::from_utf8_lossy(&diff.bytes).to_string();
    assert!(
        diff.contains("notes/second.txt") && !diff.contains("notes/first.txt"),
        "{diff}"
    );
    let bundles = [
        app.get(&format!("/v1/executions/{parent}/bundle"))
            .await
            .bytes,
        app.get(&format!("/v1/executions/{child}/bundle"))
            .await
            .bytes,
    ];
    let files = files_at(&app.repo, &bundles, after["head_commit"].as_str().unwrap());
    assert!(
        files.contains(&"notes/first.txt".to_string())
            && files.contains(&"notes/second.txt".to_string()),
        "{files:?}"
    );
    // The parent lists its child; the conversation lists both with totals.
    let shown = app.execution(&parent).await;
    assert_eq!(shown["children"], json!([child]));
    let thread = app.get(&format!("/v1/conversations/{parent}")).await;
    assert_eq!(thread.status, 200, "{}", thread.json());
    let thread = thread.json();
    let steps: Vec<&str> = thread["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, [parent.as_str(), child.as_str()]);
    assert_eq!(thread["totals"]["steps"], 2);
    assert_eq!(thread["totals"]["usage"]["input_tokens"], 60, "{thread}");
    assert_eq!(thread["totals"]["num_turns"], 4, "{thread}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_follow_ups_of_one_parent_never_share_a_branch() {
    let app = spawn_app(two_step_scenario(), 2).await;
    let parent = id_of(
        &app.post_json("/v1/executions", &app.request(FIRST_PROMPT), None)
            .await,
    );
    let done = app.wait_final(&parent).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let first = follow_up(&app, &parent, json!({"prompt": SECOND_PROMPT})).await;
    let second = follow_up(&app, &parent, json!({"prompt": SECOND_PROMPT})).await;
    let branch = done["branch"].as_str().unwrap();
    for (id, expected) in [
        (&first, branch.to_string()),
        (&second, format!("{branch}-2")),
    ] {
        let after = app.wait_final(id).await;
        assert_eq!(after["status"], "succeeded", "{after}");
        assert_eq!(after["branch"], expected.as_str());
        assert_eq!(after["base_commit"], done["head_commit"]);
    }
    assert_eq!(
        app.execution(&parent).await["children"],
        json!([first, second])
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_of_a_timed_out_parent_resumes_its_session() {
    let scenario = json!({
        "turns": [
            {"content": [{"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes/first.txt", "content": "first\n"}}]},
            {"content": [{"type": "tool_use", "name": "Bash", "input": {
                "command": "timeout 600 tail -f /dev/null", "description": "wait",
                "timeout": 600000}}]},
            {"expect": [FIRST_PROMPT, SECOND_PROMPT],
             "content": [{"type": "text", "text": "Picking up where I stopped."}]}
        ]
    });
    let app = spawn_app(scenario, 2).await;
    let mut request = app.request(FIRST_PROMPT);
    request["limits"]["timeout"] = "20s".into();
    let parent = id_of(&app.post_json("/v1/executions", &request, None).await);
    let done = app.wait_final(&parent).await;
    assert_eq!(done["status"], "timed_out", "{done}");
    let child = follow_up(
        &app,
        &parent,
        json!({"prompt": SECOND_PROMPT, "limits": {"timeout": "4m"}}),
    )
    .await;
    let after = app.wait_final(&child).await;
    assert_eq!(after["status"], "succeeded", "{after}");
    assert_eq!(after["base_commit"], done["head_commit"]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_are_refused_clearly() {
    let app = spawn_app(two_step_scenario(), 0).await;
    let parent = id_of(
        &app.post_json("/v1/executions", &app.request(FIRST_PROMPT), None)
            .await,
    );
    let path = format!("/v1/executions/{parent}/follow-ups");
    app.post_json(&path, &json!({"prompt": "  "}), None)
        .await
        .assert_error(422, "invalid_field", Some("prompt"));
    app.post_json(&path, &json!({"prompt": "x", "repo": "/etc"}), None)
        .await
        .assert_error(400, "invalid_body", Some("repo"));
    app.post_json(
        "/v1/executions/01900000-0000-7000-8000-000000000000/follow-ups",
        &json!({"prompt": "x"}),
        None,
    )
    .await
    .assert_error(404, "not_found", None);
    let missing = app
        .get("/v1/conversations/01900000-0000-7000-8000-000000000000")
        .await;
    assert_eq!(missing.status, 404);
    app.finish().await;
}

/// Waits until the model was asked for turn `turn`.
async fn wait_for_turn(app: &App, turn: usize) {
    let started = std::time::Instant::now();
    while !app.model.requests().iter().any(|r| r.turn == Some(turn)) {
        assert!(
            started.elapsed().as_secs() < 120,
            "turn {turn} never asked for"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn streaming(app: &App, prompt: &str) -> Value {
    let mut request = app.request(prompt);
    request["streaming_input"] = true.into();
    request
}

async fn event_types(app: &App, id: &str) -> Vec<Value> {
    app.events(id, None, "")
        .await
        .into_iter()
        .map(|e| e.data)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_execution_ends_by_itself() {
    let app = spawn_app(writing_scenario(), 1).await;
    let id = id_of(
        &app.post_json("/v1/executions", &streaming(&app, "Add a note"), None)
            .await,
    );
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["streaming_input"], true);
    assert!(
        done["files_changed"]
            .to_string()
            .contains("notes/hello.txt"),
        "{done}"
    );
    let events = event_types(&app, &id).await;
    assert!(
        events.iter().any(|e| e["type"] == "input_closed"),
        "agentd closed the input: {events:?}"
    );
    // Ended: nothing more can be said.
    app.post_json(
        &format!("/v1/executions/{id}/messages"),
        &json!({"text": "late"}),
        None,
    )
    .await
    .assert_error(409, "conflict", None);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_sent_mid_run_reaches_the_models_next_request() {
    let scenario = json!({
        "turns": [
            {"content": [{"type": "tool_use", "name": "Bash", "input": {
                "command": "timeout 8 tail -f /dev/null; echo waited", "description": "wait",
                "timeout": 600000}}]},
            {"expect": ["use the existing parser"],
             "content": [{"type": "text", "text": "Switching to the existing parser."}]}
        ]
    });
    let app = spawn_app(scenario, 1).await;
    let id = id_of(
        &app.post_json("/v1/executions", &streaming(&app, "Parse the file"), None)
            .await,
    );
    wait_for_turn(&app, 0).await;
    let said = app
        .post_json(
            &format!("/v1/executions/{id}/messages"),
            &json!({"text": "Stop: use the existing parser"}),
            None,
        )
        .await;
    assert_eq!(said.status, 202, "{}", said.json());
    assert_eq!(said.json()["seq"], 1);
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let events = event_types(&app, &id).await;
    let message = events
        .iter()
        .find(|e| e["type"] == "user_message")
        .unwrap_or_else(|| panic!("no user_message: {events:?}"));
    assert_eq!(message["text"], "Stop: use the existing parser");
    assert_eq!(message["sender"], "operator");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_stops_the_turn_and_a_message_redirects_it() {
    let scenario = json!({
        "turns": [
            {"content": [{"type": "tool_use", "name": "Bash", "input": {
                "command": "timeout 600 tail -f /dev/null", "description": "wait forever",
                "timeout": 600000}}]},
            {"expect": ["do the small fix instead"],
             "content": [{"type": "text", "text": "Doing the small fix."}]}
        ]
    });
    let app = spawn_app(scenario, 1).await;
    let id = id_of(
        &app.post_json(
            "/v1/executions",
            &streaming(&app, "Do the big refactor"),
            None,
        )
        .await,
    );
    wait_for_turn(&app, 0).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let stopped = app
        .post_json(&format!("/v1/executions/{id}/interrupt"), &json!({}), None)
        .await;
    assert_eq!(stopped.status, 202, "{}", stopped.json());
    // The turn ends; the execution does not.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(app.execution(&id).await["status"], "running");
    let said = app
        .post_json(
            &format!("/v1/executions/{id}/messages"),
            &json!({"text": "do the small fix instead"}),
            None,
        )
        .await;
    assert_eq!(said.status, 202, "{}", said.json());
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        done["duration_ms"].as_u64().unwrap() < 120_000,
        "the 600 s tool did not run out: {done}"
    );
    let events = event_types(&app, &id).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let interrupted = kinds
        .iter()
        .position(|k| *k == "interrupt_requested")
        .unwrap();
    let message = kinds.iter().position(|k| *k == "user_message").unwrap();
    assert!(interrupted < message, "{kinds:?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_streaming_execution_takes_messages() {
    let app = spawn_app(writing_scenario(), 0).await;
    let plain = id_of(
        &app.post_json("/v1/executions", &app.request("x"), None)
            .await,
    );
    app.post_json(
        &format!("/v1/executions/{plain}/messages"),
        &json!({"text": "hi"}),
        None,
    )
    .await
    .assert_error(409, "conflict", None);
    let live = id_of(
        &app.post_json("/v1/executions", &streaming(&app, "x"), None)
            .await,
    );
    let path = format!("/v1/executions/{live}/messages");
    app.post_json(&path, &json!({"text": " "}), None)
        .await
        .assert_error(422, "invalid_field", Some("text"));
    app.post_json(&path, &json!({"text": "x", "extra": 1}), None)
        .await
        .assert_error(400, "invalid_body", Some("extra"));
    app.post_json(
        "/v1/executions/01900000-0000-7000-8000-000000000000/messages",
        &json!({"text": "hi"}),
        None,
    )
    .await
    .assert_error(404, "not_found", None);
    app.finish().await;
}

/// The attacker's test for the session boundary: an agent (here its teardown
/// hook, which runs as the agent after the CLI) swaps its session folder for
/// a link to the container's root, its transcript for a link to a file
/// outside the workspace, or makes the transcript too large. None of it is
/// kept; each execution still succeeds; a follow-up starts a fresh session
/// and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_session_folder_is_not_kept_and_the_follow_up_starts_fresh() {
    let app = spawn_app(two_step_scenario(), 3).await;
    let attacks = [
        "rm -rf /workspace/.agentd/sessions && ln -s / /workspace/.agentd/sessions",
        "cd /workspace/.agentd/sessions/-workspace && rm -f \"$AGENTD_EXECUTION_ID.jsonl\" \
         && ln -s /etc/passwd \"$AGENTD_EXECUTION_ID.jsonl\"",
        "head -c 40000000 /dev/zero > \"/workspace/.agentd/sessions/-workspace/$AGENTD_EXECUTION_ID.jsonl\"",
    ];
    let mut ids = Vec::new();
    for attack in attacks {
        let mut request = app.request(FIRST_PROMPT);
        request["hooks"] = json!({"teardown": [{"command": attack}]});
        ids.push(id_of(
            &app.post_json("/v1/executions", &request, None).await,
        ));
    }
    for id in &ids {
        let done = app.wait_final(id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let kept = app
            .root()
            .join(format!("data/executions/{id}/session.jsonl"));
        assert!(!kept.exists(), "{} was kept", kept.display());
    }
    let warnings: Vec<String> = event_types(&app, &ids[2])
        .await
        .iter()
        .filter(|e| e["type"] == "warning")
        .map(|e| e["message"].to_string())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("larger than 32 MiB")),
        "{warnings:?}"
    );
    let child = follow_up(&app, &ids[0], json!({"prompt": SECOND_PROMPT})).await;
    let after = app.wait_final(&child).await;
    assert_eq!(after["status"], "succeeded", "{after}");
    let events = event_types(&app, &child).await;
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("starts a fresh session"))),
        "{events:?}"
    );
    app.finish().await;
}

/// The attacker's test for the resumed session's way in: the follow-up's
/// agent tries to write its parent's transcript where it is bound and to
/// find anything else there. The bind is read-only and holds that file
/// alone; the parent's stored transcript is unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_cannot_write_its_parents_transcript() {
    let probe = "{ echo tamper >> /run/agentd-resume/session.jsonl && echo WROTE || echo REFUSED; \
                 rm -f /run/agentd-resume/session.jsonl && echo REMOVED || echo KEPT; \
                 ls -A /run/agentd-resume; } > /workspace/repo/probe.txt 2>/dev/null";
    let scenario = json!({
        "turns": [
            {"content": [{"type": "text", "text": "Nothing yet."}]},
            {"expect": [FIRST_PROMPT],
             "content": [{"type": "tool_use", "name": "Bash", "input": {
                "command": probe, "description": "probe"}}]},
            {"content": [{"type": "text", "text": "Probed."}]}
        ]
    });
    let app = spawn_app(scenario, 1).await;
    let parent = id_of(
        &app.post_json("/v1/executions", &app.request(FIRST_PROMPT), None)
            .await,
    );
    assert_eq!(app.wait_final(&parent).await["status"], "succeeded");
    let stored = app
        .root()
        .join(format!("data/executions/{parent}/session.jsonl"));
    let before = std::fs::read(&stored).expect("the parent's session is kept");
    let child = follow_up(&app, &parent, json!({"prompt": SECOND_PROMPT})).await;
    let after = app.wait_final(&child).await;
    assert_eq!(after["status"], "succeeded", "{after}");
    let diff = app.get(&format!("/v1/executions/{child}/diff")).await;
    let diff = String::from_utf8_lossy(&diff.bytes).to_string();
    assert!(
        diff.contains("+REFUSED") && diff.contains("+KEPT"),
        "{diff}"
    );
    assert!(
        diff.contains("+session.jsonl") && !diff.contains("+WROTE"),
        "{diff}"
    );
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        before,
        "the stored transcript is untouched"
    );
    app.finish().await;
}
