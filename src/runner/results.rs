//! Bringing results out of a sandbox: the driver's output folder (diff, bundle,
//! changed files) and the artifacts folder, each as a tar download unpacked by
//! the hostile-input-safe unpacker.

use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::agent::claude::session::{MAX_SESSION_BYTES, SESSIONS_DIR, transcript_path};
use crate::engine::archive::{self, UnpackLimits, Unpacked};
use crate::engine::{Engine, EngineError};
use crate::execution::{Artifact, ChangedFile, LeftOut, RefusedEntry};
use crate::git::{VerifyLimits, verify_bundle};
use crate::runner::driver::{ARTIFACTS_DIR, OUTPUT_DIR};
use crate::runner::layout::ExecutionDir;

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

/// The driver's output, checked on the host and moved into the execution's folder.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The driver finished collecting (its `done` marker was there).
    pub complete: bool,
    /// The diff, if written (computed on the host from the verified bundle).
    pub diff: Option<PathBuf>,
    /// The bundle, if the branch had commits and it passed verification.
    pub bundle: Option<PathBuf>,
    /// The commit holding the changes (from the verified bundle, or the base).
    pub head: Option<String>,
    /// Files changed against the base (from the verified bundle).
    pub files: Vec<ChangedFile>,
    /// Files not brought back whole.
    pub left_out: Vec<LeftOut>,
    /// Entries refused while unpacking.
    pub refused: Vec<RefusedEntry>,
    /// Why the work could not be brought back, when it could not.
    pub error: Option<String>,
    /// Things worth telling about the work brought back.
    pub notes: Vec<String>,
}

/// The artifacts, unpacked into the execution's folder.
#[derive(Debug, Clone, Default)]
pub struct Artifacts {
    /// Files that arrived.
    pub files: Vec<Artifact>,
    /// Entries refused.
    pub refused: Vec<RefusedEntry>,
}

/// Where a collection puts its checked results, and what it checks them against.
pub struct Destination<'a> {
    /// The execution's folder.
    pub dir: &'a ExecutionDir,
    /// The repository's mirror (holds the base commit).
    pub mirror: &'a Path,
    /// The commit the execution started from.
    pub base: &'a str,
    /// The branch the bundle must carry.
    pub branch: &'a str,
    /// Limits for reading the bundle back.
    pub limits: &'a VerifyLimits,
}

/// Limits for the driver's output folder: the bundle may be large, but not
/// unbounded (a full disk is the classic failure of agent runners).
pub fn output_limits() -> UnpackLimits {
    UnpackLimits {
        max_entry_bytes: 2 << 30,
        max_total_bytes: 4 << 30,
        max_entries: 32,
    }
}

/// Most entries read from the sandbox's list of files left out.
const MAX_LEFT_OUT: usize = 1000;

/// Downloads the driver's output folder from `container`, verifies the bundle
/// on the host and computes the changed files and the diff from it.
pub async fn outputs(
    engine: &Engine,
    container: &str,
    to: &Destination<'_>,
) -> Result<Outputs, CollectError> {
    let dir = to.dir;
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
    if let Ok(raw) = tokio::fs::read(staging.join("left-out")).await {
        outputs.left_out = parse_left_out(&raw);
    }
    let claimed_head = tokio::fs::read_to_string(staging.join("head"))
        .await
        .ok()
        .map(|head| head.trim().to_string())
        .filter(|head| head.len() == 40 && head.bytes().all(|b| b.is_ascii_hexdigit()));
    let _ = tokio::fs::remove_file(dir.diff()).await;
    let _ = tokio::fs::remove_file(dir.bundle()).await;
    let bundle = move_if_present(&staging.join("branch.bundle"), &dir.bundle()).await?;
    match (bundle, claimed_head) {
        (Some(bundle), _) => {
            let verified = verify_bundle(
                to.mirror,
                &bundle,
                to.branch,
                to.base,
                &dir.verify_scratch(),
                &dir.diff(),
                to.limits,
            )
            .await;
            match verified {
                Ok(verified) => {
                    outputs.head = Some(verified.head);
                    outputs.files = verified
                        .files
                        .iter()
                        .map(|file| ChangedFile {
                            path: file.path.clone(),
                            change: file.status.clone(),
                        })
                        .collect();
                    outputs
                        .left_out
                        .extend(verified.left_out_of_diff.iter().map(|file| LeftOut {
                            path: file.path.clone(),
                            size: file.size,
                            reason: "too_large_for_diff".into(),
                        }));
                    outputs.diff = verified.diff_written.then(|| dir.diff());
                    outputs.bundle = Some(bundle);
                    if verified.unrelated {
                        outputs.notes.push(
                            "the branch does not descend from the base commit (its history \
                             was rewritten); the diff compares the two trees"
                                .into(),
                        );
                    }
                }
                Err(error) => {
                    let _ = tokio::fs::remove_file(&bundle).await;
                    outputs.error = Some(format!(
                        "the branch handed back failed verification: {error}"
                    ));
                }
            }
        }
        (None, Some(head)) if head == to.base => {
            outputs.head = Some(head);
            tokio::fs::write(dir.diff(), b"")
                .await
                .map_err(|source| CollectError::Io {
                    path: dir.diff().display().to_string(),
                    source,
                })?;
            outputs.diff = Some(dir.diff());
        }
        (None, Some(_)) => {
            outputs.error = Some("the sandbox reported commits but handed back no bundle".into());
        }
        (None, None) => {}
    }
    let _ = tokio::fs::remove_dir_all(&staging).await;
    Ok(outputs)
}

/// What became of the agent's session transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKept {
    /// Kept (redacted) for follow-ups: its size in bytes.
    Kept(u64),
    /// The sandbox held no transcript of the session.
    Missing,
    /// Larger than [`MAX_SESSION_BYTES`]: not kept.
    TooLarge,
}

/// Downloads the sessions folder from `container` and keeps the transcript
/// of session `id` (the one agentd named the CLI's) as `dir`'s session file,
/// passed through `redact` like every stored text. Anything else the folder
/// holds is dropped; hostile entries are refused by the unpacker.
pub async fn session(
    engine: &Engine,
    container: &str,
    dir: &ExecutionDir,
    id: &str,
    redact: impl Fn(&str) -> String,
) -> Result<SessionKept, CollectError> {
    let staging = dir.root().join(".sessions");
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let limits = UnpackLimits {
        max_entry_bytes: MAX_SESSION_BYTES,
        max_total_bytes: 4 * MAX_SESSION_BYTES,
        max_entries: 256,
    };
    let unpacked = download_into(
        engine,
        container,
        SESSIONS_DIR,
        &staging,
        limits,
        "sessions",
    )
    .await;
    let outcome = async {
        let Some(unpacked) = unpacked? else {
            return Ok(SessionKept::Missing);
        };
        let wanted = format!("{id}.jsonl");
        let too_large = unpacked
            .refused
            .iter()
            .any(|refused| refused.path.ends_with(&wanted));
        let Some(path) = transcript_path(unpacked.files.iter().map(|f| f.path.as_str()), id) else {
            return Ok(if too_large {
                SessionKept::TooLarge
            } else {
                SessionKept::Missing
            });
        };
        let source = staging.join(path);
        let io = |source| CollectError::Io {
            path: path.to_string(),
            source,
        };
        let raw = tokio::fs::read(&source).await.map_err(io)?;
        let text = redact(&String::from_utf8_lossy(&raw));
        tokio::fs::write(dir.session(), text.as_bytes())
            .await
            .map_err(io)?;
        Ok(SessionKept::Kept(text.len() as u64))
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    outcome
}

/// Parses the driver's `left-out` list: `size TAB path NUL` per file.
pub fn parse_left_out(raw: &[u8]) -> Vec<LeftOut> {
    raw.split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .take(MAX_LEFT_OUT)
        .filter_map(|entry| {
            let tab = entry.iter().position(|b| *b == b'\t')?;
            let size = std::str::from_utf8(&entry[..tab]).ok()?.parse().ok()?;
            Some(LeftOut {
                path: String::from_utf8_lossy(&entry[tab + 1..]).into_owned(),
                size,
                reason: "too_large".into(),
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_out_lists_are_read_defensively() {
        let files = parse_left_out(b"167772160\thuge.bin\0bad-entry\0x\tnot-a-size\x0012\ta\nb\0");
        assert_eq!(
            files,
            vec![
                LeftOut {
                    path: "huge.bin".into(),
                    size: 167772160,
                    reason: "too_large".into()
                },
                LeftOut {
                    path: "a\nb".into(),
                    size: 12,
                    reason: "too_large".into()
                },
            ]
        );
        let many: Vec<u8> = (0..5000)
            .flat_map(|i| format!("1\tf{i}\0").into_bytes())
            .collect();
        assert_eq!(parse_left_out(&many).len(), MAX_LEFT_OUT);
    }
}
