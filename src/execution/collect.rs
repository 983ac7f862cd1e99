//! Bringing results out of a sandbox: the driver's output folder (diff, bundle,
//! changed files) and the artifacts folder, each as a tar download unpacked by
//! the hostile-input-safe unpacker.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::engine::archive::{self, UnpackLimits, Unpacked};
use crate::engine::{Engine, EngineError};
use crate::execution::driver::{ARTIFACTS_DIR, OUTPUT_DIR};
use crate::execution::layout::ExecutionDir;
use crate::execution::summary::{Artifact, ChangedFile, RefusedEntry};

/// What can go wrong collecting.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The download failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The archive could not be unpacked at all.
    #[error("unpacking {what}: {source}")]
    Unpack {
        what: &'static str,
        #[source]
        source: archive::ArchiveError,
    },
    /// Moving results into place failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The blocking unpack task died.
    #[error("the unpack task failed: {0}")]
    Task(String),
}

/// The driver's output, moved into the execution's folder.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The driver finished collecting (its `done` marker was there).
    pub complete: bool,
    /// The diff, if written.
    pub diff: Option<PathBuf>,
    /// The bundle, if the branch had commits.
    pub bundle: Option<PathBuf>,
    /// The commit holding the changes.
    pub head: Option<String>,
    /// Files changed against the base.
    pub files: Vec<ChangedFile>,
    /// Entries refused while unpacking.
    pub refused: Vec<RefusedEntry>,
}

/// The artifacts, unpacked into the execution's folder.
#[derive(Debug, Clone, Default)]
pub struct Artifacts {
    /// Files that arrived.
    pub files: Vec<Artifact>,
    /// Entries refused.
    pub refused: Vec<RefusedEntry>,
}

/// Limits for the driver's output folder: the diff and bundle may be large, but
/// not unbounded (a full disk is the classic failure of agent runners).
pub fn output_limits() -> UnpackLimits {
    UnpackLimits {
        max_entry_bytes: 2 << 30,
        max_total_bytes: 4 << 30,
        max_entries: 32,
    }
}

/// Downloads the driver's output folder from `container` into `dir`.
pub async fn outputs(
    engine: &Engine,
    container: &str,
    dir: &ExecutionDir,
) -> Result<Outputs, CollectError> {
    let staging = dir.staging();
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let Some(unpacked) = download_into(
        engine,
        container,
        OUTPUT_DIR,
        &staging,
        output_limits(),
        "outputs",
    )
    .await?
    else {
        return Ok(Outputs::default());
    };
    let mut outputs = Outputs {
        complete: staging.join("done").exists(),
        refused: refused(&unpacked),
        ..Default::default()
    };
    if let Some(path) = move_if_present(&staging.join("changes.diff"), &dir.diff()).await? {
        outputs.diff = Some(path);
    }
    if let Some(path) = move_if_present(&staging.join("branch.bundle"), &dir.bundle()).await? {
        outputs.bundle = Some(path);
    }
    if let Ok(head) = tokio::fs::read_to_string(staging.join("head")).await {
        let head = head.trim();
        if head.len() >= 40 && head.chars().all(|c| c.is_ascii_hexdigit()) {
            outputs.head = Some(head.to_string());
        }
    }
    if let Ok(files) = tokio::fs::read(staging.join("files")).await {
        outputs.files = parse_name_status(&files);
    }
    let _ = tokio::fs::remove_dir_all(&staging).await;
    Ok(outputs)
}

/// Downloads the artifacts folder from `container` into `dir` (replacing what a
/// previous, interrupted collection left).
pub async fn artifacts(
    engine: &Engine,
    container: &str,
    dir: &ExecutionDir,
    max_total_bytes: u64,
) -> Result<Artifacts, CollectError> {
    let limits = UnpackLimits {
        max_total_bytes,
        max_entry_bytes: UnpackLimits::default().max_entry_bytes.min(max_total_bytes),
        ..UnpackLimits::default()
    };
    let target = dir.artifacts();
    // A collection cut short (a supervisor restart) starts over.
    let _ = tokio::fs::remove_dir_all(&target).await;
    let Some(unpacked) = download_into(
        engine,
        container,
        ARTIFACTS_DIR,
        &target,
        limits,
        "artifacts",
    )
    .await?
    else {
        return Ok(Artifacts::default());
    };
    Ok(Artifacts {
        files: unpacked
            .files
            .iter()
            .map(|file| Artifact {
                path: file.path.clone(),
                size: file.size,
                sha256: file.sha256.clone(),
            })
            .collect(),
        refused: refused(&unpacked),
    })
}

fn refused(unpacked: &Unpacked) -> Vec<RefusedEntry> {
    unpacked
        .refused
        .iter()
        .map(|entry| RefusedEntry {
            path: entry.path.clone(),
            reason: entry.reason.clone(),
        })
        .collect()
}

/// Streams `path` out of the container and unpacks it below `dest`, dropping
/// the archive's top folder. `None` when the path does not exist in the sandbox.
async fn download_into(
    engine: &Engine,
    container: &str,
    path: &str,
    dest: &Path,
    limits: UnpackLimits,
    what: &'static str,
) -> Result<Option<Unpacked>, CollectError> {
    let mut stream = Box::pin(engine.download(container, path));
    let first = match stream.next().await {
        None => return Ok(Some(Unpacked::default())),
        Some(Err(error)) if error.is_not_found() => return Ok(None),
        Some(Err(error)) => return Err(error.into()),
        Some(Ok(bytes)) => bytes,
    };
    let body = futures::stream::iter([Ok(first)])
        .chain(stream)
        .map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(body));
    let dest = dest.to_path_buf();
    let unpacked = tokio::task::spawn_blocking(move || archive::unpack(reader, &dest, 1, &limits))
        .await
        .map_err(|e| CollectError::Task(e.to_string()))?
        .map_err(|source| CollectError::Unpack { what, source })?;
    Ok(Some(unpacked))
}

async fn move_if_present(from: &Path, to: &Path) -> Result<Option<PathBuf>, CollectError> {
    match tokio::fs::symlink_metadata(from).await {
        Ok(meta) if meta.is_file() => {
            tokio::fs::rename(from, to)
                .await
                .map_err(|source| CollectError::Io {
                    path: to.display().to_string(),
                    source,
                })?;
            Ok(Some(to.to_path_buf()))
        }
        _ => Ok(None),
    }
}

/// Parses `git diff --name-status -z` output: `status NUL path NUL …`.
pub fn parse_name_status(raw: &[u8]) -> Vec<ChangedFile> {
    let mut fields = raw.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut files = Vec::new();
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        let change = String::from_utf8_lossy(status);
        files.push(ChangedFile {
            path: String::from_utf8_lossy(path).into_owned(),
            change: change.chars().next().map(String::from).unwrap_or_default(),
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nul_separated_name_status() {
        let files = parse_name_status(b"A\0new file.txt\0M\0README.md\0D\0gone\0");
        assert_eq!(
            files,
            vec![
                ChangedFile {
                    path: "new file.txt".into(),
                    change: "A".into()
                },
                ChangedFile {
                    path: "README.md".into(),
                    change: "M".into()
                },
                ChangedFile {
                    path: "gone".into(),
                    change: "D".into()
                },
            ]
        );
        assert!(parse_name_status(b"").is_empty());
        assert_eq!(parse_name_status(b"M\0").len(), 0);
    }
}
