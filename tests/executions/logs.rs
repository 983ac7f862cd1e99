//! Structured logs: everything an execution logs is in a span carrying its id
//! (and tenant), one span per phase inside it, so JSON logs filter per execution.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_phase_logs_inside_a_span_carrying_the_execution_id() {
    let world = World::new();
    let file = world.scenario(json!({"turns": [bash("echo hi > note.txt"), done()]}));
    let mut command = world.agentd_run("log it").await;
    command.arg("--scripted-model").arg(&file).args([
        "--log",
        "agentd=info",
        "--log-format",
        "json",
    ]);
    let ran = finish(command);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let id = ran.summary.id.clone();
    let logs: Vec<Value> = ran
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|value: &Value| value.get("spans").is_some())
        .collect();
    for phase in ["prepare", "watch", "collect", "finish"] {
        let inside = logs.iter().any(|line| {
            let spans = line["spans"].as_array().cloned().unwrap_or_default();
            let execution = spans.iter().any(|span| {
                span["name"] == "execution"
                    && span["execution"] == id.as_str()
                    && span["tenant"] == "default"
            });
            execution && spans.iter().any(|span| span["name"] == phase)
        });
        assert!(
            inside,
            "no log line of phase {phase} in the execution's span:\n{logs:#?}"
        );
    }
    assert_nothing_left(&id, &world.run_dir());
}
