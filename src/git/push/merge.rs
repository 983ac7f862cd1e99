//! Merging the delivered branch into an integration branch, on the host,
//! without a work tree: `git merge-tree` computes the merge from objects
//! alone (no checkout, so no filter, hook or attribute of the repository can
//! run), `git commit-tree` records it.

use std::process::Stdio;

use super::{DeliveryJob, PushError};
use crate::git::scratch::ScratchGit;
use crate::git::verify::VerifyError;

/// What became of the merge into the integration branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integration {
    /// The integration branch now holds the work.
    Merged {
        /// The integration branch.
        branch: String,
        /// Its commit after the merge.
        commit: String,
        /// Moved forward to the branch's commit (no merge commit needed).
        fast_forward: bool,
        /// It held the work already; nothing was pushed to it.
        up_to_date: bool,
    },
    /// The work conflicts with the integration branch: it was left as it was.
    Conflict {
        /// The integration branch.
        branch: String,
        /// Paths both sides changed in ways git could not merge.
        paths: Vec<String>,
    },
}

/// Merges `head` into the integration branch `name`, whose remote commit
/// is `current` (fetched as `refs/agentd/integration`; `None` when the remote
/// has no such branch yet, which is then created at `head`).
pub(super) async fn integrate(
    git: &ScratchGit,
    job: &DeliveryJob<'_>,
    name: &str,
    current: Option<&str>,
    head: &str,
) -> Result<Integration, PushError> {
    let merged = |commit: &str, fast_forward, up_to_date| Integration::Merged {
        branch: name.to_string(),
        commit: commit.to_string(),
        fast_forward,
        up_to_date,
    };
    let Some(current) = current else {
        return Ok(merged(head, true, false));
    };
    let ancestor = |a: &str, b: &str| {
        let (a, b) = (a.to_string(), b.to_string());
        async move {
            git.succeeds(&["merge-base", "--is-ancestor", &a, &b])
                .await
                .map_err(PushError::Step)
        }
    };
    if ancestor(head, current).await? {
        return Ok(merged(current, false, true));
    }
    if ancestor(current, head).await? {
        return Ok(merged(head, true, false));
    }
    let step = "merging into the integration branch";
    let mut command = git.command(&[
        "merge-tree",
        "--write-tree",
        "--name-only",
        "--no-messages",
        "-z",
        current,
        head,
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = git.output(step, command).await.map_err(PushError::Step)?;
    let mut fields = output
        .stdout
        .split(|byte| *byte == 0)
        .map(|field| String::from_utf8_lossy(field).into_owned());
    let tree = fields.next().unwrap_or_default();
    match output.status.code() {
        Some(0) => {}
        Some(1) => {
            let mut paths: Vec<String> = fields.filter(|path| !path.is_empty()).collect();
            paths.dedup();
            return Ok(Integration::Conflict {
                branch: name.to_string(),
                paths,
            });
        }
        _ => {
            return Err(PushError::Step(VerifyError::Refused {
                step,
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            }));
        }
    }
    let step = "recording the merge";
    let mut command = git.command(&[
        "commit-tree",
        tree.trim(),
        "-p",
        current,
        "-p",
        head,
        "-m",
        job.merge_message,
    ]);
    for role in ["AUTHOR", "COMMITTER"] {
        command
            .env(format!("GIT_{role}_NAME"), &job.identity.name)
            .env(format!("GIT_{role}_EMAIL"), &job.identity.email);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = git.output(step, command).await.map_err(PushError::Step)?;
    if !output.status.success() {
        return Err(PushError::Step(VerifyError::Refused {
            step,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        }));
    }
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(merged(&commit, false, false))
}
