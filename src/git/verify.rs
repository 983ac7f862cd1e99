//! Checking what the sandbox handed back, on the host, with agentd's own git.
//!
//! The sandbox returns its work as a bundle. Everything about that work that
//! agentd reports — the head commit, the files changed, the diff a reviewer
//! reads — is computed here from the bundle's objects after git has verified
//! them, in a scratch repository whose only configuration is agentd's: no
//! system or global config, no replace objects, no attributes (so no filter,
//! textconv or external diff can run), no hooks, no fsmonitor. What a reviewer
//! reads is then exactly what merging the branch brings.

use std::path::Path;
use std::time::Duration;

use super::scratch::{ScratchGit, io};

/// Limits for reading a bundle back.
#[derive(Debug, Clone, Copy)]
pub struct VerifyLimits {
    /// How long any one git command may take: 120 s.
    pub command_timeout: Duration,
    /// The most bytes of blobs the diff shows (binary patches grow by about a
    /// quarter); files beyond it stay in the bundle and are listed as left out
    /// of the diff: 128 MiB.
    pub max_diff_bytes: u64,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits {
            command_timeout: Duration::from_secs(120),
            max_diff_bytes: 128 << 20,
        }
    }
}

/// What can go wrong verifying a bundle.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    /// A git step failed: the bundle is damaged, incomplete or not what it claims.
    #[error("{step}: {message}")]
    Refused { step: &'static str, message: String },
    /// A git step ran out of time.
    #[error("{step} took longer than {seconds} s")]
    Timeout { step: &'static str, seconds: u64 },
    /// The scratch repository or the diff file could not be written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A path the branch changes, as git's raw diff names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedPath {
    /// Path in the repository (bytes not valid UTF-8 replaced).
    pub path: String,
    /// git's status letter: `A`, `M`, `D`, `T`.
    pub status: String,
    /// Size of the new content (0 when deleted).
    pub size: u64,
}

/// What the bundle holds, read and checked on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// The branch's commit, as the bundle carries it.
    pub head: String,
    /// Every path changed against the base.
    pub files: Vec<ChangedPath>,
    /// Paths changed but not shown in the diff (too large); they are in the bundle.
    pub left_out_of_diff: Vec<ChangedPath>,
    /// The branch does not descend from the base commit (history was rewritten).
    pub unrelated: bool,
    /// The diff was written (false when every change was too large to show).
    pub diff_written: bool,
}

/// Verifies `bundle` (whose prerequisite is `base`, present in `mirror`),
/// imports its `branch` with every object checked, and writes the diff of the
/// branch against `base` to `diff_out`. `scratch` is a directory agentd owns;
/// it is removed afterwards.
pub async fn verify_bundle(
    mirror: &Path,
    bundle: &Path,
    branch: &str,
    base: &str,
    scratch: &Path,
    diff_out: &Path,
    limits: &VerifyLimits,
) -> Result<Verified, VerifyError> {
    let absolute = |path: &Path| std::path::absolute(path).map_err(|source| io(path, source));
    let (mirror, bundle, scratch, diff_out) = (
        absolute(mirror)?,
        absolute(bundle)?,
        absolute(scratch)?,
        absolute(diff_out)?,
    );
    let scratch = scratch.as_path();
    let git = ScratchGit::create(scratch, &mirror, limits.command_timeout).await?;
    let outcome = read_back(&git, &bundle, branch, base, &diff_out, limits).await;
    let _ = tokio::fs::remove_dir_all(scratch).await;
    outcome
}

/// Verifies `bundle` and imports its `branch` into the scratch repository as
/// `refs/heads/result`, every object checked (`fsck`); answers the branch's
/// commit. Delivery imports a stored bundle again the same way.
pub(crate) async fn import_bundle(
    git: &ScratchGit,
    bundle: &Path,
    branch: &str,
) -> Result<String, VerifyError> {
    let bundle = bundle.display().to_string();
    git.run("bundle verify", &["bundle", "verify", "--quiet", &bundle])
        .await?;
    let refspec = format!("refs/heads/{branch}:refs/heads/result");
    git.run(
        "importing the bundle",
        &[
            "-c",
            "fetch.fsckObjects=true",
            "-c",
            "transfer.fsckObjects=true",
            "-c",
            "protocol.file.allow=always",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &bundle,
            &refspec,
        ],
    )
    .await?;
    let head = git
        .run(
            "reading the branch",
            &["rev-parse", "--verify", "refs/heads/result^{commit}"],
        )
        .await?;
    Ok(String::from_utf8_lossy(&head).trim().to_string())
}

/// Imports `branch` of a stored `bundle` — checked again as at collection
/// (`bundle verify`, every object through `fsck`) — into `mirror` as ref
/// `target`, so a follow-up's sandbox, cloning the mirror, can start from
/// it; answers the branch's commit. `scratch` is agentd's own folder, removed
/// afterwards.
pub async fn adopt_bundle(
    mirror: &Path,
    bundle: &Path,
    branch: &str,
    target: &str,
    scratch: &Path,
    timeout: Duration,
) -> Result<String, VerifyError> {
    let absolute = |path: &Path| std::path::absolute(path).map_err(|source| io(path, source));
    let (mirror, bundle, scratch) = (absolute(mirror)?, absolute(bundle)?, absolute(scratch)?);
    let outcome = async {
        let mut git = ScratchGit::create(&scratch, &mirror, timeout).await?;
        let head = import_bundle(&git, &bundle, branch).await?;
        git.configure(["protocol.file.allow=always".to_string()]);
        let refspec = format!("+refs/heads/result:{target}");
        git.run(
            "adding the branch to the mirror",
            &[
                "push",
                "--quiet",
                "--no-verify",
                &mirror.display().to_string(),
                &refspec,
            ],
        )
        .await?;
        Ok(head)
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    outcome
}

/// Most paths the diff leaves out by name; beyond it no diff is written (every
/// change stays in the bundle and is listed as left out of the diff).
const MAX_EXCLUDED: usize = 4096;

async fn read_back(
    git: &ScratchGit,
    bundle: &Path,
    branch: &str,
    base: &str,
    diff_out: &Path,
    limits: &VerifyLimits,
) -> Result<Verified, VerifyError> {
    let head = import_bundle(git, bundle, branch).await?;
    let unrelated = !git
        .succeeds(&["merge-base", "--is-ancestor", base, &head])
        .await?;
    let raw = git
        .run(
            "listing the changes",
            &[
                "diff-tree",
                "-r",
                "-z",
                "--no-renames",
                "--raw",
                base,
                &head,
            ],
        )
        .await?;
    let mut files = parse_raw(&raw);
    let sizes = git.blob_sizes(&files).await?;
    for (file, size) in files.iter_mut().zip(sizes) {
        file.0.size = size;
    }
    let (shown, mut left_out) = split_for_diff(&files, limits.max_diff_bytes);
    if left_out.len() > MAX_EXCLUDED {
        left_out = files.iter().map(|(file, _)| file.clone()).collect();
    }
    let shown = if left_out.len() == files.len() {
        Vec::new()
    } else {
        shown
    };
    let mut args: Vec<String> = [
        "diff",
        "--binary",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--ignore-submodules=none",
        base,
        &head,
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(":/".into());
    for file in &left_out {
        args.push(format!(":(exclude,literal,top){}", file.path));
    }
    let diff_written = !shown.is_empty() || files.is_empty();
    if diff_written {
        git.run_to_file("writing the diff", &args, diff_out).await?;
    }
    Ok(Verified {
        head,
        files: files.into_iter().map(|(file, _)| file).collect(),
        left_out_of_diff: left_out,
        unrelated,
        diff_written,
    })
}

/// Splits the changed files into those the diff shows (in path order, while the
/// blobs' total stays under `max_bytes`) and those left out of it.
fn split_for_diff(
    files: &[(ChangedPath, Option<String>)],
    max_bytes: u64,
) -> (Vec<ChangedPath>, Vec<ChangedPath>) {
    let mut total = 0u64;
    let mut shown = Vec::new();
    let mut left_out = Vec::new();
    for (file, _) in files {
        let cost = file.size.saturating_add(256);
        if total.saturating_add(cost) <= max_bytes {
            total += cost;
            shown.push(file.clone());
        } else {
            left_out.push(file.clone());
        }
    }
    (shown, left_out)
}

/// Parses `git diff-tree -r -z --raw`: `:old new oldsha newsha status NUL path NUL`.
/// Returns each path with its new blob id (None when deleted).
fn parse_raw(raw: &[u8]) -> Vec<(ChangedPath, Option<String>)> {
    let mut fields = raw.split(|b| *b == 0);
    let mut files = Vec::new();
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            continue;
        }
        let Some(path) = fields.next() else { break };
        let meta = String::from_utf8_lossy(meta);
        let parts: Vec<&str> = meta.trim_start_matches(':').split_whitespace().collect();
        if parts.len() < 5 {
            continue;
        }
        let new_blob = parts[3];
        let status: String = parts[4].chars().take(1).collect();
        let blob = (status != "D" && !new_blob.bytes().all(|b| b == b'0') && parts[1] != "160000")
            .then(|| new_blob.to_string());
        files.push((
            ChangedPath {
                path: String::from_utf8_lossy(path).into_owned(),
                status,
                size: 0,
            },
            blob,
        ));
    }
    files
}

#[cfg(test)]
mod tests;
