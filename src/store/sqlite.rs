//! SQLite: the embedded default. One file in WAL mode, shared by every agentd
//! process on the host (several `agentd run` at once): readers never block,
//! writers take turns under a busy timeout.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Pool, Sqlite};

use super::StoreError;
use super::dialect::Dialect;
use super::queries;

/// How long a writer waits for another process's write lock before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per process: WAL lets readers run beside the one writer; more
/// would only queue on the write lock.
const MAX_CONNECTIONS: u32 = 8;

/// Layout of a stored timestamp: fixed width, so text order is time order.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

impl Dialect for Sqlite {
    type Time = String;

    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    const LIST_PAGE: &'static str = queries::LIST_PAGE_SQLITE;

    const CLAIM: &'static str = queries::CLAIM_SINGLE_WRITER;

    const CLAIM_LOCK: Option<&'static str> = None;
    const CLAIM_DELIVERIES: &'static str = super::outbox::CLAIM_DELIVERIES_SINGLE_WRITER;

    fn to_time(at: DateTime<Utc>) -> String {
        at.format(TIME_FORMAT).to_string()
    }

    fn from_time(stored: String) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(&stored)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| format!("`{stored}`: {err}"))
    }

    /// SQLite migrations take no lock of their own, and a migration that
    /// rebuilds a table must never run twice (a second run, after a later
    /// migration added columns, would rebuild them away). Processes on this
    /// host migrating one database file therefore take turns under an
    /// exclusive lock on `<file>.migrate-lock`; whoever comes second finds the
    /// work done. An in-memory database has a single connection and needs none.
    async fn migrate(pool: &Pool<Sqlite>) -> Result<(), MigrateError> {
        let file = pool.connect_options().get_filename().to_path_buf();
        let in_memory = file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:");
        let _turn = if in_memory {
            None
        } else {
            let lock_path = file.with_extension("migrate-lock");
            let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                let lock = std::fs::File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)?;
                lock.lock()?;
                Ok(lock)
            })
            .await
            .map_err(|e| MigrateError::Source(Box::new(e)))?
            .map_err(|e| MigrateError::Source(Box::new(e)))?;
            Some(lock)
        };
        MIGRATOR.run(pool).await
    }
}

/// Opens (creating if missing, with its folder) the SQLite file a
/// `sqlite://PATH` or `sqlite:PATH` URL names. An in-memory database
/// (`sqlite::memory:`) gets a single connection that is never closed, since
/// each connection would otherwise see its own empty database.
pub(super) async fn connect(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory
        && let Some(folder) = options.get_filename().parent()
        && !folder.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(sqlx::Error::Io)?;
    }
    let pool = if in_memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
    };
    Ok(pool.connect_with(options).await?)
}
