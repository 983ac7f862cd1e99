//! The webhook outbox, on both databases: deliveries written with their
//! events, each claimed by one claimer however many race, renewed and
//! recorded only under the claim's own token, redelivered, pruned.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use super::harness::{TestDb, on_both_backends};
use super::{HOLDER, held};
use crate::execution::{EventBody, Status};
use crate::store::AttemptOutcome;
use crate::tenancy::{DeliveryState, SealedWebhook, Webhook, WebhookEvent};

on_both_backends!(
    deliveries_are_written_with_their_events_and_claimed_once,
    a_claim_is_renewed_and_recorded_only_under_its_own_token,
);

const MINUTE: Duration = Duration::from_secs(60);

async fn webhook(db: &TestDb, tenant: &str, events: Vec<WebhookEvent>) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    db.store
        .create_webhook(&SealedWebhook {
            webhook: Webhook {
                id: id.clone(),
                tenant_id: tenant.into(),
                url: "https://hooks.example.org/x".into(),
                events,
                operator: false,
                created_at: chrono::Utc::now(),
            },
            sealed_secret: "c2VhbGVk".into(),
            key_fingerprint: "0123456789ab".into(),
        })
        .await
        .unwrap();
    id
}

async fn deliveries_are_written_with_their_events_and_claimed_once(db: &TestDb) {
    db.store.create_tenant("acme").await.unwrap();
    let status_hook = webhook(db, "acme", vec![WebhookEvent::Status]).await;
    let tool_hook = webhook(db, "acme", vec![WebhookEvent::ToolCall]).await;
    let mut ids = BTreeSet::new();
    for _ in 0..10 {
        let id = held(db.store.as_ref()).await;
        let events = db
            .store
            .append_events(
                &id,
                HOLDER,
                &[
                    EventBody::status(Status::Running, None),
                    EventBody::progress("not a webhook event"),
                    EventBody::status(Status::Collecting, None),
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(events.len(), 3);
        ids.insert(id);
    }
    let listed = db
        .store
        .webhook_deliveries("acme", &status_hook, None, 200)
        .await
        .unwrap();
    assert_eq!(
        listed.items.len(),
        20,
        "two status events of ten executions"
    );
    assert!(
        listed
            .items
            .iter()
            .all(|d| d.event_type == "status" && d.state == DeliveryState::Pending)
    );
    let tool = db
        .store
        .webhook_deliveries("acme", &tool_hook, None, 200)
        .await
        .unwrap();
    assert!(
        tool.items.is_empty(),
        "the tool-call endpoint hears no status"
    );

    // Eight claimers race for the twenty: each is claimed by one.
    let start = Arc::new(Barrier::new(8));
    let mut claimers = Vec::new();
    for n in 0..8 {
        let store = db.store.clone();
        let start = start.clone();
        claimers.push(tokio::spawn(async move {
            start.wait().await;
            let mut got = Vec::new();
            for _ in 0..4 {
                let due = store
                    .claim_deliveries(&format!("claimer-{n}"), MINUTE, 3)
                    .await
                    .unwrap();
                got.extend(due.into_iter().map(|d| d.delivery.id));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a delivery claimed twice");
    assert_eq!(distinct.len(), 20);
    assert!(
        db.store
            .claim_deliveries("late", MINUTE, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed ones are not due until their claim runs out"
    );
}

async fn a_claim_is_renewed_and_recorded_only_under_its_own_token(db: &TestDb) {
    db.store.create_tenant("acme").await.unwrap();
    let hook = webhook(db, "acme", vec![WebhookEvent::Status]).await;
    let id = held(db.store.as_ref()).await;
    db.store
        .append_events(
            &id,
            HOLDER,
            &[EventBody::status(Status::Running, None)],
            None,
        )
        .await
        .unwrap();
    let due = db
        .store
        .claim_deliveries("token-a", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    let delivery = due[0].delivery.id;
    assert!(due[0].event.contains("running"), "{}", due[0].event);
    assert!(
        !db.store
            .renew_claim(delivery, "token-b", MINUTE)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .renew_claim(delivery, "token-a", MINUTE)
            .await
            .unwrap()
    );
    // A stale claimer's record changes nothing.
    db.store
        .record_attempt(
            delivery,
            "token-b",
            &AttemptOutcome::Delivered { status: 200 },
        )
        .await
        .unwrap();
    let listed = db
        .store
        .webhook_deliveries("acme", &hook, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items[0].state, DeliveryState::Pending);
    db.store
        .record_attempt(
            delivery,
            "token-a",
            &AttemptOutcome::Dead {
                status: Some(500),
                error: "the receiver answered 500".into(),
            },
        )
        .await
        .unwrap();
    let listed = db
        .store
        .webhook_deliveries("acme", &hook, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items[0].state, DeliveryState::Dead);
    assert_eq!(listed.items[0].attempts, 1);
    assert_eq!(listed.items[0].last_status, Some(500));
    // Redelivered by hand: due again, from zero; not by another tenant.
    assert!(
        db.store
            .redeliver("default", &hook, delivery)
            .await
            .unwrap()
            .is_none()
    );
    let again = db
        .store
        .redeliver("acme", &hook, delivery)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.state, again.attempts), (DeliveryState::Pending, 0));
    let due = db
        .store
        .claim_deliveries("token-c", MINUTE, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    db.store
        .record_attempt(
            delivery,
            "token-c",
            &AttemptOutcome::Delivered { status: 204 },
        )
        .await
        .unwrap();
    // Delivered rows are pruned once old enough.
    assert_eq!(
        db.store
            .prune_deliveries(chrono::Utc::now() - chrono::Duration::days(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db.store
            .prune_deliveries(chrono::Utc::now() + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    // Deleting the endpoint deletes its deliveries; another tenant cannot.
    assert!(!db.store.delete_webhook("default", &hook).await.unwrap());
    assert!(db.store.delete_webhook("acme", &hook).await.unwrap());
}
