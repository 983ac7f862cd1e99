//! One fresh database per test, on each backend: a temp SQLite file, or a new
//! PostgreSQL database `agentd_test_<random>` made through
//! `AGENTD_TEST_POSTGRES_URL` and dropped afterwards (even when the test fails).

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, PgConnection, SqliteConnection};
use uuid::Uuid;

use crate::execution::AgentOptions;
use crate::execution::Limits;
use crate::execution::{ExecutionRequest, NewExecution};
use crate::store::{Store, open};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated store on a database of its own.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    dropper: Option<(String, String)>,
}

const POSTGRES_URL: &str = "AGENTD_TEST_POSTGRES_URL";

impl TestDb {
    /// A migrated store.
    pub async fn new(backend: Backend) -> TestDb {
        let db = Self::empty(backend).await;
        db.store.migrate().await.expect("migrate");
        db
    }

    /// A store on an empty database (not migrated).
    pub async fn empty(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("agentd.db").display());
        TestDb {
            store: open(&url).await.expect("open sqlite"),
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            dropper: None,
        }
    }

    async fn postgres() -> TestDb {
        let admin = std::env::var(POSTGRES_URL).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL} is not set: the PostgreSQL half of the store tests needs a \
                 server. Run `export {POSTGRES_URL}=$(scripts/postgres)` first."
            )
        });
        let name = format!("agentd_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|err| panic!("connecting to {POSTGRES_URL}: {err}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        TestDb {
            store: open(&url).await.expect("open postgres"),
            backend: Backend::Postgres,
            url,
            _dir: None,
            dropper: Some((admin, name)),
        }
    }

    /// Runs a query returning one integer, beside the store (for checks the
    /// trait does not offer).
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }
}

impl TestDb {
    /// Runs SQL beside the store (to damage rows on purpose).
    pub async fn execute(&self, sql: String) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql);
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.dropper.take() else {
            return;
        };
        // Drop runs inside the test's runtime (or while unwinding): use a thread
        // with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop the test database: {err}");
        }
    }
}

/// Runs each named test, an `async fn(&TestDb)` written once, on both
/// backends: `on_both_backends!(name)` makes `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::store::tests::harness::{Backend, TestDb};

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name(&TestDb::new(Backend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name(&TestDb::new(Backend::Postgres).await).await;
                }
            }
        )*
    };
}
pub(crate) use on_both_backends;

/// A queued execution of `tenant` with every optional field filled.
pub fn new_execution(tenant: &str) -> NewExecution {
    NewExecution {
        id: Uuid::now_v7().to_string(),
        tenant_id: tenant.to_string(),
        idempotency_key: None,
        request_hash: "hash-1".into(),
        request: ExecutionRequest {
            repo: "https://example.com/acme/widgets.git".into(),
            git_ref: Some("main".into()),
            prompt: "Fix the failing test — ünïcode ✓".into(),
            agent: AgentOptions {
                model: Some("claude-sonnet-4-5".into()),
                max_turns: Some(7),
                max_budget_usd: Some(1.25),
                allowed_tools: vec!["Read".into(), "Bash(git diff *)".into()],
                disallowed_tools: vec!["WebFetch".into()],
                append_system_prompt: Some("Be brief.".into()),
            },
            limits: Limits {
                timeout: Duration::from_secs(90 * 60 + 5),
                cpus: 1.5,
                memory_bytes: 3 << 30,
                pids: 512,
                max_artifact_bytes: 1 << 20,
                workspace_bytes: 10 << 30,
                max_tokens: Some(2_000_000),
                max_requests: Some(400),
                requests_per_minute: Some(30),
            },
            context_file: Some("# Project\nUse tabs.".into()),
            record: true,
            replay: Some("01900000-0000-7000-8000-000000000000".into()),
            agent_id: None,
            task_id: None,
            branch_template: None,
            push: false,
            merge_into: None,
            hooks: Default::default(),
            retries: 0,
            streaming_input: true,
            sandbox: crate::execution::SandboxOptions {
                image: Some("agentd-agent:custom".into()),
                runtime: Some("runsc".into()),
            },
        },
        policy: crate::execution::AppliedPolicy {
            clamped: vec![crate::execution::Clamp {
                field: "limits.cpus".into(),
                asked: serde_json::json!(4.0),
                allowed: serde_json::json!(1.5),
            }],
            tools: crate::execution::ToolRules {
                allow: vec![],
                deny: vec![crate::execution::ToolRule {
                    rule: "Bash(curl *)".into(),
                    source: crate::execution::RuleSource::Policy,
                }],
                only_allowed: false,
            },
            daily_spend_usd: Some(20.0),
            conversation_budget: true,
            models: vec!["claude-*".into()],
            allow_private_hosts: false,
            operator: false,
            git_author_name: Some("Acme Agents".into()),
            git_author_email: Some("agents@acme.example".into()),
            commit_message: Some("{prompt}\n\nExecution: {execution_id}".into()),
        },
        lineage: None,
    }
}

/// `new_execution` for `tenant` on `repo`.
pub fn new_execution_on(tenant: &str, repo: &str) -> NewExecution {
    let mut new = new_execution(tenant);
    new.request.repo = repo.to_string();
    new
}
