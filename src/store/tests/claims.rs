//! Claiming work, leases, taking over, cancelling — and the races between them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use pretty_assertions::assert_eq;
use tokio::sync::Barrier;

use super::harness::{TestDb, new_execution, on_both_backends};
use super::{HOLDER, hold, queued};
use super::{drive_to, outcome};
use crate::execution::{EventBody, Status};
use crate::store::{CancelOutcome, StoreError};

const MINUTE: Duration = Duration::from_secs(60);

on_both_backends!(
    claims_take_the_oldest_first_with_a_lease,
    a_named_claim_takes_only_that_queued_execution,
    concurrent_claimers_never_share_an_execution,
    take_over_needs_an_expired_or_own_lease,
    take_over_from_a_dead_holder_needs_no_lease_to_run_out,
    cancel_depends_on_where_the_execution_is,
    cancel_and_claim_race_without_both_winning,
    counts_and_live_executions_follow_the_queue,
    counts_by_tenant_cover_every_status,
    a_holder_that_lost_its_lease_writes_nothing,
    requeue_needs_the_holder_and_a_retry_left,
);

async fn a_named_claim_takes_only_that_queued_execution(db: &TestDb) {
    let older = queued(db.store.as_ref()).await;
    let mine = queued(db.store.as_ref()).await;
    let claimed = db
        .store
        .claim(&mine, "runner", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, mine);
    assert_eq!(claimed.status, Status::Preparing);
    assert_eq!(claimed.owner.as_deref(), Some("runner"));
    assert!(claimed.started_at.is_some());
    // Not queued any more: a second claim gets nothing; the older one is untouched.
    assert_eq!(db.store.claim(&mine, "other", MINUTE).await.unwrap(), None);
    let older_record = db.store.get_execution(None, &older).await.unwrap().unwrap();
    assert_eq!(older_record.status, Status::Queued);
    assert!(matches!(
        db.store.claim("no-such-id", "runner", MINUTE).await,
        Err(StoreError::NotFound(_))
    ));
    // The queue claim now finds only the older one.
    let next = db
        .store
        .claim_next("worker", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, older);
}

async fn claims_take_the_oldest_first_with_a_lease(db: &TestDb) {
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            db.store
                .create_execution(new_execution("acme"))
                .await
                .unwrap()
                .record
                .id
                .clone(),
        );
    }
    // A cancelled and a finished one are never claimed.
    db.store.request_cancel(None, &ids[1]).await.unwrap();
    hold(db.store.as_ref(), &ids[2]).await;
    db.store
        .finish(&ids[2], HOLDER, &outcome(Status::Failed))
        .await
        .unwrap();

    let first = db
        .store
        .claim_next("worker-1", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, ids[0]);
    assert_eq!(first.status, Status::Preparing);
    assert_eq!(first.owner.as_deref(), Some("worker-1"));
    let started = first.started_at.expect("started_at");
    assert_eq!(
        first.lease_expires_at,
        Some(started + chrono::TimeDelta::seconds(60))
    );
    assert_eq!(first.updated_at, started);
    assert_eq!(
        db.store.get_execution(None, &first.id).await.unwrap(),
        Some(first.clone())
    );

    let second = db
        .store
        .claim_next("worker-2", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.id, ids[3]);
    assert_eq!(second.owner.as_deref(), Some("worker-2"));
    assert_eq!(db.store.claim_next("worker-1", MINUTE).await.unwrap(), None);

    // Renewing moves only the renewing owner's leases.
    tokio::time::sleep(Duration::from_millis(5)).await;
    db.store
        .renew_leases("worker-1", Duration::from_secs(600))
        .await
        .unwrap();
    let renewed = db
        .store
        .get_execution(None, &first.id)
        .await
        .unwrap()
        .unwrap();
    assert!(renewed.lease_expires_at > first.lease_expires_at);
    let untouched = db
        .store
        .get_execution(None, &second.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(untouched, second);
}

async fn concurrent_claimers_never_share_an_execution(db: &TestDb) {
    let mut queued = BTreeSet::new();
    for _ in 0..40 {
        queued.insert(
            db.store
                .create_execution(new_execution("acme"))
                .await
                .unwrap()
                .record
                .id
                .clone(),
        );
    }
    let start = Arc::new(Barrier::new(8));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let store = db.store.clone();
        let start = start.clone();
        workers.push(tokio::spawn(async move {
            start.wait().await;
            let owner = format!("worker-{worker}");
            let mut claimed = Vec::new();
            // 8 × 5 claims for 40 rows: the queue is never empty, so a
            // claimer that loses a race must find the next row, not None.
            for _ in 0..5 {
                let record = store.claim_next(&owner, MINUTE).await.unwrap();
                let record = record.expect("a queued execution is left for every claim");
                assert_eq!(record.owner.as_deref(), Some(owner.as_str()));
                claimed.push(record.id.clone());
            }
            claimed
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    assert_eq!(all.len(), 40, "every execution claimed exactly once");
    let distinct: BTreeSet<String> = all.into_iter().collect();
    assert_eq!(distinct, queued);
    assert_eq!(db.store.counts().await.unwrap(), (0, 40));
    assert_eq!(db.store.claim_next("late", MINUTE).await.unwrap(), None);
}

async fn take_over_needs_an_expired_or_own_lease(db: &TestDb) {
    let store = db.store.as_ref();
    let held = queued(store).await;
    store.claim_next("alice", MINUTE).await.unwrap().unwrap();
    assert_eq!(store.take_over(&held, "bob", MINUTE).await.unwrap(), None);
    let own = store
        .take_over(&held, "alice", Duration::from_secs(120))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own.owner.as_deref(), Some("alice"));
    assert!(own.lease_expires_at > own.started_at.map(|t| t + chrono::TimeDelta::seconds(119)));

    let lapsed = queued(store).await;
    let claimed = store
        .claim_next("carol", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, lapsed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let taken = store
        .take_over(&lapsed, "bob", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.owner.as_deref(), Some("bob"));
    assert_eq!(taken.status, Status::Preparing);
    assert!(taken.lease_expires_at > claimed.lease_expires_at);
    assert_eq!(
        store.take_over(&lapsed, "carol", MINUTE).await.unwrap(),
        None
    );

    // Live without an owner (moved along by hand): anyone may take it.
    let orphan = queued(store).await;
    drive_to(store, &orphan, Status::Running).await;
    db.execute(format!(
        "UPDATE executions SET owner = NULL, lease_expires_at = NULL WHERE id = '{orphan}'"
    ))
    .await
    .unwrap();
    let adopted = store
        .take_over(&orphan, "dave", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(adopted.owner.as_deref(), Some("dave"));
    assert_eq!(adopted.status, Status::Running);

    // Not live: nothing to take over.
    let queued = queued(store).await;
    assert_eq!(store.take_over(&queued, "bob", MINUTE).await.unwrap(), None);
    store
        .finish(&lapsed, "bob", &outcome(Status::Failed))
        .await
        .unwrap();
    assert_eq!(store.take_over(&lapsed, "bob", MINUTE).await.unwrap(), None);
    assert!(matches!(
        store.take_over("no-such-id", "bob", MINUTE).await,
        Err(StoreError::NotFound(_))
    ));

    let live: Vec<String> = store
        .live_executions()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(live, vec![held, orphan]);
}

async fn cancel_depends_on_where_the_execution_is(db: &TestDb) {
    let store = db.store.as_ref();
    let waiting = queued(store).await;
    assert!(matches!(
        store.request_cancel(Some("globex"), &waiting).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .get_execution(None, &waiting)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Queued
    );
    assert_eq!(
        store.request_cancel(Some("acme"), &waiting).await.unwrap(),
        CancelOutcome::CancelledWhileQueued
    );
    let cancelled = store.get_execution(None, &waiting).await.unwrap().unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);
    assert_eq!(cancelled.reason.as_deref(), Some("cancelled"));
    assert_eq!(cancelled.finished_at, Some(cancelled.updated_at));
    assert!(cancelled.cancel_requested);
    assert_eq!(store.claim_next("worker", MINUTE).await.unwrap(), None);
    assert_eq!(
        store.request_cancel(None, &waiting).await.unwrap(),
        CancelOutcome::AlreadyFinal
    );

    for status in [Status::Preparing, Status::Running, Status::Collecting] {
        let id = queued(store).await;
        let before = drive_to(store, &id, status).await;
        assert_eq!(
            store.request_cancel(None, &id).await.unwrap(),
            CancelOutcome::Requested
        );
        let after = store.get_execution(None, &id).await.unwrap().unwrap();
        assert!(after.cancel_requested);
        assert_eq!(after.status, status);
        assert_eq!(after.finished_at, None);
        assert!(after.updated_at >= before.updated_at);
        // The owner still finishes it, as cancelled.
        let ended = store
            .finish(&id, HOLDER, &outcome(Status::Cancelled))
            .await
            .unwrap();
        assert_eq!(ended.status, Status::Cancelled);
    }

    let done = queued(store).await;
    let finished = drive_to(store, &done, Status::Succeeded).await;
    assert_eq!(
        store.request_cancel(Some("acme"), &done).await.unwrap(),
        CancelOutcome::AlreadyFinal
    );
    assert_eq!(
        store.get_execution(None, &done).await.unwrap(),
        Some(finished)
    );
    assert!(matches!(
        store.request_cancel(None, "no-such-id").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn cancel_and_claim_race_without_both_winning(db: &TestDb) {
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(
            db.store
                .create_execution(new_execution("acme"))
                .await
                .unwrap()
                .record
                .id
                .clone(),
        );
    }
    let start = Arc::new(Barrier::new(ids.len() + 4));
    let mut claimers = Vec::new();
    for worker in 0..4 {
        let (store, start) = (db.store.clone(), start.clone());
        claimers.push(tokio::spawn(async move {
            start.wait().await;
            let mut claimed = Vec::new();
            while let Some(record) = store
                .claim_next(&format!("w{worker}"), MINUTE)
                .await
                .unwrap()
            {
                claimed.push(record.id.clone());
            }
            claimed
        }));
    }
    let mut cancellers = Vec::new();
    for id in ids.clone() {
        let (store, start) = (db.store.clone(), start.clone());
        cancellers.push(tokio::spawn(async move {
            start.wait().await;
            let outcome = store.request_cancel(None, &id).await.unwrap();
            (id, outcome)
        }));
    }
    let mut claimed = BTreeSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(claimed.insert(id), "claimed twice");
        }
    }
    let mut outcomes = BTreeMap::new();
    for canceller in cancellers {
        let (id, outcome) = canceller.await.unwrap();
        outcomes.insert(id, outcome);
    }
    for id in &ids {
        let record = db.store.get_execution(None, id).await.unwrap().unwrap();
        assert!(record.cancel_requested);
        if claimed.contains(id) {
            assert_eq!(outcomes[id], CancelOutcome::Requested, "{id} was claimed");
            assert_eq!(record.status, Status::Preparing);
        } else {
            assert_eq!(
                outcomes[id],
                CancelOutcome::CancelledWhileQueued,
                "{id} was not claimed"
            );
            assert_eq!(record.status, Status::Cancelled);
            assert_eq!(record.owner, None);
        }
    }
    let (queued, live) = db.store.counts().await.unwrap();
    assert_eq!(queued, 0);
    assert_eq!(live as usize, claimed.len());
}

async fn counts_and_live_executions_follow_the_queue(db: &TestDb) {
    let store = db.store.as_ref();
    assert_eq!(store.counts().await.unwrap(), (0, 0));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            store
                .create_execution(new_execution("acme"))
                .await
                .unwrap()
                .record
                .id
                .clone(),
        );
    }
    assert_eq!(store.counts().await.unwrap(), (5, 0));
    let a = store
        .claim_next(HOLDER, MINUTE)
        .await
        .unwrap()
        .unwrap()
        .id
        .clone();
    let b = store
        .claim_next(HOLDER, MINUTE)
        .await
        .unwrap()
        .unwrap()
        .id
        .clone();
    let c = store
        .claim_next(HOLDER, MINUTE)
        .await
        .unwrap()
        .unwrap()
        .id
        .clone();
    store.transition(&b, HOLDER, Status::Running).await.unwrap();
    store.transition(&c, HOLDER, Status::Running).await.unwrap();
    store
        .transition(&c, HOLDER, Status::Collecting)
        .await
        .unwrap();
    store
        .finish(&a, HOLDER, &outcome(Status::TimedOut))
        .await
        .unwrap();
    store.request_cancel(None, &ids[4]).await.unwrap();
    assert_eq!(store.counts().await.unwrap(), (1, 2));
    let live: Vec<(String, Status)> = store
        .live_executions()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id.clone(), r.status))
        .collect();
    assert_eq!(live, vec![(b, Status::Running), (c, Status::Collecting)]);
}

async fn counts_by_tenant_cover_every_status(db: &TestDb) {
    let store = db.store.as_ref();
    assert_eq!(store.counts_by_tenant().await.unwrap(), vec![]);
    // (Stored times may be rounded.)
    let began = chrono::Utc::now() - chrono::Duration::seconds(1);
    let create = async |tenant: &str| {
        store
            .create_execution(new_execution(tenant))
            .await
            .unwrap()
            .record
            .id
            .clone()
    };
    let acme_done = create("acme").await;
    let acme_running = create("acme").await;
    create("acme").await;
    create("acme").await;
    create("beta").await;
    drive_to(store, &acme_done, Status::Succeeded).await;
    drive_to(store, &acme_running, Status::Running).await;
    let counts = store.counts_by_tenant().await.unwrap();
    // The oldest of each group: created during this test.
    for count in &counts {
        assert!(
            count.oldest >= began && count.oldest <= chrono::Utc::now(),
            "{count:?}"
        );
    }
    let count = |tenant: &str, status: Status, count: u64| (tenant.to_string(), status, count);
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.tenant_id.clone(), c.status, c.count))
            .collect::<Vec<_>>(),
        vec![
            count("acme", Status::Queued, 2),
            count("acme", Status::Running, 1),
            count("acme", Status::Succeeded, 1),
            count("beta", Status::Queued, 1),
        ]
    );
}

async fn take_over_from_a_dead_holder_needs_no_lease_to_run_out(db: &TestDb) {
    let store = db.store.as_ref();
    let id = queued(store).await;
    store.claim_next("dead", MINUTE).await.unwrap().unwrap();
    // Its lease is valid for a minute: the plain takeover waits…
    assert_eq!(store.take_over(&id, "bob", MINUTE).await.unwrap(), None);
    // …naming the wrong holder changes nothing…
    assert_eq!(
        store
            .take_over_from(&id, "someone", "bob", MINUTE)
            .await
            .unwrap(),
        None
    );
    // …naming the holder (proven dead) takes it at once, and only once.
    let taken = store
        .take_over_from(&id, "dead", "bob", MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.owner.as_deref(), Some("bob"));
    assert_eq!(
        store
            .take_over_from(&id, "dead", "carol", MINUTE)
            .await
            .unwrap(),
        None
    );
}

async fn a_holder_that_lost_its_lease_writes_nothing(db: &TestDb) {
    let store = db.store.as_ref();
    let id = queued(store).await;
    // A replica paused past its lease (a stop signal, a long GC, a network
    // partition) finds the execution taken over when it wakes up.
    store
        .claim(&id, "paused", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    store
        .append_events(&id, "paused", &[EventBody::progress("mine")], Some(3))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.take_over(&id, "new", MINUTE).await.unwrap().unwrap();
    store.transition(&id, "new", Status::Running).await.unwrap();
    let before = store.get_execution(None, &id).await.unwrap().unwrap();

    let lost = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::LeaseLost { id: got, holder }) => {
            assert_eq!(
                (got.as_str(), holder.as_str()),
                (id.as_str(), "paused"),
                "{what}"
            );
        }
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    };
    lost(
        store
            .append_events(&id, "paused", &[EventBody::progress("late")], Some(9))
            .await
            .map(drop),
        "append_events",
    );
    lost(
        store
            .transition(&id, "paused", Status::Collecting)
            .await
            .map(drop),
        "transition",
    );
    lost(
        store
            .update_facts(
                &id,
                "paused",
                &crate::store::Facts {
                    session_id: Some("forged".into()),
                    ..Default::default()
                },
            )
            .await,
        "update_facts",
    );
    lost(
        store
            .record_gateway_usage(&id, "paused", &Default::default(), &Default::default())
            .await,
        "record_gateway_usage",
    );
    lost(
        store
            .finish(&id, "paused", &outcome(Status::Succeeded))
            .await
            .map(drop),
        "finish",
    );
    let after = store.get_execution(None, &id).await.unwrap().unwrap();
    assert_eq!(
        after, before,
        "nothing the old holder tried changed the record"
    );
    assert_eq!(store.events_after(&id, 0, 10).await.unwrap().len(), 1);
    // The new holder goes on, and finishes; nobody else appends after that.
    store
        .append_events(&id, "new", &[EventBody::progress("resumed")], Some(4))
        .await
        .unwrap();
    store
        .finish(&id, "new", &outcome(Status::Succeeded))
        .await
        .unwrap();
    lost(
        store
            .append_events(&id, "paused", &[EventBody::progress("after")], None)
            .await
            .map(drop),
        "append_events after the end",
    );
    assert_eq!(store.events_after(&id, 0, 10).await.unwrap().len(), 2);
}

async fn requeue_needs_the_holder_and_a_retry_left(db: &TestDb) {
    let store = db.store.as_ref();
    let mut new = new_execution("acme");
    new.request.retries = 1;
    let id = store.create_execution(new).await.unwrap().record.id.clone();
    assert_eq!(
        store.requeue(&id, HOLDER).await.unwrap(),
        None,
        "queued: not live"
    );
    drive_to(store, &id, Status::Running).await;
    store
        .update_facts(
            &id,
            HOLDER,
            &crate::store::Facts {
                base_commit: Some("a".repeat(40)),
                session_id: Some("session-1".into()),
                started_at: Some(chrono::Utc::now()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .append_events(&id, HOLDER, &[EventBody::progress("working")], Some(7))
        .await
        .unwrap();
    let events = store.events_after(&id, 0, 100).await.unwrap().len();
    assert_eq!(store.requeue(&id, "someone-else").await.unwrap(), None);
    let again = store.requeue(&id, HOLDER).await.unwrap().expect("requeued");
    assert_eq!(again.status, Status::Queued);
    assert_eq!((again.retried, again.request.retries), (1, 1));
    assert_eq!(again.owner, None);
    assert_eq!(
        again.log_cursor, 0,
        "the next attempt reads a new container's log"
    );
    assert_eq!(
        (
            again.base_commit.clone(),
            again.session_id.clone(),
            again.started_at
        ),
        (None, None, None)
    );
    // The events stay; the next claim starts the attempt over.
    assert_eq!(store.events_after(&id, 0, 100).await.unwrap().len(), events);
    let claimed = store.claim_next("other", MINUTE).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    // No retry left: a second loss is not queued again.
    assert_eq!(claimed.status, Status::Preparing);
    assert_eq!(store.requeue(&id, "other").await.unwrap(), None);
    assert_eq!(
        store
            .get_execution(None, &id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Preparing
    );
}
