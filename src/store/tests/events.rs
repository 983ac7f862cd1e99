//! The event log: numbering, concurrency, paging, and exact round trips.

use std::sync::Arc;

use pretty_assertions::assert_eq;
use serde_json::json;
use tokio::sync::Barrier;

use super::harness::{TestDb, on_both_backends};
use super::{HOLDER, held};
use crate::execution::{AgentEvent, AgentResult, Usage};
use crate::execution::{EventBody, Status, SupervisorEvent};
use crate::store::StoreError;

/// One of every kind of body, with awkward content.
fn assorted_bodies() -> Vec<EventBody> {
    vec![
        EventBody::status(Status::Preparing, None),
        EventBody::status(Status::Failed, Some("policy: image not allowed".into())),
        EventBody::progress("fetching mirror"),
        EventBody::warning("slow disk"),
        EventBody::Agentd(SupervisorEvent::Log {
            line: "stderr \u{1b}[31mred\u{1b}[0m".into(),
        }),
        EventBody::Agentd(SupervisorEvent::Refused {
            path: "../escape".into(),
            reason: "path leaves the folder".into(),
        }),
        EventBody::Agent(AgentEvent::SessionStarted {
            session_id: Some("s-1".into()),
            model: Some("claude-sonnet-4-5".into()),
            cwd: Some("/workspace/repo".into()),
            tools: vec!["Bash".into(), "Write".into()],
            version: Some("2.1.0".into()),
            permission_mode: None,
        }),
        EventBody::Agent(AgentEvent::Text {
            message_id: Some("m1".into()),
            text: "Hello 👋\n\ttabs \"quotes\" \\ back".into(),
        }),
        EventBody::Agent(AgentEvent::ToolCall {
            id: "toolu_1".into(),
            name: "Write".into(),
            input: json!({"file_path": "a.txt", "content": "x", "nested": {"n": [1, 2.5, -3e-7, 18446744073709551615u64, null, true]}}),
            parent_tool_use_id: Some("toolu_0".into()),
        }),
        EventBody::Agent(AgentEvent::ToolResult {
            tool_use_id: "toolu_1".into(),
            content: "ok".into(),
            is_error: false,
        }),
        EventBody::Agent(AgentEvent::Usage {
            message_id: None,
            usage: Usage {
                input_tokens: 1,
                output_tokens: 2,
                cache_creation_input_tokens: 3,
                cache_read_input_tokens: 4,
            },
        }),
        EventBody::Agent(AgentEvent::Result(AgentResult {
            subtype: "success".into(),
            is_error: false,
            num_turns: 3,
            duration_ms: Some(1234),
            duration_api_ms: None,
            total_cost_usd: Some(0.1 + 0.2),
            usage: Usage::default(),
            result: Some("done".into()),
            errors: vec![],
            permission_denials: 0,
            session_id: Some("s-1".into()),
        })),
        EventBody::Agent(AgentEvent::Unknown {
            raw: json!({"type": "future_thing", "a": {"b": [1, "two"]}}),
        }),
        EventBody::Agent(AgentEvent::Raw {
            line: "not json\0with a NUL".into(),
        }),
    ]
}

on_both_backends!(
    events_are_numbered_from_one_and_round_trip_exactly,
    concurrent_appenders_leave_no_gaps,
    events_after_pages_in_order,
    pages_are_cut_by_their_bytes,
    large_batches_are_stored_whole,
);

async fn events_are_numbered_from_one_and_round_trip_exactly(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    let bodies = assorted_bodies();
    let stored = db
        .store
        .append_events(&id, HOLDER, &bodies, Some(17))
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=bodies.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(
        stored.iter().map(|e| e.body.clone()).collect::<Vec<_>>(),
        bodies
    );
    let read = db.store.events_after(&id, 0, 1000).await.unwrap();
    assert_eq!(read, stored, "bodies and timestamps read back exactly");
    assert_eq!(
        db.store
            .get_execution(None, &id)
            .await
            .unwrap()
            .unwrap()
            .log_cursor,
        17
    );

    let more = db
        .store
        .append_events(&id, HOLDER, &[EventBody::progress("more")], None)
        .await
        .unwrap();
    assert_eq!(more[0].seq, bodies.len() as u64 + 1);
    assert!(more[0].at >= stored[0].at);
    assert_eq!(
        db.store
            .get_execution(None, &id)
            .await
            .unwrap()
            .unwrap()
            .log_cursor,
        17,
        "None keeps the cursor"
    );

    let none = db
        .store
        .append_events(&id, HOLDER, &[], Some(40))
        .await
        .unwrap();
    assert_eq!(none, vec![]);
    assert_eq!(
        db.store
            .get_execution(None, &id)
            .await
            .unwrap()
            .unwrap()
            .log_cursor,
        40
    );

    // Another execution numbers its own events.
    let other = held(db.store.as_ref()).await;
    let first = db
        .store
        .append_events(&other, HOLDER, &[EventBody::progress("x")], None)
        .await
        .unwrap();
    assert_eq!(first[0].seq, 1);

    match db
        .store
        .append_events("no-such-id", HOLDER, &bodies, Some(1))
        .await
    {
        Err(StoreError::NotFound(missing)) => assert_eq!(missing, "no-such-id"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        db.store.events_after("no-such-id", 0, 10).await.unwrap(),
        vec![]
    );
}

async fn concurrent_appenders_leave_no_gaps(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    let start = Arc::new(Barrier::new(4));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (store, start, id) = (db.store.clone(), start.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            start.wait().await;
            let mut i = 0;
            while i < 50 {
                let batch = 1 + (i + writer) % 3;
                let bodies: Vec<EventBody> = (i..(i + batch).min(50))
                    .map(|n| EventBody::progress(format!("w{writer}-{n:02}")))
                    .collect();
                i += bodies.len();
                let stored = store
                    .append_events(&id, HOLDER, &bodies, Some(i as u64))
                    .await
                    .unwrap();
                let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
                let expected: Vec<u64> = (seqs[0]..seqs[0] + bodies.len() as u64).collect();
                assert_eq!(seqs, expected, "one batch is numbered consecutively");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let events = db.store.events_after(&id, 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>()
    );
    for writer in 0..4 {
        let mine: Vec<String> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Agentd(SupervisorEvent::Progress { message })
                    if message.starts_with(&format!("w{writer}-")) =>
                {
                    Some(message.clone())
                }
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("w{writer}-{n:02}")).collect();
        assert_eq!(mine, expected, "each writer's events keep their order");
    }
    let at: Vec<_> = events.iter().map(|e| e.at).collect();
    assert!(
        at.windows(2).all(|w| w[0] <= w[1]),
        "times follow the numbering"
    );
    assert_eq!(
        db.store
            .get_execution(None, &id)
            .await
            .unwrap()
            .unwrap()
            .log_cursor,
        50
    );
}

async fn events_after_pages_in_order(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    let bodies: Vec<EventBody> = (1..=25)
        .map(|n| EventBody::progress(format!("step {n}")))
        .collect();
    let stored = db
        .store
        .append_events(&id, HOLDER, &bodies, None)
        .await
        .unwrap();
    let page = |after, limit| {
        let store = db.store.clone();
        let id = id.clone();
        async move { store.events_after(&id, after, limit).await.unwrap() }
    };
    assert_eq!(page(0, 10).await, stored[0..10].to_vec());
    assert_eq!(page(10, 10).await, stored[10..20].to_vec());
    assert_eq!(page(20, 10).await, stored[20..25].to_vec());
    assert_eq!(page(25, 10).await, vec![]);
    assert_eq!(page(3, 1).await, stored[3..4].to_vec());
    assert_eq!(page(0, 0).await, vec![]);
}

async fn pages_are_cut_by_their_bytes(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    // Ten events of about 10 KB each.
    let bodies: Vec<EventBody> = (0..10)
        .map(|n| EventBody::progress(format!("{n}{}", "x".repeat(10_000))))
        .collect();
    let stored = db
        .store
        .append_events(&id, HOLDER, &bodies, None)
        .await
        .unwrap();
    let page = |after, limit, bytes| {
        let store = db.store.clone();
        let id = id.clone();
        async move { store.events_page(&id, after, limit, bytes).await.unwrap() }
    };
    // About 25 KB: the events whose predecessors stay under it — three.
    assert_eq!(page(0, 500, 25_000).await, stored[0..3].to_vec());
    assert_eq!(page(3, 500, 25_000).await, stored[3..6].to_vec());
    // The first event always comes, however small the bound.
    assert_eq!(page(0, 500, 1).await, stored[0..1].to_vec());
    // The count still bounds; the end of the log is an empty page.
    assert_eq!(page(0, 2, 1 << 20).await, stored[0..2].to_vec());
    assert_eq!(page(8, 500, 1 << 20).await, stored[8..10].to_vec());
    assert_eq!(page(10, 500, 1 << 20).await, vec![]);
}

async fn large_batches_are_stored_whole(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    let bodies: Vec<EventBody> = (0..250)
        .map(|n| EventBody::progress(format!("{n}")))
        .collect();
    let stored = db
        .store
        .append_events(&id, HOLDER, &bodies, Some(250))
        .await
        .unwrap();
    assert_eq!(stored.len(), 250);
    assert_eq!(db.store.events_after(&id, 0, 1000).await.unwrap(), stored);
}
