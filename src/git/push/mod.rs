//! Delivering an execution's branch to the team's remote, from the host.
//!
//! The branch comes from the execution's bundle, verified and imported again
//! with every object checked, into a scratch repository that borrows the
//! tenant's mirror and ignores everything a repository could configure
//! ([`crate::git::scratch`]). From there it is pushed with the tenant's
//! credential ([`RemoteAuth`]), and optionally merged into an integration
//! branch. agentd never forces a push: a remote branch that does not lead to
//! the execution's commit is left as it is and the delivery is refused, so a
//! branch template that names someone else's branch (or two executions that
//! share a name) cannot destroy work.

mod auth;
mod merge;
mod remote;
mod retry;

use std::path::Path;

pub use auth::RemoteAuth;
pub use merge::Integration;
pub use retry::{Failure, RetryPolicy, backoff, classify};

use super::reach::Pinned;
use super::scratch::ScratchGit;
use super::verify::{VerifyError, import_bundle};
use crate::execution::DiffStats;
use remote::Attempt;

/// Where the branch goes and how agentd proves who it is there.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The repository's location, credential-free (a URL, or a local path for
    /// the local operator).
    pub location: String,
    /// The credential for it.
    pub auth: RemoteAuth,
    /// The vetted addresses a tenant's push is held to (`None`: not held).
    pub pinned: Option<Pinned>,
}

/// Who signs a merge commit agentd makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// One delivery: which branch of which bundle goes where.
#[derive(Debug, Clone)]
pub struct DeliveryJob<'a> {
    /// The tenant's mirror (holds the base commit and its history).
    pub mirror: &'a Path,
    /// The execution's bundle.
    pub bundle: &'a Path,
    /// The branch, named alike in the bundle and on the remote.
    pub branch: &'a str,
    /// The commit the work started from (for the diff's figures).
    pub base: &'a str,
    /// The remote to push to.
    pub remote: &'a Remote,
    /// The integration branch to merge the branch into, if any.
    pub merge_into: Option<&'a str>,
    /// The merge commit's author and committer.
    pub identity: &'a Identity,
    /// The merge commit's message.
    pub merge_message: &'a str,
    /// A directory agentd owns for the scratch repository; removed afterwards.
    pub scratch: &'a Path,
    /// Retries of transient failures.
    pub retry: &'a RetryPolicy,
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The branch's commit, now on the remote.
    pub commit: String,
    /// The remote already had the branch at this commit (a delivery retried).
    pub already_there: bool,
    /// What became of the merge into the integration branch, when asked.
    pub integration: Option<Integration>,
    /// Attempts made (transient failures retried).
    pub attempts: u32,
    /// What the branch changes against the base.
    pub stats: DiffStats,
}

/// Why a delivery did not land. Every message is free of the credential.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The bundle failed verification or its objects the integrity check.
    #[error("the branch failed verification: {0}")]
    Bundle(#[source] VerifyError),
    /// A local git step failed (the scratch repository, a merge, a timeout).
    #[error("{0}")]
    Step(#[source] VerifyError),
    /// A file of the scratch repository could not be written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The remote refused the credential, the permission or the host key;
    /// not retried.
    #[error("the remote refused agentd's credentials: {message}")]
    Auth { message: String },
    /// The remote could not be reached after every attempt.
    #[error("the remote could not be reached after {attempts} attempts: {message}")]
    Unreachable { message: String, attempts: u32 },
    /// The remote's branch exists and does not lead to this commit: agentd
    /// does not overwrite what it did not write.
    #[error("{message}")]
    Rejected { message: String },
    /// The remote kept moving the integration branch under the merge.
    #[error("the integration branch `{branch}` moved under every one of {attempts} merges")]
    Raced { branch: String, attempts: u32 },
    /// The remote failed otherwise.
    #[error("the push failed: {message}")]
    Failed { message: String },
}

/// Merges retried when a concurrent push moved the integration branch.
const MAX_RACES: u32 = 5;

/// Delivers `job`'s branch: imports and checks it, pushes it (and its merge
/// into the integration branch, atomically with it), retrying transient
/// failures. The scratch repository is removed whatever happens.
pub async fn deliver(job: &DeliveryJob<'_>) -> Result<Delivered, PushError> {
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|source| PushError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let (mirror, bundle, scratch) = (
        absolute(job.mirror)?,
        absolute(job.bundle)?,
        absolute(job.scratch)?,
    );
    let outcome = async {
        let mut git = ScratchGit::create(&scratch, &mirror, job.retry.command_timeout)
            .await
            .map_err(PushError::Step)?;
        let head = import_bundle(&git, &bundle, job.branch)
            .await
            .map_err(PushError::Bundle)?;
        let stats = remote::stats(&git, job.base, &head).await?;
        remote::prepare(&mut git, job.remote)?;
        let (mut attempts, mut races) = (0, 0);
        loop {
            attempts += 1;
            match remote::attempt(&git, job, &head).await {
                Ok(mut delivered) => {
                    delivered.attempts = attempts;
                    delivered.stats = stats;
                    return Ok(delivered);
                }
                Err(Attempt::Transient(message)) => {
                    if attempts >= job.retry.attempts {
                        return Err(PushError::Unreachable { message, attempts });
                    }
                    let pause = job.retry.pause(attempts);
                    let shown = without(&message, &job.remote.auth.secrets());
                    tracing::warn!(attempt = attempts, ?pause, message = %shown, "pushing: trying again");
                    tokio::time::sleep(pause).await;
                }
                Err(Attempt::Raced) => {
                    races += 1;
                    attempts -= 1;
                    if races >= MAX_RACES {
                        return Err(PushError::Raced {
                            branch: job.merge_into.unwrap_or(job.branch).to_string(),
                            attempts: races,
                        });
                    }
                    tracing::info!(races, "the remote moved under the push: fetching again");
                }
                Err(Attempt::Fatal(error)) => return Err(error),
            }
        }
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    outcome.map_err(|error| redact(error, &job.remote.auth.secrets()))
}

/// `text` with every secret replaced by `[redacted]`.
fn without(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_string(), |text, secret| {
        text.replace(secret.as_str(), "[redacted]")
    })
}

/// Takes every secret out of an error's message (git may quote what it sent).
fn redact(error: PushError, secrets: &[String]) -> PushError {
    let clean = |text: String| without(&text, secrets);
    match error {
        PushError::Auth { message } => PushError::Auth {
            message: clean(message),
        },
        PushError::Unreachable { message, attempts } => PushError::Unreachable {
            message: clean(message),
            attempts,
        },
        PushError::Rejected { message } => PushError::Rejected {
            message: clean(message),
        },
        PushError::Failed { message } => PushError::Failed {
            message: clean(message),
        },
        PushError::Step(VerifyError::Refused { step, message }) => {
            PushError::Step(VerifyError::Refused {
                step,
                message: clean(message),
            })
        }
        other => other,
    }
}

impl PushError {
    /// The delivery status this failure ends in: `rejected` (the remote's
    /// branch is someone else's), `auth_failed`, `unreachable`, `failed`.
    pub fn status(&self) -> &'static str {
        match self {
            PushError::Rejected { .. } => "rejected",
            PushError::Auth { .. } => "auth_failed",
            PushError::Unreachable { .. } => "unreachable",
            _ => "failed",
        }
    }
}

#[cfg(test)]
mod tests;
