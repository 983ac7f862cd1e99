//! Migrations, creating and reading executions, idempotency, listing, and what
//! happens to rows damaged behind the store's back.

use std::collections::BTreeSet;

use chrono::{SubsecRound, Utc};
use pretty_assertions::assert_eq;

use super::harness::{Backend, TestDb, new_execution, new_execution_on, on_both_backends};
use super::{HOLDER, held, hold, outcome};
use crate::execution::{ExecutionBrief, Status};
use crate::store::{DEFAULT_TENANT, ListQuery, StoreError, open};

on_both_backends!(
    migrate_twice_is_a_noop,
    create_then_get_with_tenant_scoping,
    idempotency_keys_return_or_refuse,
    listing_pages_newest_first_with_filters,
    a_listed_brief_is_its_record_in_brief,
    damaged_rows_are_reported_as_corrupt,
);

async fn migrate_twice_is_a_noop(db: &TestDb) {
    let created = db
        .store
        .create_execution(new_execution(DEFAULT_TENANT))
        .await
        .unwrap();
    db.store.migrate().await.unwrap();
    let again = open(&db.url).await.unwrap();
    again.migrate().await.unwrap();
    again.ping().await.unwrap();
    let files = std::fs::read_dir(match db.backend {
        Backend::Sqlite => "migrations/sqlite",
        Backend::Postgres => "migrations/postgres",
    })
    .unwrap()
    .count() as i64;
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await,
        files
    );
    let kept = again.get_execution(None, &created.record.id).await.unwrap();
    assert_eq!(kept, Some(created.record));
}

async fn create_then_get_with_tenant_scoping(db: &TestDb) {
    let before = Utc::now().trunc_subsecs(6);
    let new = new_execution("acme");
    let created = db.store.create_execution(new.clone()).await.unwrap();
    assert!(!created.existing);
    let record = created.record;
    assert_eq!(record.id, new.id);
    assert_eq!(record.tenant_id, "acme");
    assert_eq!(record.status, Status::Queued);
    assert_eq!(record.branch, format!("agent/{}", new.id));
    assert_eq!(record.request_hash, new.request_hash);
    assert_eq!(record.request.repo, new.request.repo);
    assert_eq!(record.request.git_ref, new.request.git_ref);
    assert_eq!(record.request.prompt, new.request.prompt);
    assert_eq!(record.request.agent, new.request.agent);
    assert_eq!(record.request.limits, new.request.limits);
    assert_eq!(record.request.context_file, new.request.context_file);
    assert_eq!(record.reason, None);
    assert_eq!(
        (record.num_turns, record.tool_calls, record.log_cursor),
        (0, 0, 0)
    );
    assert_eq!(record.files_changed, vec![]);
    assert!(!record.cancel_requested && !record.oom_killed && !record.has_diff);
    assert_eq!(record.owner, None);
    assert_eq!(record.started_at, None);
    assert_eq!(record.finished_at, None);
    assert_eq!(record.updated_at, record.created_at);
    assert!(record.created_at >= before && record.created_at <= Utc::now());
    assert_eq!(record.created_at, record.created_at.trunc_subsecs(6));

    let read = db.store.get_execution(None, &new.id).await.unwrap();
    assert_eq!(read.as_ref(), Some(&record));
    let scoped = db.store.get_execution(Some("acme"), &new.id).await.unwrap();
    assert_eq!(scoped.as_ref(), Some(&record));
    assert_eq!(
        db.store
            .get_execution(Some("other"), &new.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.store.get_execution(None, "no-such-id").await.unwrap(),
        None
    );

    let mut minimal = new_execution(DEFAULT_TENANT);
    minimal.request.git_ref = None;
    minimal.request.context_file = None;
    minimal.request.agent = Default::default();
    minimal.request.limits = Default::default();
    let created = db
        .store
        .create_execution(minimal.clone())
        .await
        .unwrap()
        .record;
    assert_eq!(created.tenant_id, DEFAULT_TENANT);
    assert_eq!(created.request.git_ref, None);
    assert_eq!(created.request.agent, minimal.request.agent);
    assert_eq!(created.request.limits, minimal.request.limits);
}

async fn idempotency_keys_return_or_refuse(db: &TestDb) {
    let first = crate::execution::NewExecution {
        idempotency_key: Some("key-1".into()),
        request_hash: "h1".into(),
        ..new_execution("acme")
    };
    let created = db.store.create_execution(first.clone()).await.unwrap();
    assert!(!created.existing);

    let retry = crate::execution::NewExecution {
        id: new_execution("acme").id,
        ..first.clone()
    };
    let again = db.store.create_execution(retry).await.unwrap();
    assert!(again.existing);
    assert_eq!(again.record, created.record);

    let different = crate::execution::NewExecution {
        id: new_execution("acme").id,
        request_hash: "h2".into(),
        ..first.clone()
    };
    match db.store.create_execution(different).await {
        Err(StoreError::IdempotencyConflict(key)) => assert_eq!(key, "key-1"),
        other => panic!("expected a conflict, got {other:?}"),
    }

    let other_tenant = crate::execution::NewExecution {
        id: new_execution("globex").id,
        tenant_id: "globex".into(),
        ..first.clone()
    };
    let theirs = db.store.create_execution(other_tenant).await.unwrap();
    assert!(!theirs.existing);
    assert_ne!(theirs.record.id, created.record.id);

    let a = db
        .store
        .create_execution(new_execution("acme"))
        .await
        .unwrap();
    let b = db
        .store
        .create_execution(new_execution("acme"))
        .await
        .unwrap();
    assert!(!a.existing && !b.existing);
    assert_ne!(a.record.id, b.record.id);

    // Eight retries of one request racing: one creates, seven find it.
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = db.store.clone();
        let new = crate::execution::NewExecution {
            idempotency_key: Some("key-race".into()),
            ..new_execution("acme")
        };
        racers.push(tokio::spawn(
            async move { store.create_execution(new).await },
        ));
    }
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for racer in racers {
        let result = racer.await.unwrap().unwrap();
        created += usize::from(!result.existing);
        ids.insert(result.record.id.clone());
    }
    assert_eq!((created, ids.len()), (1, 1));
}

async fn listing_pages_newest_first_with_filters(db: &TestDb) {
    let mut acme_r1 = Vec::new();
    let mut acme_r2 = Vec::new();
    let mut globex = Vec::new();
    for i in 0..13 {
        let (new, into) = match i % 3 {
            0 | 1 if acme_r1.len() < 7 => (new_execution_on("acme", "r1"), &mut acme_r1),
            2 if acme_r2.len() < 3 => (new_execution_on("acme", "r2"), &mut acme_r2),
            _ => (new_execution_on("globex", "r1"), &mut globex),
        };
        into.push(
            db.store
                .create_execution(new)
                .await
                .unwrap()
                .record
                .id
                .clone(),
        );
    }
    assert_eq!((acme_r1.len(), acme_r2.len(), globex.len()), (7, 3, 3));

    // Three pages of 3, 3 and 1.
    let newest_first = |ids: &[String]| ids.iter().rev().cloned().collect::<Vec<_>>();
    let mut query = ListQuery {
        tenant_id: Some("acme".into()),
        repo: Some("r1".into()),
        limit: 3,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = db.store.list_executions(&query).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first(&acme_r1));

    // An exact fit: two full pages, and no cursor after the second.
    let page = |limit, cursor| ListQuery {
        repo: Some("r1".into()),
        tenant_id: Some("globex".into()),
        limit,
        cursor,
        ..Default::default()
    };
    let first = db.store.list_executions(&page(2, None)).await.unwrap();
    assert!(first.next_cursor.is_some());
    let second = db
        .store
        .list_executions(&page(1, first.next_cursor))
        .await
        .unwrap();
    assert_eq!(second.next_cursor, None);
    assert_eq!(second.items.len(), 1);

    // Status filter.
    let claimed = db
        .store
        .claim_next("w", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let claimed = claimed.unwrap();
    let preparing = db
        .store
        .list_executions(&ListQuery {
            status: Some(Status::Preparing),
            ..Default::default()
        })
        .await
        .unwrap();
    let briefs: Vec<(&str, Status)> = preparing
        .items
        .iter()
        .map(|b| (b.id.as_str(), b.status))
        .collect();
    assert_eq!(briefs, vec![(claimed.id.as_str(), Status::Preparing)]);
    let queued_acme = db
        .store
        .list_executions(&ListQuery {
            tenant_id: Some("acme".into()),
            status: Some(Status::Queued),
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut expected: Vec<String> = acme_r1.iter().chain(&acme_r2).cloned().collect();
    expected.retain(|id| *id != claimed.id);
    expected.sort();
    assert_eq!(
        queued_acme
            .items
            .iter()
            .map(|r| r.id.clone())
            .collect::<Vec<_>>(),
        newest_first(&expected)
    );
    assert_eq!(queued_acme.next_cursor, None);

    // Everything, newest first, with the default page size.
    let all = db
        .store
        .list_executions(&ListQuery::default())
        .await
        .unwrap();
    let mut every: Vec<String> = acme_r1
        .iter()
        .chain(&acme_r2)
        .chain(&globex)
        .cloned()
        .collect();
    every.sort();
    assert_eq!(
        all.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        newest_first(&every)
    );
    let distinct: BTreeSet<_> = all.items.iter().map(|r| &r.id).collect();
    assert_eq!(distinct.len(), 13);

    // A brief shows the start of a long prompt, cut at a character.
    let mut long = new_execution_on("longwinded", "r9");
    long.request.prompt = format!("{}{}", "ü".repeat(150), "x".repeat(100));
    db.store.create_execution(long).await.unwrap();
    let brief = db
        .store
        .list_executions(&ListQuery {
            tenant_id: Some("longwinded".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(
        brief.prompt_preview,
        format!("{}{}…", "ü".repeat(150), "x".repeat(50))
    );
    assert_eq!((brief.repo.as_str(), brief.status), ("r9", Status::Queued));

    // Any id-shaped cursor reads: it lists what comes before it.
    let before_all = db
        .store
        .list_executions(&ListQuery {
            cursor: Some("00000000-0000-7000-8000-000000000000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(before_all.items.is_empty());
    let after_all = db
        .store
        .list_executions(&ListQuery {
            cursor: Some("ffffffff-ffff-7fff-bfff-ffffffffffff".into()),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after_all.items.len(), 14);
    for bad in [
        "not-a-cursor!",
        "Zm9vOmJhcg",
        "",
        "FFFFFFFF-ffff-7fff-bfff-ffffffffffff",
        "ffffffff-ffff-7fff-bfff-fffffffffff",
        "ffffffffxffffx7fffxbfffxffffffffffff",
    ] {
        let result = db
            .store
            .list_executions(&ListQuery {
                cursor: Some(bad.into()),
                ..Default::default()
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor)),
            "{bad}: {result:?}"
        );
    }
}

async fn damaged_rows_are_reported_as_corrupt(db: &TestDb) {
    let id = held(db.store.as_ref()).await;
    let refused = db
        .execute(format!(
            "UPDATE executions SET status = 'exploded' WHERE id = '{id}'"
        ))
        .await;
    assert!(
        refused.is_err(),
        "the status CHECK must refuse unknown names"
    );

    db.execute(format!(
        "UPDATE executions SET agent = '{{\"model\": 5}}' WHERE id = '{id}'"
    ))
    .await
    .unwrap();
    match db.store.get_execution(None, &id).await {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "executions.agent"),
        other => panic!("expected corrupt agent, got {other:?}"),
    }

    let other = held(db.store.as_ref()).await;
    db.store
        .append_events(
            &other,
            HOLDER,
            &[crate::execution::EventBody::progress("x")],
            None,
        )
        .await
        .unwrap();
    db.execute(format!(
        "UPDATE events SET body = '{{\"source\":\"martians\"}}' WHERE execution_id = '{other}'"
    ))
    .await
    .unwrap();
    match db.store.events_after(&other, 0, 10).await {
        Err(StoreError::Corrupt { column, .. }) => assert_eq!(column, "events.body"),
        other => panic!("expected corrupt body, got {other:?}"),
    }
}

/// Several processes starting at once on a new database all migrate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_migrations_all_succeed() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::empty(backend).await;
        let mut starts = Vec::new();
        for _ in 0..6 {
            let url = db.url.clone();
            starts.push(tokio::spawn(async move {
                let store = open(&url).await.unwrap();
                store.migrate().await
            }));
        }
        for start in starts {
            start
                .await
                .unwrap()
                .unwrap_or_else(|err| panic!("{backend:?}: {err}"));
        }
        // One row per migration file.
        let dir = match backend {
            Backend::Sqlite => "migrations/sqlite",
            Backend::Postgres => "migrations/postgres",
        };
        let files = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count() as i64;
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await,
            files
        );
        db.store
            .create_execution(new_execution("acme"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_their_secrets() {
    for url in [
        "mysql://root:hunter2@db/agentd",
        "postgres:/nohost",
        "agentd.db",
        "",
    ] {
        match open(url).await {
            Err(StoreError::UnsupportedUrl(shown)) => {
                assert!(!shown.contains("hunter2"), "{shown}")
            }
            Err(other) => panic!("{url}: expected UnsupportedUrl, got {other}"),
            Ok(_) => panic!("{url}: expected UnsupportedUrl, got a store"),
        }
    }
}

#[tokio::test]
async fn sqlite_urls_create_the_file_in_both_spellings() {
    let dir = tempfile::tempdir().unwrap();
    for (i, prefix) in ["sqlite://", "sqlite:"].into_iter().enumerate() {
        let path = dir.path().join(format!("folder-{i}/new.db"));
        let store = open(&format!("{prefix}{}", path.display())).await.unwrap();
        store.migrate().await.unwrap();
        assert!(path.exists(), "{prefix}");
        store.ping().await.unwrap();
    }
    let memory = open("sqlite::memory:").await.unwrap();
    memory.migrate().await.unwrap();
    let id = memory
        .create_execution(new_execution(DEFAULT_TENANT))
        .await
        .unwrap()
        .record
        .id
        .clone();
    assert!(memory.get_execution(None, &id).await.unwrap().is_some());
}

/// The database writes a page's JSON itself (the API sends it unread): each
/// item must be exactly the brief agentd makes of the whole record — the same
/// keys, the same values — whatever the record holds: a long prompt of
/// multi-byte characters (cut at a character, marked), one exactly at the
/// preview's length, one with characters JSON must escape, a finished one
/// with cost and reason, a cancel request.
async fn a_listed_brief_is_its_record_in_brief(db: &TestDb) {
    let prompts = [
        "é".repeat(crate::execution::PROMPT_PREVIEW_CHARS + 40),
        "ü".repeat(crate::execution::PROMPT_PREVIEW_CHARS),
        "quote \" backslash \\ tab \t newline \n bell \u{7} ✓".to_string(),
        "short".to_string(),
    ];
    let mut ids = Vec::new();
    for prompt in &prompts {
        let mut new = new_execution("acme");
        new.request.prompt = prompt.clone();
        ids.push(
            db.store
                .create_execution(new)
                .await
                .unwrap()
                .record
                .id
                .clone(),
        );
    }
    hold(db.store.as_ref(), &ids[0]).await;
    db.store
        .finish(&ids[0], HOLDER, &outcome(Status::Failed))
        .await
        .unwrap();
    db.store.request_cancel(None, &ids[1]).await.unwrap();

    let page = db
        .store
        .list_execution_page(&ListQuery {
            tenant_id: Some("acme".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let written: Vec<serde_json::Value> = serde_json::from_str(&page.items).unwrap();
    let listed: Vec<ExecutionBrief> = serde_json::from_str(&page.items).unwrap();
    assert_eq!(listed.len(), prompts.len());
    for (value, brief) in written.iter().zip(&listed) {
        let record = db
            .store
            .get_execution(None, &brief.id)
            .await
            .unwrap()
            .unwrap();
        let expected = ExecutionBrief::from(&record);
        assert_eq!(brief, &expected);
        let keys = |value: &serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(value), keys(&serde_json::to_value(&expected).unwrap()));
    }
    let finished = listed.iter().find(|b| b.id == ids[0]).unwrap();
    assert!(finished.prompt_preview.ends_with("é…"));
    assert_eq!(finished.cost_usd, Some(0.0423));
    assert!(listed.iter().any(|b| b.cancel_requested));
    assert_eq!(page.next_cursor, None);
}
