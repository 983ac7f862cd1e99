//! Host-side git: where repositories come from, and the mirror cache that keeps
//! credentials out of the sandbox.

mod mirror;
pub mod push;
pub mod reach;
mod scratch;
mod source;
pub mod verify;

use std::path::Path;

pub use mirror::{Mirror, MirrorCache, ResolvedRef};
pub use source::RepoSource;
pub use verify::{ChangedPath, Verified, VerifyError, VerifyLimits, adopt_bundle, verify_bundle};

/// What can go wrong with a repository on the host.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository location given is not usable.
    #[error("repository `{input}` {reason}")]
    InvalidSource { input: String, reason: String },
    /// A ref that git would misread or reject.
    #[error("invalid git ref `{git_ref}`")]
    InvalidRef { git_ref: String },
    /// The ref exists neither in the mirror nor upstream.
    #[error("ref `{git_ref}` not found in the repository")]
    RefNotFound { git_ref: String },
    /// git could not be started (is it installed?).
    #[error("cannot run git: {source}")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    /// A git command failed.
    #[error("git {args} failed ({status}): {stderr}")]
    Command {
        args: String,
        status: i32,
        stderr: String,
    },
    /// A file-system operation on the mirror cache failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl GitError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        GitError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
