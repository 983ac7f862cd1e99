//! Tenants, keys, the audit log and policies, on both databases.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::harness::{TestDb, new_execution, on_both_backends};
use super::{HOLDER, hold};
use crate::store::StoreError;
use crate::tenancy::{ApiKey, AuditEntry, AuditQuery, Policy, Principal, Scope, issue_key};

on_both_backends!(
    tenants_are_created_once_listed_and_disabled,
    keys_are_found_by_hash_listed_without_it_and_revoked,
    the_audit_log_pages_newest_first_with_filters,
    policies_are_stored_per_scope,
    spend_sums_a_tenants_metered_cost_since_a_time,
    credentials_are_kept_sealed_per_tenant,
    a_delivery_and_its_plan_round_trip,
);

async fn tenants_are_created_once_listed_and_disabled(db: &TestDb) {
    let store = &db.store;
    let default = store
        .get_tenant("default")
        .await
        .unwrap()
        .expect("made by the migration");
    assert!(!default.disabled);
    let acme = store.create_tenant("acme").await.unwrap();
    assert_eq!(acme.id, "acme");
    assert!(matches!(
        store.create_tenant("acme").await,
        Err(StoreError::TenantExists(name)) if name == "acme"
    ));
    store.create_tenant("beta").await.unwrap();
    let names: Vec<_> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(names, ["acme", "beta", "default"]);
    let disabled = store.disable_tenant("acme").await.unwrap().unwrap();
    assert!(disabled.disabled && disabled.disabled_at.is_some());
    let again = store.disable_tenant("acme").await.unwrap().unwrap();
    assert_eq!(again.disabled_at, disabled.disabled_at, "idempotent");
    assert_eq!(store.disable_tenant("nobody").await.unwrap(), None);
}

async fn keys_are_found_by_hash_listed_without_it_and_revoked(db: &TestDb) {
    let store = &db.store;
    store.create_tenant("acme").await.unwrap();
    let issued = issue_key();
    let now = chrono::Utc::now();
    let key = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: "acme".into(),
        prefix: issued.prefix.clone(),
        created_at: now,
        expires_at: Some(now + chrono::Duration::days(30)),
        revoked_at: None,
        last_used_at: None,
    };
    store.create_key(&key, &issued.hash).await.unwrap();
    let (found, disabled) = store.find_key(&issued.hash).await.unwrap().unwrap();
    assert_eq!(found.id, key.id);
    assert_eq!(found.tenant_id, "acme");
    assert!(!disabled);
    assert_eq!(store.find_key(&issue_key().hash).await.unwrap(), None);

    store.touch_key(&key.id, now).await.unwrap();
    let listed = store.list_keys("acme").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains(&issued.hash)
    );
    assert_eq!(
        store.revoke_key("other", &key.id).await.unwrap(),
        None,
        "not its key"
    );
    let revoked = store.revoke_key("acme", &key.id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    let (found, _) = store.find_key(&issued.hash).await.unwrap().unwrap();
    assert!(!found.is_usable(chrono::Utc::now()));
    store.disable_tenant("acme").await.unwrap();
    assert!(
        store.find_key(&issued.hash).await.unwrap().unwrap().1,
        "tenant disabled"
    );
}

async fn the_audit_log_pages_newest_first_with_filters(db: &TestDb) {
    let store = &db.store;
    let acme = Principal::Tenant {
        tenant: "acme".into(),
        key_id: Some("k1".into()),
    };
    for i in 0..5 {
        let entry = AuditEntry::new(Some(&acme), "execution.create")
            .target(format!("e{i}"))
            .from_peer(Some("127.0.0.1:5000".into()));
        store.audit(&entry).await.unwrap();
    }
    store
        .audit(
            &AuditEntry::new(None, "request.refused")
                .refused("missing_credential")
                .detail(json!({"route": "/v1/executions"})),
        )
        .await
        .unwrap();
    store
        .audit(
            &AuditEntry::new(Some(&Principal::Admin), "tenant.create")
                .target("beta")
                .for_tenant("beta"),
        )
        .await
        .unwrap();

    let all = store.audit_events(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.items[0].action, "tenant.create", "newest first");
    let refused = store
        .audit_events(&AuditQuery {
            outcome: Some("refused".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(refused.items.len(), 1);
    assert_eq!(refused.items[0].rule.as_deref(), Some("missing_credential"));
    assert_eq!(refused.items[0].detail["route"], "/v1/executions");

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .audit_events(&AuditQuery {
                tenant_id: Some("acme".into()),
                limit: 2,
                cursor: cursor.clone(),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|e| e.target.clone().unwrap()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["e4", "e3", "e2", "e1", "e0"]);
    for bogus in ["bogus", "", "-1", "1234567890123456789"] {
        assert!(matches!(
            store
                .audit_events(&AuditQuery {
                    cursor: Some(bogus.into()),
                    ..AuditQuery::default()
                })
                .await,
            Err(StoreError::InvalidCursor)
        ));
    }
}

async fn policies_are_stored_per_scope(db: &TestDb) {
    let store = &db.store;
    let policy = |value: serde_json::Value| -> Policy { serde_json::from_value(value).unwrap() };
    assert_eq!(store.get_policy(Scope::Global).await.unwrap(), None);
    store
        .put_policy(Scope::Global, &policy(json!({"caps": {"cpus": 2}})))
        .await
        .unwrap();
    store
        .put_policy(
            Scope::Global,
            &policy(json!({"caps": {"cpus": 4}, "max_concurrent": 3})),
        )
        .await
        .unwrap();
    store
        .put_policy(
            Scope::Tenant("global"),
            &policy(json!({"caps": {"cpus": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_policy(Scope::Global).await.unwrap(),
        Some(policy(json!({"caps": {"cpus": 4}, "max_concurrent": 3})))
    );
    assert_eq!(
        store.get_policy(Scope::Tenant("global")).await.unwrap(),
        Some(policy(json!({"caps": {"cpus": 1}})))
    );
    assert_eq!(store.get_policy(Scope::Tenant("acme")).await.unwrap(), None);
}

async fn spend_sums_a_tenants_metered_cost_since_a_time(db: &TestDb) {
    let store = &db.store;
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert_eq!(store.spent_since("acme", since).await.unwrap(), 0.0);
    for (tenant, cost) in [("acme", 0.25), ("acme", 0.5), ("other", 7.0)] {
        let created = store.create_execution(new_execution(tenant)).await.unwrap();
        hold(store.as_ref(), &created.record.id).await;
        let usage = crate::execution::GatewayUsage {
            requests: 1,
            cost_usd: Some(cost),
            ..Default::default()
        };
        store
            .record_gateway_usage(&created.record.id, HOLDER, &usage, &Default::default())
            .await
            .unwrap();
    }
    assert_eq!(store.spent_since("acme", since).await.unwrap(), 0.75);
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.spent_since("acme", later).await.unwrap(), 0.0);
}

async fn credentials_are_kept_sealed_per_tenant(db: &TestDb) {
    use crate::tenancy::{Credential, CredentialKind, SealedCredential};
    let store = &db.store;
    store.create_tenant("acme").await.unwrap();
    store.create_tenant("beta").await.unwrap();
    assert_eq!(store.count_credentials().await.unwrap(), 0);
    let credential = |tenant: &str, kind, pattern: Option<&str>| SealedCredential {
        credential: Credential {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: tenant.into(),
            kind,
            repo_pattern: pattern.map(str::to_string),
            username: (kind == CredentialKind::Https).then(|| "bot".to_string()),
            created_at: chrono::Utc::now(),
        },
        sealed: "c2VhbGVk".into(),
        key_fingerprint: "0123456789ab".into(),
    };
    let first = credential(
        "acme",
        CredentialKind::Https,
        Some("https://git.example.org/*"),
    );
    let second = credential("acme", CredentialKind::Ssh, None);
    let other = credential("beta", CredentialKind::Https, None);
    for sealed in [&first, &second, &other] {
        store.create_credential(sealed).await.unwrap();
    }
    let mut listed = store.list_credentials("acme").await.unwrap();
    for sealed in &mut listed {
        // Times come back at the database's precision.
        sealed.credential.created_at = first.credential.created_at;
    }
    let mut expected = vec![first.clone(), second.clone()];
    expected[1].credential.created_at = first.credential.created_at;
    assert_eq!(listed, expected);
    assert_eq!(store.count_credentials().await.unwrap(), 3);
    assert_eq!(
        store.credential_key_fingerprints().await.unwrap(),
        ["0123456789ab"]
    );
    assert!(
        !store
            .delete_credential("beta", &first.credential.id)
            .await
            .unwrap(),
        "another tenant's"
    );
    assert!(
        store
            .delete_credential("acme", &first.credential.id)
            .await
            .unwrap()
    );
    assert_eq!(store.list_credentials("acme").await.unwrap().len(), 1);
    assert_eq!(store.count_credentials().await.unwrap(), 2);
}

async fn a_delivery_and_its_plan_round_trip(db: &TestDb) {
    use crate::execution::{Delivery, DeliveryStatus, DiffStats};
    let store = &db.store;
    let mut new = new_execution("default");
    new.request.push = true;
    new.request.merge_into = Some("integration".into());
    let created = store.create_execution(new).await.unwrap().record;
    assert!(created.request.push);
    assert_eq!(created.request.merge_into.as_deref(), Some("integration"));
    assert_eq!(created.delivery, None);
    let delivery = Delivery {
        status: DeliveryStatus::Conflict,
        remote: created.request.repo.clone(),
        branch: created.branch.clone(),
        commit: Some("a".repeat(40)),
        base_commit: Some("b".repeat(40)),
        stats: Some(DiffStats {
            files_changed: 2,
            insertions: 10,
            deletions: 1,
        }),
        merge_into: Some("integration".into()),
        merge_commit: None,
        conflicts: vec!["src/lib.rs".into()],
        error: Some("conflicts".into()),
        attempts: 1,
        finished_at: chrono::Utc::now(),
    };
    let recorded = store.record_delivery(&created.id, &delivery).await.unwrap();
    assert_eq!(recorded.delivery, Some(delivery.clone()));
    let read = store
        .get_execution(None, &created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.delivery, Some(delivery));
    assert!(matches!(
        store
            .record_delivery("nope", &read.delivery.clone().unwrap())
            .await,
        Err(StoreError::NotFound(_))
    ));
}
