//! Conversations in the store: follow-ups numbered on their parent's branch
//! (never two on one), held in the queue while their parent is live, listed
//! as a thread; inputs for running agents in order, refused once closed.

use pretty_assertions::assert_eq;

use super::harness::{TestDb, new_execution, on_both_backends};
use super::{HOLDER, outcome};
use crate::execution::{InputKind, Lineage, NewExecution, Status};
use crate::store::DEFAULT_TENANT;

on_both_backends!(
    follow_ups_take_the_next_branch_even_when_made_at_once,
    a_follow_up_waits_in_the_queue_while_its_parent_is_live,
    inputs_are_numbered_delivered_in_order_and_refused_once_closed,
);

fn follow_up_of(parent: &crate::execution::ExecutionRecord) -> NewExecution {
    NewExecution {
        lineage: Some(Lineage::of(parent)),
        ..new_execution(DEFAULT_TENANT)
    }
}

async fn follow_ups_take_the_next_branch_even_when_made_at_once(db: &TestDb) {
    let parent = db
        .store
        .create_execution(new_execution(DEFAULT_TENANT))
        .await
        .unwrap()
        .record;
    let mut racers = Vec::new();
    for _ in 0..6 {
        let store = db.store.clone();
        let new = follow_up_of(&parent);
        racers.push(tokio::spawn(
            async move { store.create_execution(new).await },
        ));
    }
    let mut branches = Vec::new();
    for racer in racers {
        let child = racer.await.unwrap().unwrap().record;
        assert_eq!(child.parent_id.as_deref(), Some(parent.id.as_str()));
        assert_eq!(child.conversation_id, parent.id);
        branches.push(child.branch.clone());
    }
    branches.sort();
    let mut expected: Vec<String> = (1..=6)
        .map(|n| crate::execution::follow_up_branch(&parent.branch, n))
        .collect();
    expected.sort();
    assert_eq!(branches, expected, "six follow-ups, six branches");
    let thread = db
        .store
        .conversation(DEFAULT_TENANT, &parent.id)
        .await
        .unwrap();
    assert_eq!(thread.len(), 7);
    assert_eq!(thread[0].id, parent.id);
    assert_eq!(db.store.children(&parent.id).await.unwrap().len(), 6);
    assert!(
        db.store
            .conversation("someone-else", &parent.id)
            .await
            .unwrap()
            .is_empty(),
        "another tenant's conversation is nobody's"
    );
}

async fn a_follow_up_waits_in_the_queue_while_its_parent_is_live(db: &TestDb) {
    let parent = db
        .store
        .create_execution(new_execution(DEFAULT_TENANT))
        .await
        .unwrap()
        .record;
    let child = db
        .store
        .create_execution(follow_up_of(&parent))
        .await
        .unwrap()
        .record;
    let lease = std::time::Duration::from_secs(600);
    let first = db.store.claim_next(HOLDER, lease).await.unwrap().unwrap();
    assert_eq!(first.id, parent.id, "the parent first");
    assert!(
        db.store.claim_next(HOLDER, lease).await.unwrap().is_none(),
        "the follow-up waits while its parent runs"
    );
    assert!(
        db.store
            .claim(&child.id, HOLDER, lease)
            .await
            .unwrap()
            .is_none()
    );
    for step in [Status::Running, Status::Collecting] {
        db.store.transition(&parent.id, HOLDER, step).await.unwrap();
    }
    db.store
        .finish(&parent.id, HOLDER, &outcome(Status::Succeeded))
        .await
        .unwrap();
    let next = db.store.claim_next(HOLDER, lease).await.unwrap().unwrap();
    assert_eq!(next.id, child.id, "then the follow-up");
}

async fn inputs_are_numbered_delivered_in_order_and_refused_once_closed(db: &TestDb) {
    let id = db
        .store
        .create_execution(new_execution(DEFAULT_TENANT))
        .await
        .unwrap()
        .record
        .id
        .clone();
    let store = &db.store;
    let sent = [
        (InputKind::Message, "one", "k1"),
        (InputKind::Interrupt, "", "k2"),
        (InputKind::Message, "three", "k1"),
    ];
    for (seq, (kind, text, sender)) in (1..).zip(sent) {
        assert_eq!(
            store.add_input(&id, kind, text, sender).await.unwrap(),
            Some(seq)
        );
    }
    let pending = store.pending_inputs(&id).await.unwrap();
    let seen: Vec<(u64, InputKind, &str)> = pending
        .iter()
        .map(|i| (i.seq, i.kind, i.text.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, InputKind::Message, "one"),
            (2, InputKind::Interrupt, ""),
            (3, InputKind::Message, "three")
        ]
    );
    store.input_delivered(&id, 1).await.unwrap();
    store.input_delivered(&id, 2).await.unwrap();
    assert_eq!(store.pending_inputs(&id).await.unwrap().len(), 1);
    assert!(
        store
            .add_input(&id, InputKind::Closed, "done", "agentd")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .add_input(&id, InputKind::Message, "late", "k1")
            .await
            .unwrap(),
        None,
        "closed: refused"
    );
    assert_eq!(
        store
            .add_input(&id, InputKind::Closed, "again", "agentd")
            .await
            .unwrap(),
        None,
        "closed once"
    );
    let left: Vec<u64> = store
        .pending_inputs(&id)
        .await
        .unwrap()
        .iter()
        .map(|i| i.seq)
        .collect();
    assert_eq!(left, [3], "the closing marker is not an input");
}
