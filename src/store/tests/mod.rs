//! Store tests: each one written once and run on SQLite and on PostgreSQL.

mod harness;

mod claims;
mod conversations;
mod events;
mod fairness;
mod life_cycle;
mod migrations;
mod outbox;
mod records;
mod resources;
mod tenancy;

use crate::execution::Status;
use crate::execution::Usage;
use crate::execution::{Artifact, ChangedFile};
use crate::execution::{ExecutionRecord, Outcome};
use crate::store::{Store, queries};

/// The supervisor the tests write as (the lease holder).
pub const HOLDER: &str = "runner";

/// Claims a queued execution for [`HOLDER`], as a supervisor does before it
/// writes anything about it.
pub async fn hold(store: &dyn Store, id: &str) -> ExecutionRecord {
    store
        .claim(id, HOLDER, std::time::Duration::from_secs(600))
        .await
        .unwrap()
        .expect("a queued execution to claim")
}

/// A new queued execution of tenant `acme`; its id.
pub async fn queued(store: &dyn Store) -> String {
    store
        .create_execution(harness::new_execution("acme"))
        .await
        .unwrap()
        .record
        .id
        .clone()
}

/// A new execution of tenant `acme`, claimed for [`HOLDER`]; its id.
pub async fn held(store: &dyn Store) -> String {
    let id = queued(store).await;
    hold(store, &id).await;
    id
}

/// A full outcome with `status`.
pub fn outcome(status: Status) -> Outcome {
    Outcome {
        status,
        reason: (status != Status::Succeeded).then(|| format!("ended: {status}")),
        head_commit: Some("c0ffee".repeat(6) + "abcd"),
        session_id: Some("session-final".into()),
        num_turns: 4,
        usage: Usage {
            input_tokens: 1200,
            output_tokens: 345,
            cache_creation_input_tokens: 67,
            cache_read_input_tokens: 8901,
        },
        cost_usd: Some(0.0423),
        tool_calls: 9,
        result: Some("Done.\0 (with a NUL)".into()),
        files_changed: vec![
            ChangedFile {
                path: "src/lib.rs".into(),
                change: "M".into(),
            },
            ChangedFile {
                path: "docs/ä b.md".into(),
                change: "A".into(),
            },
        ],
        exit_code: Some(0),
        oom_killed: false,
        has_diff: true,
        has_bundle: true,
        artifacts: vec![
            Artifact {
                path: "report/summary.txt".into(),
                size: 42,
                sha256: "ab".repeat(32),
            },
            Artifact {
                path: "coverage.json".into(),
                size: 7_000_000_000,
                sha256: "cd".repeat(32),
            },
        ],
        duration_ms: 61_234,
        gateway: crate::execution::GatewayUsage {
            requests: 11,
            usage: Usage {
                input_tokens: 1300,
                output_tokens: 350,
                cache_creation_input_tokens: 70,
                cache_read_input_tokens: 9000,
            },
            cost_usd: Some(0.0451),
        },
        conversation: crate::execution::Conversation {
            answers: 4,
            tool_uses: 9,
            stop_reason: Some("end_turn".into()),
            text: Some("Done.\0 (with a NUL)".into()),
        },
        claimed: Some(crate::execution::AgentClaim {
            subtype: "success".into(),
            is_error: false,
            num_turns: 5,
            usage: Usage::default(),
            cost_usd: Some(0.0001),
            tool_calls: 9,
            result: Some("claimed \0 text".into()),
        }),
        left_out: vec![crate::execution::LeftOut {
            path: "big\nfile.bin".into(),
            size: 5 << 30,
            reason: "too_large".into(),
        }],
    }
}

/// Moves a new queued execution along the life cycle until it is `status`
/// (a final status is reached by finishing it from `collecting`).
pub async fn drive_to(store: &dyn Store, id: &str, status: Status) -> ExecutionRecord {
    let mut record = store.get_execution(None, id).await.unwrap().unwrap();
    for step in [Status::Preparing, Status::Running, Status::Collecting] {
        if record.status == status {
            return record;
        }
        record = if step == Status::Preparing {
            hold(store, id).await
        } else {
            store.transition(id, HOLDER, step).await.unwrap()
        };
    }
    if status.is_final() {
        record = store.finish(id, HOLDER, &outcome(status)).await.unwrap();
    }
    assert_eq!(record.status, status);
    record
}

#[test]
fn status_lists_in_sql_match_the_life_cycle() {
    let names = |sql: &str| -> Vec<Status> {
        sql.split(',')
            .map(|name| name.trim().trim_matches('\'').parse().unwrap())
            .collect()
    };
    let live: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|s| !s.is_final() && *s != Status::Queued)
        .collect();
    let unfinished: Vec<Status> = Status::ALL.into_iter().filter(|s| !s.is_final()).collect();
    assert_eq!(names(queries::LIVE), live);
    assert_eq!(names(queries::UNFINISHED), unfinished);
}
