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

    const CLAIM: &'static str = queries::CLAIM_SINGLE_WRITER;

    fn to_time(at: DateTime<Utc>) -> String {
        at.format(TIME_FORMAT).to_string()
    }

    fn from_time(stored: String) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(&stored)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| format!("`{stored}`: {err}"))
    }

    /// SQLite migrations take no lock, so two processes starting at once may
    /// race; the loser fails and, on a second look, finds the work done.
    async fn migrate(pool: &Pool<Sqlite>) -> Result<(), MigrateError> {
        let mut attempts = 0;
        loop {
            match MIGRATOR.run(pool).await {
                Ok(()) => return Ok(()),
                Err(err) if attempts >= 3 => return Err(err),
                Err(err) => {
                    tracing::debug!(error = %err, "retrying SQLite migration");
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempts)).await;
                }
            }
        }
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
