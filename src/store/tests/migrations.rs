//! Upgrading a database made by an older agentd keeps every row.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use super::HOLDER;
use super::harness::{Backend, TestDb};
use super::outcome;
use crate::execution::GatewayUsage;
use crate::execution::Status;

const ID: &str = "01900000-0000-7000-8000-0000000000aa";

/// Brings an empty database to schema version 1 only, as agentd 0.1's first
/// release left it.
async fn first_schema(db: &TestDb) {
    match db.backend {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&db.url).await.unwrap();
            crate::store::sqlite::MIGRATOR
                .run_to(1, &mut conn)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.unwrap();
            crate::store::postgres::MIGRATOR
                .run_to(1, &mut conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_from_the_first_schema_keeps_every_row() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::empty(backend).await;
        first_schema(&db).await;
        let at = "2026-01-02T03:04:05.123456Z";
        db.execute(format!(
            "INSERT INTO executions (id, tenant_id, request_hash, status, repo, prompt, agent, \
             limits, branch, created_at, updated_at, cost_usd) \
             VALUES ('{ID}', 'acme', 'h', 'running', 'https://example.com/r.git', 'p', '{{}}', \
             '{{\"timeout\":\"10m\"}}', 'agent/{ID}', '{at}', '{at}', 0.5); \
             INSERT INTO events (execution_id, seq, at, source, type, body) VALUES \
             ('{ID}', 1, '{at}', 'agentd', 'progress', \
              '{{\"source\":\"agentd\",\"type\":\"progress\",\"message\":\"kept\"}}'); \
             INSERT INTO resources (execution_id, kind, name, created_at) VALUES \
             ('{ID}', 'volume', 'agentd-{ID}', '{at}');"
        ))
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"));

        db.store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));

        let record = db.store.get_execution(None, ID).await.unwrap().unwrap();
        assert_eq!(record.status, Status::Running);
        assert_eq!(record.tenant_id, "acme");
        let tenants: Vec<_> = db
            .store
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(
            tenants,
            ["acme", "default"],
            "{backend:?}: the tenants of existing rows"
        );
        assert!(
            record.policy.operator && record.policy.clamped.is_empty(),
            "{backend:?}: rows from before tenancy were the operator's: {:?}",
            record.policy
        );
        assert_eq!(record.cost_usd, Some(0.5));
        assert_eq!(record.gateway, GatewayUsage::default());
        assert!(!record.request.record);
        assert_eq!(record.request.replay, None);
        let events = db.store.events_after(ID, 0, 10).await.unwrap();
        assert_eq!(events.len(), 1, "{backend:?}: the event survived");
        assert_eq!(db.store.resources(ID).await.unwrap().len(), 1);
        // The new status is accepted, and the foreign keys still hold.
        db.execute(format!(
            "UPDATE executions SET owner = '{HOLDER}' WHERE id = '{ID}'"
        ))
        .await
        .unwrap();
        let ended = db
            .store
            .finish(ID, HOLDER, &outcome(Status::BudgetExceeded))
            .await
            .unwrap();
        assert_eq!(ended.status, Status::BudgetExceeded);
        assert_eq!(ended.gateway.requests, 11);
        let orphan = db
            .execute(format!(
                "INSERT INTO events (execution_id, seq, at, source, type, body) VALUES \
                 ('no-such-execution', 1, '{at}', 'agentd', 'progress', '{{}}')"
            ))
            .await;
        assert!(
            orphan.is_err(),
            "{backend:?}: foreign keys are enforced again"
        );
    }
}
