//! Every tool call the agent makes is an event and is counted, whatever its
//! input holds.

use agentd::execution::AgentEvent;
use agentd::execution::EventBody;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_surrogate_in_a_tool_input_loses_no_tool_call() {
    let world = World::new();
    // The scripted model sends the second call's input as raw JSON text holding
    // an unpaired surrogate escape; Claude Code reads it, runs the call, and
    // prints it in its stream-json line as `\udc80`, which serde_json refuses.
    let file = world.scenario(json!({"turns": [
        bash("echo one"),
        {"content": [{"type": "tool_use", "name": "Bash",
                      "input_json": r#"{"command":"echo two \udc80","description":"lone \udc80"}"#}],
         "usage": {"input_tokens": 10, "output_tokens": 10}},
        bash("echo three > /workspace/repo/three.txt"),
        done()
    ]}));
    let mut command = world.agentd_run("run three commands").await;
    command.arg("--scripted-model").arg(&file);
    let ran = finish(command);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let calls: Vec<(String, serde_json::Value)> = ran
        .events()
        .into_iter()
        .filter_map(|event| match event.body {
            EventBody::Agent(AgentEvent::ToolCall { id, input, .. }) => Some((id, input)),
            _ => None,
        })
        .collect();
    let ids: Vec<&str> = calls.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["toolu_0_0", "toolu_1_0", "toolu_2_0"],
        "{}",
        ran.stderr
    );
    assert_eq!(calls[1].1["command"], "echo two \u{fffd}");
    assert_eq!(calls[1].1["description"], "lone \u{fffd}");
    assert_eq!(ran.summary.tool_calls, 3, "{}", ran.stderr);
    // The call really ran, after the one before it and before the one after.
    let results = ran.tool_results();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[1].starts_with("two "), "{results:?}");
    assert_eq!(
        ran.summary
            .files_changed
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["three.txt"]
    );
    assert_nothing_left(&ran.summary.id, &world.run_dir());
}
