//! PostgreSQL: production, and several supervisor replicas sharing one queue.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Pool, Postgres};

use super::StoreError;
use super::dialect::Dialect;
use super::queries;

/// Connections per supervisor: the runner, the API and the lease heartbeat
/// each hold one briefly; the server's default limit is 100 for all replicas.
const MAX_CONNECTIONS: u32 = 10;

/// How long a caller waits for a free connection before the call fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

impl Dialect for Postgres {
    type Time = DateTime<Utc>;

    const BEGIN_WRITE: &'static str = "BEGIN";

    const LIST_PAGE: &'static str = queries::LIST_PAGE_POSTGRES;

    const CLAIM: &'static str = queries::CLAIM_SKIP_LOCKED;

    /// A transaction-scoped advisory lock (released at commit): claims are
    /// rare and short, so serialising them costs little.
    const CLAIM_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7317001)");
    const CLAIM_DELIVERIES: &'static str = super::outbox::CLAIM_DELIVERIES_SKIP_LOCKED;

    fn to_time(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    fn from_time(stored: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        Ok(stored)
    }

    /// sqlx serialises concurrent migrators with an advisory lock.
    async fn migrate(pool: &Pool<Postgres>) -> Result<(), MigrateError> {
        MIGRATOR.run(pool).await
    }
}

/// Connects to the server a `postgres://` or `postgresql://` URL names.
pub(super) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?)
}
