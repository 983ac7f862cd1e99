//! Result files in PostgreSQL: one row per file (its size) and its bytes in
//! 1 MiB chunks, written in one transaction a chunk at a time and read back a
//! chunk at a time, so no file is ever held whole in memory.

use std::ops::Range;
use std::path::Path;

use futures::StreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use tokio::io::AsyncReadExt;

use super::{ByteStream, Fence, ResultsError};

/// Bytes per stored chunk.
pub(super) const CHUNK: u64 = 1 << 20;
/// Connections downloads may hold at once, beside the store's.
const READERS: u32 = 4;
/// Connections uploads may hold (each for a whole file).
const WRITERS: u32 = 2;

/// The chunk tables of the store's database.
#[derive(Clone)]
pub(super) struct Chunks {
    /// For downloads: a chunk per query.
    reads: PgPool,
    /// For uploads, apart: however many downloads run, an execution's
    /// results are still published (else they stay on one replica).
    writes: PgPool,
}

impl Chunks {
    /// Two small pools on the store's database (the store migrated the
    /// tables); both connect when first needed.
    pub(super) async fn connect(url: &str) -> Result<Chunks, ResultsError> {
        let reads = PgPoolOptions::new()
            .max_connections(READERS)
            .connect_lazy(url)?;
        let writes = PgPoolOptions::new()
            .max_connections(WRITERS)
            .connect_lazy(url)?;
        Ok(Chunks { reads, writes })
    }

    /// Stores `file` as `name` of `execution`, replacing any earlier copy;
    /// answers its size.
    pub(super) async fn put(
        &self,
        execution: &str,
        name: &str,
        mut file: tokio::fs::File,
        fence: &dyn Fence,
    ) -> Result<u64, ResultsError> {
        let mut tx = self.writes.begin().await?;
        sqlx::query("DELETE FROM result_files WHERE execution_id = $1 AND name = $2")
            .bind(execution)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO result_files (execution_id, name, size, created_at) \
             VALUES ($1, $2, 0, now())",
        )
        .bind(execution)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let mut size = 0u64;
        let mut seq = 0i64;
        let mut buffer = Vec::with_capacity(CHUNK as usize);
        loop {
            buffer.clear();
            let read = (&mut file)
                .take(CHUNK)
                .read_to_end(&mut buffer)
                .await
                .map_err(|e| ResultsError::io(Path::new(name), e))?;
            if read == 0 {
                break;
            }
            sqlx::query(
                "INSERT INTO result_chunks (execution_id, name, seq, data) VALUES ($1, $2, $3, $4)",
            )
            .bind(execution)
            .bind(name)
            .bind(seq)
            .bind(&buffer[..])
            .execute(&mut *tx)
            .await?;
            size += read as u64;
            seq += 1;
        }
        sqlx::query("UPDATE result_files SET size = $3 WHERE execution_id = $1 AND name = $2")
            .bind(execution)
            .bind(name)
            .bind(size as i64)
            .execute(&mut *tx)
            .await?;
        if !fence.still_held().await {
            tx.rollback().await?;
            return Err(ResultsError::Fenced {
                file: name.to_string(),
            });
        }
        tx.commit().await?;
        Ok(size)
    }

    /// The stored size of `name`, if stored.
    pub(super) async fn size(
        &self,
        execution: &str,
        name: &str,
    ) -> Result<Option<u64>, ResultsError> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT size FROM result_files WHERE execution_id = $1 AND name = $2",
        )
        .bind(execution)
        .bind(name)
        .fetch_optional(&self.reads)
        .await?;
        Ok(size.map(|size| size.max(0) as u64))
    }

    /// The bytes `range` of `name`, a chunk per query.
    pub(super) fn read(&self, execution: &str, name: &str, range: Range<u64>) -> ByteStream {
        let pool = self.reads.clone();
        let (execution, name) = (execution.to_string(), name.to_string());
        futures::stream::unfold(range.start, move |at| {
            let (pool, execution, name) = (pool.clone(), execution.clone(), name.clone());
            let end = range.end;
            async move {
                if at >= end {
                    return None;
                }
                let seq = at / CHUNK;
                let offset = at % CHUNK;
                // Only the part of the chunk that is wanted leaves the database.
                let length = (CHUNK - offset).min(end - at);
                let read = sqlx::query_scalar::<_, Vec<u8>>(
                    "SELECT substring(data FROM $4::integer FOR $5::integer) FROM result_chunks \
                     WHERE execution_id = $1 AND name = $2 AND seq = $3",
                )
                .bind(&execution)
                .bind(&name)
                .bind(seq as i64)
                .bind(offset as i64 + 1)
                .bind(length as i64)
                .fetch_optional(&pool)
                .await;
                match read {
                    Ok(Some(bytes)) if !bytes.is_empty() => {
                        let next = at + bytes.len() as u64;
                        Some((Ok(bytes::Bytes::from(bytes)), next))
                    }
                    Ok(_) => Some((Err(ResultsError::Database(sqlx::Error::RowNotFound)), end)),
                    Err(error) => Some((Err(error.into()), end)),
                }
            }
        })
        .boxed()
    }
}
