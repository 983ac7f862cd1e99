//! The claim is fair across tenants and keeps their concurrency caps.

use std::time::Duration;

use pretty_assertions::assert_eq;

use super::HOLDER;
use super::harness::{TestDb, new_execution, on_both_backends};
use super::outcome;
use crate::execution::Status;
use crate::tenancy::{Policy, Scope};

const MINUTE: Duration = Duration::from_secs(60);

on_both_backends!(
    the_next_slot_goes_to_the_tenant_running_least,
    a_tenant_at_its_cap_waits_and_others_go_on,
    concurrent_claimers_keep_the_cap,
    tenants_with_nothing_running_take_turns,
    a_pause_of_claiming_holds_every_claimer,
);

async fn queue(db: &TestDb, tenant: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let created = db.store.create_execution(new_execution(tenant)).await;
        ids.push(created.unwrap().record.id.clone());
    }
    ids
}

async fn claim(db: &TestDb) -> Option<(String, String)> {
    db.store
        .claim_next(HOLDER, MINUTE)
        .await
        .unwrap()
        .map(|record| (record.tenant_id.clone(), record.id.clone()))
}

fn capped(max_concurrent: u32) -> Policy {
    Policy {
        max_concurrent: Some(max_concurrent),
        ..Policy::default()
    }
}

async fn the_next_slot_goes_to_the_tenant_running_least(db: &TestDb) {
    let a = queue(db, "tenant-a", 50).await;
    let first = claim(db).await.unwrap();
    assert_eq!(first, ("tenant-a".to_string(), a[0].clone()));
    // B queues one after A's fifty: the next slot is B's, then A's again.
    let b = queue(db, "tenant-b", 1).await;
    assert_eq!(
        claim(db).await.unwrap(),
        ("tenant-b".to_string(), b[0].clone())
    );
    assert_eq!(claim(db).await.unwrap().1, a[1]);
    // A slot frees (one of A's finishes): A runs 1, B none queued — A's next.
    db.store
        .finish(&a[0], HOLDER, &outcome(Status::Succeeded))
        .await
        .unwrap();
    assert_eq!(claim(db).await.unwrap().1, a[2]);
    // C arrives while A runs 2 and B 1: C's first goes first; then C and B
    // both run 1, and B, served longer ago, takes its turn before C's
    // second; with all three at 2, A (served longest ago) is next.
    let c = queue(db, "tenant-c", 2).await;
    let b2 = queue(db, "tenant-b", 1).await;
    assert_eq!(claim(db).await.unwrap().1, c[0]);
    assert_eq!(claim(db).await.unwrap().1, b2[0]);
    assert_eq!(claim(db).await.unwrap().1, c[1]);
    assert_eq!(claim(db).await.unwrap().1, a[3]);
}

async fn a_tenant_at_its_cap_waits_and_others_go_on(db: &TestDb) {
    db.store
        .put_policy(Scope::Global, &capped(3))
        .await
        .unwrap();
    db.store
        .put_policy(Scope::Tenant("tenant-a"), &capped(2))
        .await
        .unwrap();
    let a = queue(db, "tenant-a", 5).await;
    let b = queue(db, "tenant-b", 5).await;
    let mut claimed = Vec::new();
    while let Some(next) = claim(db).await {
        claimed.push(next);
    }
    let count = |tenant: &str| claimed.iter().filter(|(t, _)| t == tenant).count();
    assert_eq!(count("tenant-a"), 2, "A's own cap: {claimed:?}");
    assert_eq!(
        count("tenant-b"),
        3,
        "B inherits the global cap: {claimed:?}"
    );
    // A finished execution frees its tenant's slot, and only that tenant's.
    db.store
        .finish(&a[0], HOLDER, &outcome(Status::Failed))
        .await
        .unwrap();
    assert_eq!(claim(db).await.unwrap().1, a[2]);
    assert_eq!(claim(db).await, None);
    // A tenant's override without a cap inherits the global one; raising it
    // applies to the next claim.
    db.store
        .put_policy(Scope::Tenant("tenant-b"), &capped(4))
        .await
        .unwrap();
    assert_eq!(claim(db).await.unwrap().1, b[3]);
    assert_eq!(claim(db).await, None);
}

async fn concurrent_claimers_keep_the_cap(db: &TestDb) {
    db.store
        .put_policy(Scope::Tenant("tenant-a"), &capped(2))
        .await
        .unwrap();
    queue(db, "tenant-a", 10).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let claimers: Vec<_> = (0..8)
        .map(|n| {
            let store = db.store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim_next(&format!("replica-{n}"), MINUTE).await
            })
        })
        .collect();
    let mut claimed = 0;
    for claimer in claimers {
        if claimer.await.unwrap().unwrap().is_some() {
            claimed += 1;
        }
    }
    assert_eq!(claimed, 2, "eight claimers at once, a cap of two");
}

async fn tenants_with_nothing_running_take_turns(db: &TestDb) {
    // Three tenants queue in bursts; one slot: each claim is finished before
    // the next, so every tenant always runs none — turns decide.
    let a = queue(db, "tenant-a", 3).await;
    let b = queue(db, "tenant-b", 3).await;
    let c = queue(db, "tenant-c", 3).await;
    let mut order = Vec::new();
    while let Some((tenant, id)) = claim(db).await {
        order.push(tenant);
        db.store
            .finish(&id, HOLDER, &outcome(Status::Succeeded))
            .await
            .unwrap();
    }
    assert_eq!(
        order,
        ["a", "b", "c", "a", "b", "c", "a", "b", "c"]
            .map(|t| format!("tenant-{t}"))
            .to_vec()
    );
    let _ = (a, b, c);
}

async fn a_pause_of_claiming_holds_every_claimer(db: &TestDb) {
    let queued = queue(db, "tenant-a", 2).await;
    assert_eq!(db.store.claiming_pause().await.unwrap(), None);
    let pause = db
        .store
        .pause_claiming("admin from 10.0.0.1:5000")
        .await
        .unwrap();
    assert_eq!(pause.by, "admin from 10.0.0.1:5000");
    // Pausing again keeps the first pause.
    let again = db.store.pause_claiming("someone else").await.unwrap();
    assert_eq!(again, pause);
    assert_eq!(claim(db).await, None);
    assert_eq!(db.store.claiming_pause().await.unwrap(), Some(pause));
    db.store.resume_claiming().await.unwrap();
    db.store.resume_claiming().await.unwrap();
    assert_eq!(db.store.claiming_pause().await.unwrap(), None);
    assert_eq!(claim(db).await.unwrap().1, queued[0]);
}
