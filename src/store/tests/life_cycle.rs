//! The life cycle as the store enforces it: transitions, facts, finishing.

use std::time::Duration;

use chrono::{SubsecRound, TimeZone, Utc};
use pretty_assertions::assert_eq;

use super::harness::{TestDb, on_both_backends};
use super::{HOLDER, held, queued};
use super::{drive_to, outcome};
use crate::execution::Status;
use crate::store::{Facts, StoreError};

on_both_backends!(
    every_transition_is_allowed_or_refused_by_the_life_cycle,
    facts_fill_in_and_keep_what_they_do_not_name,
    finish_writes_every_figure_and_the_artifacts,
);

async fn every_transition_is_allowed_or_refused_by_the_life_cycle(db: &TestDb) {
    let store = db.store.as_ref();
    for from in Status::ALL {
        for to in Status::ALL {
            let id = queued(store).await;
            let before = drive_to(store, &id, from).await;
            let result = store.transition(&id, HOLDER, to).await;
            let legal = !to.is_final() && from.can_become(to);
            match result {
                Ok(record) => {
                    assert!(legal, "{from} → {to} must be refused");
                    assert_eq!(record.status, to);
                    assert!(record.updated_at >= before.updated_at);
                    let read = store.get_execution(None, &id).await.unwrap().unwrap();
                    assert_eq!(read, record);
                }
                Err(StoreError::IllegalTransition {
                    id: got,
                    from: stored,
                    to: asked,
                }) => {
                    assert!(!legal, "{from} → {to} must be allowed");
                    assert_eq!((got.as_str(), stored, asked), (id.as_str(), from, to));
                    let read = store.get_execution(None, &id).await.unwrap().unwrap();
                    assert_eq!(read, before, "a refused step changes nothing");
                }
                // Nobody holds a queued execution: it is claimed, not moved.
                Err(StoreError::LeaseLost { .. }) if from == Status::Queued => {
                    let read = store.get_execution(None, &id).await.unwrap().unwrap();
                    assert_eq!(read, before, "a refused step changes nothing");
                }
                Err(other) => panic!("{from} → {to}: {other}"),
            }
        }
    }
    match store
        .transition("no-such-id", HOLDER, Status::Running)
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "no-such-id"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        store.transition("no-such-id", HOLDER, Status::Failed).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn facts_fill_in_and_keep_what_they_do_not_name(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    let started = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
        + chrono::TimeDelta::nanoseconds(123_456_789);
    db.store
        .update_facts(
            &id,
            HOLDER,
            &Facts {
                base_commit: Some("base".into()),
                git_ref: Some("develop".into()),
                session_id: Some("session-1".into()),
                image: Some("agentd-agent:1".into()),
                started_at: Some(started),
            },
        )
        .await
        .unwrap();
    db.store
        .update_facts(
            &id,
            HOLDER,
            &Facts {
                image: Some("agentd-agent:2".into()),
                ..Facts::default()
            },
        )
        .await
        .unwrap();
    let record = db.store.get_execution(None, &id).await.unwrap().unwrap();
    assert_eq!(record.base_commit.as_deref(), Some("base"));
    assert_eq!(record.request.git_ref.as_deref(), Some("develop"));
    assert_eq!(record.session_id.as_deref(), Some("session-1"));
    assert_eq!(record.image.as_deref(), Some("agentd-agent:2"));
    assert_eq!(record.started_at, Some(started.trunc_subsecs(6)));
    assert!(record.updated_at >= record.created_at);
    assert!(matches!(
        db.store
            .update_facts("no-such-id", HOLDER, &Facts::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn finish_writes_every_figure_and_the_artifacts(db: &TestDb) {
    let id = queued(db.store.as_ref()).await;
    let claimed = db
        .store
        .claim_next(HOLDER, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    db.store
        .update_facts(
            &id,
            HOLDER,
            &Facts {
                base_commit: Some("base".into()),
                session_id: Some("session-early".into()),
                ..Facts::default()
            },
        )
        .await
        .unwrap();
    db.store
        .transition(&id, HOLDER, Status::Running)
        .await
        .unwrap();
    db.store
        .transition(&id, HOLDER, Status::Collecting)
        .await
        .unwrap();

    let mut done = outcome(Status::Succeeded);
    done.session_id = None;
    let record = db.store.finish(&id, HOLDER, &done).await.unwrap();
    assert_eq!(record.status, Status::Succeeded);
    assert_eq!(record.reason, None);
    assert_eq!(record.head_commit, done.head_commit);
    assert_eq!(
        record.session_id.as_deref(),
        Some("session-early"),
        "kept from the facts"
    );
    assert_eq!(record.base_commit.as_deref(), Some("base"));
    assert_eq!(record.num_turns, done.num_turns);
    assert_eq!(record.usage, done.usage);
    assert_eq!(record.cost_usd, done.cost_usd);
    assert_eq!(record.tool_calls, done.tool_calls);
    assert_eq!(record.result.as_deref(), Some("Done.\u{FFFD} (with a NUL)"));
    assert_eq!(record.files_changed, done.files_changed);
    assert_eq!(record.exit_code, done.exit_code);
    assert_eq!(
        (record.oom_killed, record.has_diff, record.has_bundle),
        (false, true, true)
    );
    assert_eq!(record.duration_ms, Some(done.duration_ms));
    // The finisher stays the owner (only it appends the closing events); the
    // lease is over.
    assert_eq!(record.owner.as_deref(), Some(HOLDER));
    assert_eq!(record.lease_expires_at, None);
    assert_eq!(record.started_at, claimed.started_at);
    let finished = record.finished_at.expect("finished_at");
    assert_eq!(record.updated_at, finished);
    assert!(finished >= claimed.updated_at);
    assert_eq!(
        db.store.get_execution(None, &id).await.unwrap(),
        Some(record.clone())
    );

    let mut artifacts = done.artifacts.clone();
    artifacts.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(db.store.artifacts(&id).await.unwrap(), artifacts);

    // Final is final: nothing changes, not even the artifacts.
    let mut late = outcome(Status::Failed);
    late.artifacts.truncate(1);
    match db.store.finish(&id, HOLDER, &late).await {
        Err(StoreError::IllegalTransition { from, to, .. }) => {
            assert_eq!((from, to), (Status::Succeeded, Status::Failed))
        }
        other => panic!("expected IllegalTransition, got {other:?}"),
    }
    assert_eq!(
        db.store.get_execution(None, &id).await.unwrap(),
        Some(record)
    );
    assert_eq!(db.store.artifacts(&id).await.unwrap(), artifacts);

    // Every final status can be written, straight from queued too.
    for status in Status::ALL.into_iter().filter(|s| s.is_final()) {
        let id = held(db.store.as_ref()).await;
        let mut ended = outcome(status);
        ended.oom_killed = status == Status::OutOfMemory;
        ended.artifacts.clear();
        let record = db.store.finish(&id, HOLDER, &ended).await.unwrap();
        assert_eq!(record.status, status);
        assert_eq!(record.reason, ended.reason);
        assert_eq!(record.oom_killed, ended.oom_killed);
        assert_eq!(db.store.artifacts(&id).await.unwrap(), vec![]);
    }

    let id = held(db.store.as_ref()).await;
    match db
        .store
        .finish(&id, HOLDER, &outcome(Status::Running))
        .await
    {
        Err(StoreError::IllegalTransition { from, to, .. }) => {
            assert_eq!((from, to), (Status::Preparing, Status::Running))
        }
        other => panic!("a non-final outcome must be refused, got {other:?}"),
    }
    assert!(matches!(
        db.store
            .finish("no-such-id", HOLDER, &outcome(Status::Failed))
            .await,
        Err(StoreError::NotFound(_))
    ));
}
