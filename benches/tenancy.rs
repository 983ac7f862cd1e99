//! Issue 9's scheduling figures, on the real store (SQLite, and PostgreSQL
//! when `AGENTD_BENCH_POSTGRES_URL` names a server): 20 tenants queue 200
//! executions in bursts (each tenant's ten together, tenant 0 first — the
//! worst order for a first-come queue), 4 slots run them, every execution
//! holding its slot for the same time. Printed for the fair claim and, in
//! the same run, for the first-come claim agentd had before (oldest queued
//! first):
//! - scheduling decisions per second (claims, each followed by a finish);
//! - the spread of waits across tenants: the largest of the tenants' median
//!   waits over the smallest (waits counted in slot turns; goal ≤ 1.5).
//!
//! Run with `cargo bench --bench tenancy` (or scripts/bench-tenancy).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd::execution::{AppliedPolicy, ExecutionRequest, NewExecution, Outcome, Status};
use agentd::store::Store;
use sqlx::Connection;

const TENANTS: usize = 20;
const EACH: usize = 10;
const SLOTS: usize = 4;
const LEASE: Duration = Duration::from_secs(600);

/// The claim as agentd made it before fair scheduling: oldest queued first.
const FIRST_COME: &str = "UPDATE executions SET status = 'preparing', owner = $1, \
     lease_expires_at = $2, started_at = $3, updated_at = $3 \
     WHERE id = (SELECT id FROM executions WHERE status = 'queued' ORDER BY id LIMIT 1) \
     AND status = 'queued' RETURNING id, tenant_id";

#[derive(Clone, Copy, PartialEq)]
enum Claim {
    Fair,
    FirstCome,
}

struct Figures {
    decisions_per_second: f64,
    spread: f64,
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut backends = vec![(
            "sqlite",
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        )];
        if let Ok(url) = std::env::var("AGENTD_BENCH_POSTGRES_URL") {
            backends.push(("postgres", fresh_postgres(&url).await));
        }
        for (name, url) in backends {
            let fair = run(&url, Claim::Fair).await;
            let first_come = run(&url, Claim::FirstCome).await;
            println!(
                "{name}: scheduling decisions/s: fair {:.0}, first-come {:.0} (ratio {:.2})",
                fair.decisions_per_second,
                first_come.decisions_per_second,
                fair.decisions_per_second / first_come.decisions_per_second
            );
            println!(
                "{name}: spread of tenants' median waits (max/min): fair {:.2} (goal <= 1.5), first-come {:.2}",
                fair.spread, first_come.spread
            );
        }
    });
}

async fn run(url: &str, claim: Claim) -> Figures {
    let store = agentd::store::open(url).await.expect("store");
    store.migrate().await.expect("migrate");
    drain(&store).await;
    let repo = std::env::temp_dir().display().to_string();
    for tenant in 0..TENANTS {
        for _ in 0..EACH {
            let request: ExecutionRequest =
                serde_json::from_value(serde_json::json!({"repo": repo, "prompt": "bench"}))
                    .expect("request");
            store
                .create_execution(NewExecution {
                    id: uuid::Uuid::now_v7().to_string(),
                    tenant_id: format!("tenant-{tenant:02}"),
                    idempotency_key: None,
                    request_hash: "bench".into(),
                    request,
                    policy: AppliedPolicy::operator(),
                    lineage: None,
                })
                .await
                .expect("queue");
        }
    }
    let mut conn = connect(url).await;
    let mut running: VecDeque<String> = VecDeque::new();
    let mut waits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut turn = 0u64;
    let mut decisions = 0u32;
    let mut spent = Duration::ZERO;
    loop {
        while running.len() < SLOTS {
            let started = Instant::now();
            let claimed = match claim {
                Claim::Fair => store
                    .claim_next("bench", LEASE)
                    .await
                    .expect("claim")
                    .map(|r| (r.id.clone(), r.tenant_id.clone())),
                Claim::FirstCome => first_come(&mut conn).await,
            };
            spent += started.elapsed();
            let Some((id, tenant)) = claimed else { break };
            decisions += 1;
            waits.entry(tenant).or_default().push(turn);
            running.push_back(id);
        }
        let Some(oldest) = running.pop_front() else {
            break;
        };
        let started = Instant::now();
        store
            .finish(&oldest, "bench", &succeeded())
            .await
            .expect("finish");
        spent += started.elapsed();
        turn += 1;
    }
    assert_eq!(decisions as usize, TENANTS * EACH);
    let medians: Vec<f64> = waits
        .values_mut()
        .map(|w| {
            w.sort_unstable();
            (w[(w.len() - 1) / 2] + w[w.len() / 2]) as f64 / 2.0 + 1.0
        })
        .collect();
    let max = medians.iter().cloned().fold(f64::MIN, f64::max);
    let min = medians.iter().cloned().fold(f64::MAX, f64::min);
    Figures {
        decisions_per_second: f64::from(decisions) / spent.as_secs_f64(),
        spread: max / min,
    }
}

fn succeeded() -> Outcome {
    Outcome {
        status: Status::Succeeded,
        reason: None,
        head_commit: None,
        session_id: None,
        num_turns: 0,
        usage: Default::default(),
        cost_usd: None,
        tool_calls: 0,
        result: None,
        files_changed: vec![],
        exit_code: Some(0),
        oom_killed: false,
        has_diff: false,
        has_bundle: false,
        artifacts: vec![],
        duration_ms: 0,
        gateway: Default::default(),
        conversation: Default::default(),
        claimed: None,
        left_out: vec![],
    }
}

/// Ends whatever an earlier round left, so each round starts from an empty queue.
async fn drain(store: &Arc<dyn Store>) {
    while let Some(record) = store.claim_next("drain", LEASE).await.expect("drain") {
        store
            .finish(&record.id, "drain", &succeeded())
            .await
            .expect("finish");
    }
}

/// A connection for the first-come claim (held for the whole round, as the
/// store's pool holds its connections).
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn connect(url: &str) -> Conn {
    if url.starts_with("sqlite") {
        Conn::Sqlite(sqlx::SqliteConnection::connect(url).await.expect("sqlite"))
    } else {
        Conn::Postgres(sqlx::PgConnection::connect(url).await.expect("postgres"))
    }
}

/// One first-come claim, through the same database with the old statement.
async fn first_come(conn: &mut Conn) -> Option<(String, String)> {
    let now = chrono::Utc::now();
    match conn {
        Conn::Sqlite(conn) => {
            let fmt =
                |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            sqlx::query_as::<_, (String, String)>(FIRST_COME)
                .bind("bench")
                .bind(fmt(now + LEASE))
                .bind(fmt(now))
                .fetch_optional(conn)
                .await
                .expect("claim")
        }
        Conn::Postgres(conn) => sqlx::query_as::<_, (String, String)>(FIRST_COME)
            .bind("bench")
            .bind(now + LEASE)
            .bind(now)
            .fetch_optional(conn)
            .await
            .expect("claim"),
    }
}

async fn fresh_postgres(admin: &str) -> String {
    let name = format!("agentd_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(admin).expect("url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
