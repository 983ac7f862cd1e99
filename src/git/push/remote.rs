//! One attempt at a delivery: what the remote has, what may be pushed over
//! it, the push.

use std::collections::HashMap;

use super::merge::{self, Integration};
use super::retry::{Failure, classify};
use super::{Delivered, DeliveryJob, PushError, Remote};
use crate::execution::DiffStats;
use crate::git::scratch::ScratchGit;
use crate::git::verify::VerifyError;
use crate::tenancy::Location;

/// How one attempt ended, short of success.
pub(super) enum Attempt {
    /// Worth trying again after a pause.
    Transient(String),
    /// A ref moved between reading and pushing: read again at once.
    Raced,
    /// Over.
    Fatal(PushError),
}

impl From<PushError> for Attempt {
    fn from(error: PushError) -> Self {
        Attempt::Fatal(error)
    }
}

/// Sets up the scratch repository to talk to `remote` and nothing else: its
/// transport alone allowed, held to its vetted addresses, its credential.
pub(super) fn prepare(git: &mut ScratchGit, remote: &Remote) -> Result<(), PushError> {
    let protocol = match crate::tenancy::locate(&remote.location) {
        Location::Local(_) => "file".to_string(),
        Location::Network { scheme, .. } => scheme,
    };
    git.configure([
        format!("protocol.{protocol}.allow=always"),
        // A redirect would carry the credential's header elsewhere.
        "http.followRedirects=false".into(),
        "http.lowSpeedLimit=1000".into(),
        "http.lowSpeedTime=60".into(),
        "transfer.fsckObjects=true".into(),
        "fetch.fsckObjects=true".into(),
        "push.useBitmaps=false".into(),
        "push.recurseSubmodules=no".into(),
        "submodule.recurse=false".into(),
    ]);
    let mut pinned_ssh = None;
    if let Some(pinned) = &remote.pinned {
        if pinned.scheme == "ssh" {
            // Host keys are looked up as the URL names the host (with its
            // port, as known_hosts writes a port other than 22).
            let host = pinned.host.trim_start_matches('[').trim_end_matches(']');
            let alias = if pinned.port == 22 {
                host.to_string()
            } else {
                format!("[{host}]:{}", pinned.port)
            };
            pinned_ssh = pinned
                .addresses
                .first()
                .map(|address| (address.ip().to_string(), alias));
        } else {
            git.configure(pinned.git_config());
        }
    }
    remote.auth.apply(
        git,
        pinned_ssh
            .as_ref()
            .map(|(address, host)| (address.as_str(), host.as_str())),
    )
}

/// Reads the remote's branches, decides what to push, pushes.
pub(super) async fn attempt(
    git: &ScratchGit,
    job: &DeliveryJob<'_>,
    head: &str,
) -> Result<Delivered, Attempt> {
    let location = job.remote.location.as_str();
    let branch_ref = format!("refs/heads/{}", job.branch);
    let integration_ref = job.merge_into.map(|name| format!("refs/heads/{name}"));
    let mut patterns = vec![branch_ref.as_str()];
    patterns.extend(integration_ref.as_deref());
    let remote_refs = list(git, location, &patterns).await?;

    let already_there = match remote_refs.get(&branch_ref) {
        None => false,
        Some(old) if old == head => true,
        Some(old) => {
            if !leads_to(git, old, head).await? {
                return Err(Attempt::Fatal(PushError::Rejected {
                    message: format!(
                        "the remote's branch `{}` is at {old}, which is not in this execution's \
                         history; agentd does not overwrite a branch it did not write (name \
                         another branch with branch_template)",
                        job.branch
                    ),
                }));
            }
            false
        }
    };
    let mut updates = Vec::new();
    if !already_there {
        updates.push(format!("{head}:{branch_ref}"));
    }
    let integration = match (job.merge_into, &integration_ref) {
        (Some(name), Some(reference)) => {
            // Merged onto what was fetched, not what was listed: a branch
            // rewritten in between is merged as it now is (and a push that
            // raced the merge is retried).
            let current = match remote_refs.get(reference) {
                Some(_) => {
                    fetch(git, location, reference).await?;
                    let fetched = git
                        .run(
                            "reading the integration branch",
                            &["rev-parse", "--verify", "refs/agentd/integration^{commit}"],
                        )
                        .await
                        .map_err(|error| Attempt::Fatal(PushError::Step(error)))?;
                    Some(String::from_utf8_lossy(&fetched).trim().to_string())
                }
                None => None,
            };
            let merged = merge::integrate(git, job, name, current.as_deref(), head)
                .await
                .map_err(Attempt::Fatal)?;
            if let Integration::Merged {
                commit,
                up_to_date: false,
                ..
            } = &merged
            {
                updates.push(format!("{commit}:{reference}"));
            }
            Some(merged)
        }
        _ => None,
    };
    if !updates.is_empty() {
        push(git, location, &updates).await?;
    }
    Ok(Delivered {
        commit: head.to_string(),
        already_there,
        integration,
        attempts: 0,
        stats: DiffStats::default(),
    })
}

/// Files, insertions and deletions of `head` against `base` (binary files
/// count as files only), from git's numstat; no attribute or driver runs.
pub(super) async fn stats(
    git: &ScratchGit,
    base: &str,
    head: &str,
) -> Result<DiffStats, PushError> {
    let out = git
        .run(
            "counting the changes",
            &[
                "diff",
                "--numstat",
                "-z",
                "--no-renames",
                "--no-ext-diff",
                "--no-textconv",
                base,
                head,
            ],
        )
        .await
        .map_err(PushError::Step)?;
    let mut stats = DiffStats::default();
    for record in out.split(|byte| *byte == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let mut fields = text.split('\t');
        let (Some(added), Some(deleted)) = (fields.next(), fields.next()) else {
            continue;
        };
        stats.files_changed += 1;
        stats.insertions += added.parse::<u64>().unwrap_or(0);
        stats.deletions += deleted.parse::<u64>().unwrap_or(0);
    }
    Ok(stats)
}

/// The remote's values of `patterns` (full ref names), as `ls-remote` lists them.
async fn list(
    git: &ScratchGit,
    location: &str,
    patterns: &[&str],
) -> Result<HashMap<String, String>, Attempt> {
    let mut args = vec!["ls-remote", "--refs", location];
    args.extend(patterns);
    let out = talk(git, "reading the remote's branches", &args).await?;
    let text = String::from_utf8_lossy(&out);
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, name)| patterns.contains(name))
        .map(|(sha, name)| (name.to_string(), sha.to_string()))
        .collect())
}

/// Fetches the remote's `reference` into `refs/agentd/integration`, objects checked.
async fn fetch(git: &ScratchGit, location: &str, reference: &str) -> Result<(), Attempt> {
    let refspec = format!("+{reference}:refs/agentd/integration");
    talk(
        git,
        "fetching the integration branch",
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            location,
            &refspec,
        ],
    )
    .await
    .map(|_| ())
}

/// Whether `old` is `head` or one of its ancestors (present here: the
/// history of `head` is, so an object that is not cannot be one).
async fn leads_to(git: &ScratchGit, old: &str, head: &str) -> Result<bool, Attempt> {
    let commit = format!("{old}^{{commit}}");
    let present = git
        .succeeds(&["cat-file", "-e", &commit])
        .await
        .unwrap_or(false);
    if !present {
        return Ok(false);
    }
    git.succeeds(&["merge-base", "--is-ancestor", old, head])
        .await
        .map_err(|error| Attempt::Fatal(PushError::Step(error)))
}

/// Pushes `updates` (`commit:ref`), never forced, all or nothing.
async fn push(git: &ScratchGit, location: &str, updates: &[String]) -> Result<(), Attempt> {
    let mut args = vec!["push", "--no-verify"];
    if updates.len() > 1 {
        args.push("--atomic");
    }
    args.push(location);
    args.extend(updates.iter().map(String::as_str));
    match talk(git, "pushing", &args).await {
        Err(Attempt::Fatal(PushError::Failed { message }))
            if ["failed to update ref", "cannot lock ref"]
                .iter()
                .any(|needle| message.contains(needle))
                || !message.contains("[remote rejected]")
                    && [
                        "[rejected]",
                        "fetch first",
                        "non-fast-forward",
                        "stale info",
                        "atomic push failed",
                    ]
                    .iter()
                    .any(|needle| message.contains(needle)) =>
        {
            Err(Attempt::Raced)
        }
        other => other.map(|_| ()),
    }
}

/// Runs a command that talks to the remote; its failure is read for whether
/// to try again.
async fn talk(git: &ScratchGit, step: &'static str, args: &[&str]) -> Result<Vec<u8>, Attempt> {
    match git.run(step, args).await {
        Ok(out) => Ok(out),
        Err(VerifyError::Timeout { step, seconds }) => Err(Attempt::Transient(format!(
            "{step} timed out after {seconds} s"
        ))),
        Err(VerifyError::Refused { step, message }) => {
            let message = format!("{step}: {message}");
            Err(match classify(&message) {
                Failure::Auth => Attempt::Fatal(PushError::Auth { message }),
                Failure::Transient => Attempt::Transient(message),
                Failure::Permanent => Attempt::Fatal(PushError::Failed { message }),
            })
        }
        Err(other) => Err(Attempt::Fatal(PushError::Step(other))),
    }
}
