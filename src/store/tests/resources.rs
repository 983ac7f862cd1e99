//! Resources made for executions: recorded, removed, listed.

use pretty_assertions::assert_eq;
use std::time::Duration;

use super::harness::{TestDb, on_both_backends};
use super::queued;
use crate::store::{ResourceKind, StoreError};

on_both_backends!(resources_are_recorded_removed_and_listed,);

async fn resources_are_recorded_removed_and_listed(db: &TestDb) {
    let a = queued(db.store.as_ref()).await;
    let b = queued(db.store.as_ref()).await;
    let made = [
        (ResourceKind::Socket, "/run/agentd/a"),
        (ResourceKind::Volume, "agentd-a"),
        (ResourceKind::Container, "agentd-a"),
    ];
    for (kind, name) in made {
        db.store.resource_created(&a, kind, name).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    db.store
        .resource_created(&b, ResourceKind::Container, "agentd-b")
        .await
        .unwrap();

    db.store
        .resource_removed(ResourceKind::Container, "agentd-a")
        .await
        .unwrap();
    let listed = db.store.resources(&a).await.unwrap();
    let order: Vec<(ResourceKind, &str)> =
        listed.iter().map(|r| (r.kind, r.name.as_str())).collect();
    assert_eq!(order, made.to_vec(), "creation order");
    assert!(listed.iter().all(|r| r.execution_id == a));
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    let removed = listed[2].removed_at.expect("container removed");
    assert!(removed >= listed[2].created_at);
    assert_eq!(listed[0].removed_at, None);
    assert_eq!(
        listed[1].removed_at, None,
        "same name, other kind: untouched"
    );

    // Removing again keeps the first time; unknown names are fine.
    tokio::time::sleep(Duration::from_millis(2)).await;
    db.store
        .resource_removed(ResourceKind::Container, "agentd-a")
        .await
        .unwrap();
    db.store
        .resource_removed(ResourceKind::Volume, "never-made")
        .await
        .unwrap();
    assert_eq!(db.store.resources(&a).await.unwrap(), listed);

    let theirs = db.store.resources(&b).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(
        (theirs[0].kind, theirs[0].removed_at),
        (ResourceKind::Container, None)
    );

    // Made again under the same name: alive again.
    db.store
        .resource_created(&a, ResourceKind::Container, "agentd-a")
        .await
        .unwrap();
    let again = db.store.resources(&a).await.unwrap();
    let container = again
        .iter()
        .find(|r| r.kind == ResourceKind::Container)
        .unwrap();
    assert_eq!(container.removed_at, None);
    assert!(container.created_at > listed[2].created_at);

    match db
        .store
        .resource_created("no-such-id", ResourceKind::Volume, "v")
        .await
    {
        Err(StoreError::NotFound(id)) => assert_eq!(id, "no-such-id"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(db.store.resources("no-such-id").await.unwrap(), vec![]);
}
