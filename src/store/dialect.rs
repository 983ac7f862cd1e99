//! What differs between the databases the store runs on — and nothing else.
//!
//! The store is one implementation generic over the sqlx database
//! ([`super::sql::SqlStore`]), not two copies and not `sqlx::Any`: `Any` only
//! carries integers, floats, text and bytes, so PostgreSQL would lose
//! `timestamptz`, `jsonb` and `boolean`. A dialect supplies the few things that
//! really differ: how a timestamp travels, how a writing transaction begins, how
//! the claim keeps concurrent claimers apart, and its embedded migrations.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::migrate::MigrateError;
use sqlx::{Database, Decode, Encode, Pool, Type};

/// A Rust type the database stores and gives back as is.
pub(super) trait Field<DB: Database>:
    for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

impl<DB: Database, T> Field<DB> for T where
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB> + Send + Sync
{
}

/// One database's spelling of the store.
pub(super) trait Dialect: Database {
    /// How a timestamp is stored: `timestamptz` on PostgreSQL; fixed-width UTC
    /// text on SQLite, so that comparing two of them compares times.
    type Time: Field<Self>;

    /// Opens a transaction that will write. On SQLite it takes the write lock
    /// up front (`BEGIN IMMEDIATE`), so two writers wait for each other (busy
    /// timeout) instead of failing when one upgrades a stale read.
    const BEGIN_WRITE: &'static str;

    /// Claims the next queued execution (see [`super::queries`]).
    const CLAIM: &'static str;

    /// Claims due webhook deliveries (see [`super::outbox`]).
    const CLAIM_DELIVERIES: &'static str;

    /// Opens a listing's page: its rows aggregated into one JSON array.
    const LIST_PAGE: &'static str;

    /// Taken inside the claim's transaction before it runs, so that claimers
    /// on several replicas see each other's claims when they count a
    /// tenant's live executions against its cap (`None`: the database
    /// already runs one writer at a time).
    const CLAIM_LOCK: Option<&'static str>;

    /// A timestamp as this database stores it (microsecond precision).
    fn to_time(at: DateTime<Utc>) -> Self::Time;

    /// A stored timestamp back; `Err` names what is wrong with it.
    fn from_time(stored: Self::Time) -> Result<DateTime<Utc>, String>;

    /// Applies this dialect's embedded migrations.
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = Result<(), MigrateError>> + Send;
}
