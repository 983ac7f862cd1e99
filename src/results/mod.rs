//! Where an execution's result files live so that every replica can hand
//! them out: the diff, the bundle, the artifacts, the transcript, the
//! cassette and the exported event log.
//!
//! - **local** (the default with SQLite): the files stay in the data
//!   directory of the process that collected them, and are served from there.
//! - **database** (the default with PostgreSQL): copied into the database in
//!   1 MiB chunks, streamed in and out, never held whole in memory.
//! - **S3** (`s3://bucket/prefix`): copied into an S3-compatible object store
//!   through `object_store` (endpoint and credentials from the standard
//!   `AWS_*` environment variables).
//!
//! The runner publishes what it collected before the final status is stored,
//! so a final execution's files are there for whoever asks; the API reads a
//! byte range of them.

mod database;
mod file;
mod local;
mod location;
mod objects;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::BoxStream;

pub use file::{ARTIFACTS, ResultFile};
pub use location::{LocationError, ResultsLocation};

/// What reading or writing results can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The database refused or failed.
    #[error("results in the database: {0}")]
    Database(#[from] sqlx::Error),
    /// The object store refused or failed.
    #[error("results in the object store: {0}")]
    Objects(#[from] object_store::Error),
    /// The configured location cannot be used.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The publisher no longer holds the execution: what it copied was
    /// thrown away, so the holder's copy stands.
    #[error("{file} not published: the execution is held by another replica now")]
    Fenced { file: String },
}

impl ResultsError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ResultsError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Asked just before a published file replaces what is stored: whether the
/// publisher still holds the execution. A replica that was paused past its
/// lease must not overwrite what the replica that took over published.
#[async_trait::async_trait]
pub trait Fence: Sync {
    /// True while the caller holds the execution.
    async fn still_held(&self) -> bool;
}

/// The fence of a publisher nobody can take the execution from: the one
/// that stored its final status, or a process alone with its results.
pub struct Unfenced;

#[async_trait::async_trait]
impl Fence for Unfenced {
    async fn still_held(&self) -> bool {
        true
    }
}

/// A stream of a result file's bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, ResultsError>>;

/// The result files of every execution, where the configuration puts them.
#[derive(Clone)]
pub struct Results {
    shelf: Shelf,
    executions: PathBuf,
}

#[derive(Clone)]
enum Shelf {
    Local,
    Database(database::Chunks),
    Objects(objects::Bucket),
}

impl Results {
    /// Results kept where `location` says; `executions` is the data
    /// directory's folder of execution folders (where they are collected, and
    /// where local results are served from); `database_url` is the store's
    /// (for `database`).
    pub async fn open(
        location: &ResultsLocation,
        executions: &Path,
        database_url: &str,
    ) -> Result<Results, ResultsError> {
        let shelf = match location {
            ResultsLocation::Local => Shelf::Local,
            ResultsLocation::Database => {
                Shelf::Database(database::Chunks::connect(database_url).await?)
            }
            ResultsLocation::S3 { bucket, prefix } => {
                Shelf::Objects(objects::Bucket::from_env(bucket, prefix)?)
            }
        };
        Ok(Results {
            shelf,
            executions: executions.to_path_buf(),
        })
    }

    /// Local results under `executions` (a local run, tests).
    pub fn local(executions: &Path) -> Results {
        Results {
            shelf: Shelf::Local,
            executions: executions.to_path_buf(),
        }
    }

    /// Whether the files are copied somewhere every replica reaches.
    pub fn is_shared(&self) -> bool {
        !matches!(self.shelf, Shelf::Local)
    }

    /// Where the collecting process keeps `file` of `execution` on its disk.
    pub fn local_path(&self, execution: &str, file: &ResultFile) -> PathBuf {
        file.local_path(&self.executions.join(execution))
    }

    /// Copies the collected `file` of `execution` (from this process's data
    /// directory) to the shared location, streaming. `fence` is asked last,
    /// before the copy replaces what is stored; when it says the execution
    /// is another's, the copy is dropped ([`ResultsError::Fenced`]). With
    /// local results there is nothing to copy.
    pub async fn publish(
        &self,
        execution: &str,
        file: &ResultFile,
        fence: &dyn Fence,
    ) -> Result<(), ResultsError> {
        let from = self.local_path(execution, file);
        let open = || async {
            local::open_regular(&from)
                .await
                .map_err(|e| ResultsError::io(&from, e))
        };
        let copied = match &self.shelf {
            Shelf::Local => return Ok(()),
            Shelf::Database(chunks) => {
                chunks
                    .put(execution, &file.key(), open().await?, fence)
                    .await
            }
            Shelf::Objects(bucket) => {
                bucket
                    .put(execution, &file.key(), open().await?, fence)
                    .await
            }
        };
        // Errors reading the file name it, not its key.
        copied.map(drop).map_err(|error| match error {
            ResultsError::Io { source, .. } => ResultsError::io(&from, source),
            other => other,
        })
    }

    /// The size of `file` of `execution`, or `None` where it is not kept.
    pub async fn size(
        &self,
        execution: &str,
        file: &ResultFile,
    ) -> Result<Option<u64>, ResultsError> {
        match &self.shelf {
            Shelf::Local => {
                let root = self.executions.join(execution);
                match local::confined(&root, file).await {
                    Some(path) => local::size(&path).await,
                    None => Ok(None),
                }
            }
            Shelf::Database(chunks) => chunks.size(execution, &file.key()).await,
            Shelf::Objects(bucket) => bucket.size(execution, &file.key()).await,
        }
    }

    /// The bytes `range` of `file` of `execution` (within its size, as
    /// [`Results::size`] answered), streamed.
    pub async fn read(
        &self,
        execution: &str,
        file: &ResultFile,
        range: Range<u64>,
    ) -> Result<ByteStream, ResultsError> {
        match &self.shelf {
            Shelf::Local => {
                let root = self.executions.join(execution);
                let path = local::confined(&root, file)
                    .await
                    .ok_or_else(|| ResultsError::io(&root, std::io::ErrorKind::NotFound.into()))?;
                local::read(&path, range).await
            }
            Shelf::Database(chunks) => Ok(chunks.read(execution, &file.key(), range)),
            Shelf::Objects(bucket) => bucket.read(execution, &file.key(), range).await,
        }
    }

    /// Copies `file` of `execution` into this process's data directory when
    /// it is not there (a replay of a cassette recorded on another replica);
    /// answers whether the file is there now.
    pub async fn fetch(&self, execution: &str, file: &ResultFile) -> Result<bool, ResultsError> {
        let dest = self.local_path(execution, file);
        let here = tokio::fs::try_exists(&dest).await.unwrap_or(false);
        if here || !self.is_shared() {
            return Ok(here);
        }
        let Some(size) = self.size(execution, file).await? else {
            return Ok(false);
        };
        let stream = self.read(execution, file, 0..size).await?;
        local::write(&dest, stream).await?;
        Ok(true)
    }
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shelf = match &self.shelf {
            Shelf::Local => "local",
            Shelf::Database(_) => "database",
            Shelf::Objects(_) => "s3",
        };
        f.debug_struct("Results").field("shelf", &shelf).finish()
    }
}
