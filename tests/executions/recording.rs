//! Recording a run whatever the upstream's framing: a model that frames its
//! streamed answers with `Content-Length` on kept-alive connections must leave
//! a cassette holding every exchange whole, and that cassette must replay.

use agentd::gateway::Cassette;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_recorded_from_a_content_length_upstream_replays_to_the_same_diff() {
    let world = World::new();
    let file = world.scenario(json!({
        "framing": "content_length",
        "turns": [
            {"content": [{"type": "tool_use", "name": "Write", "input": {
                "file_path": "/workspace/repo/notes.md", "content": "framed\n"}}],
             "usage": {"input_tokens": 50, "output_tokens": 10}},
            bash("echo second >> /workspace/repo/notes.md"),
            bash("echo third >> /workspace/repo/notes.md"),
            done()
        ]
    }));
    let mut record = world.agentd_run("record a framed run").await;
    record.arg("--scripted-model").arg(&file).arg("--record");
    let recorded = finish(record);
    assert_eq!(recorded.code, 0, "{}", recorded.stderr);
    let path = std::path::Path::new(&recorded.summary.data_dir).join("cassette.jsonl");
    let cassette = Cassette::load(&path).unwrap();
    for exchange in &cassette.exchanges {
        assert_eq!(
            (
                exchange.status,
                exchange.interrupted.as_deref(),
                exchange.truncated
            ),
            (200, None, false),
            "exchange {} (turn {:?}) is not recorded whole",
            exchange.seq,
            exchange.turn
        );
        assert!(!exchange.response_body.is_empty(), "{}", exchange.seq);
    }
    let mut seqs: Vec<u64> = cassette.exchanges.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    let every: Vec<u64> = (0..cassette.exchanges.len() as u64).collect();
    assert_eq!(seqs, every, "every request of the run is in the cassette");
    let turns: Vec<usize> = cassette
        .exchanges
        .iter()
        .filter(|e| String::from_utf8_lossy(&e.request_body).contains("\"tools\""))
        .filter_map(|e| e.turn)
        .collect();
    for turn in 0..4 {
        assert!(turns.contains(&turn), "turn {turn} missing from {turns:?}");
    }

    let mut replay = world.agentd_run("record a framed run").await;
    replay.arg("--replay").arg(&path);
    let replayed = finish(replay);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert_eq!(replayed.summary.base_commit, recorded.summary.base_commit);
    let original = std::fs::read_to_string(recorded.summary.diff_path.unwrap()).unwrap();
    let again = std::fs::read_to_string(replayed.summary.diff_path.unwrap()).unwrap();
    assert_eq!(again, original);
    assert!(
        original.contains("+framed") && original.contains("+third"),
        "{original}"
    );
    assert_nothing_left(&replayed.summary.id, &world.run_dir());
    assert_nothing_left(&recorded.summary.id, &world.run_dir());
}
