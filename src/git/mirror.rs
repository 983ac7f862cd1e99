//! Bare mirrors of the repositories executions run against, kept on the host.
//!
//! The first execution on a repository clones it once; later ones only fetch.
//! The mirror is mounted read-only into containers, which clone from it with
//! `--shared` (alternates: no object is copied). Credentials are used here, on
//! the host, and are never written into the mirror: its remote URL is the
//! credential-free location and the secret travels only as a process
//! environment variable of the `git fetch`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::GitError;
use super::reach::Pinned;
use super::source::RepoSource;

/// The directory holding every mirror.
#[derive(Debug, Clone)]
pub struct MirrorCache {
    root: PathBuf,
}

/// One bare mirror, up to date as of the last [`MirrorCache::sync`].
#[derive(Debug, Clone)]
pub struct Mirror {
    path: PathBuf,
    source: RepoSource,
    /// git's `-c` options every fetch from the source takes (a tenant's
    /// pin to its vetted addresses); empty for a mirror found on disk.
    options: Vec<String>,
}

/// A ref resolved to the commit an execution starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRef {
    /// What was asked for (`main`, a tag, a sha), or the default branch's name.
    pub name: String,
    /// The full commit id.
    pub commit: String,
}

impl MirrorCache {
    /// A cache rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MirrorCache { root: root.into() }
    }

    /// The mirrors of one tenant's executions. Tenants never share a mirror:
    /// what one tenant fetched with its credentials is not another's to read,
    /// and one tenant's fetch cannot hold another's lock. The default tenant
    /// keeps the cache's root.
    pub fn for_tenant(&self, tenant: &str) -> MirrorCache {
        if tenant == crate::tenancy::DEFAULT_TENANT {
            return self.clone();
        }
        let digest = Sha256::digest(tenant.as_bytes());
        MirrorCache {
            root: self.root.join("tenants").join(hex::encode(&digest[..8])),
        }
    }

    /// The path the mirror of `source` lives at: a stable hash of the location
    /// plus a readable name.
    pub fn path_for(&self, source: &RepoSource) -> PathBuf {
        let digest = Sha256::digest(source.location().as_bytes());
        let hash = hex::encode(&digest[..8]);
        self.root
            .join(format!("{}-{hash}.git", source.short_name()))
    }

    /// The mirror of `source` as it is on disk, without fetching (for re-attaching
    /// to a sandbox that already mounts it). `None` if it was never cloned.
    pub fn existing(&self, source: &RepoSource) -> Option<Mirror> {
        let path = self.path_for(source);
        path.join("HEAD").exists().then(|| Mirror {
            path,
            source: source.clone(),
            options: Vec::new(),
        })
    }

    /// Clones the mirror if it does not exist yet, otherwise fetches into it.
    /// Concurrent callers for the same repository wait for each other (a lock
    /// file beside the mirror); different repositories proceed in parallel.
    /// `pinned` holds a tenant's fetch to the addresses vetted for it.
    /// Blocking: call it from `spawn_blocking`.
    pub fn sync(&self, source: &RepoSource, pinned: Option<&Pinned>) -> Result<Mirror, GitError> {
        std::fs::create_dir_all(&self.root).map_err(|e| GitError::io(&self.root, e))?;
        let path = self.path_for(source);
        let options = pinned.map(Pinned::git_config).unwrap_or_default();
        let lock_path = path.with_extension("lock");
        let lock = File::create(&lock_path).map_err(|e| GitError::io(&lock_path, e))?;
        lock.lock().map_err(|e| GitError::io(&lock_path, e))?;
        if path.join("HEAD").exists() {
            fetch(&path, source, &options)?;
        } else {
            clone(&path, source, &options)?;
        }
        set_default_branch(&path, source, &options);
        drop(lock);
        Ok(Mirror {
            path,
            source: source.clone(),
            options,
        })
    }
}

fn clone(path: &Path, source: &RepoSource, options: &[String]) -> Result<(), GitError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".clone-")
        .tempdir_in(parent)
        .map_err(|e| GitError::io(parent, e))?;
    let tmp = staging.path().join("repo.git");
    git(None, &["init", "--quiet", "--bare", path_str(&tmp)?], &[])?;
    let config = |args: &[&str]| git(Some(&tmp), args, &[]);
    config(&["config", "remote.origin.url", source.location()])?;
    config(&[
        "config",
        "remote.origin.fetch",
        "+refs/heads/*:refs/heads/*",
    ])?;
    config(&[
        "config",
        "--add",
        "remote.origin.fetch",
        "+refs/tags/*:refs/tags/*",
    ])?;
    // The hooks directory is mounted into containers; keep it empty.
    let _ = std::fs::remove_dir_all(tmp.join("hooks"));
    fetch(&tmp, source, options)?;
    std::fs::rename(&tmp, path).map_err(|e| GitError::io(path, e))?;
    Ok(())
}

fn fetch(path: &Path, source: &RepoSource, options: &[String]) -> Result<(), GitError> {
    // A stalled transfer fails instead of holding the mirror's lock forever.
    let mut args = vec![
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        "http.lowSpeedTime=60",
    ];
    for option in options {
        args.extend(["-c", option.as_str()]);
    }
    args.extend([
        "fetch",
        "--quiet",
        "--prune",
        "--no-write-fetch-head",
        "origin",
    ]);
    git(Some(path), &args, &source.git_env()).map(|_| ())
}

/// Points the mirror's HEAD at the remote's default branch, so "no ref" means
/// what it means upstream. Best effort: an old HEAD is kept if the remote will
/// not say.
fn set_default_branch(path: &Path, source: &RepoSource, options: &[String]) {
    let mut args = Vec::new();
    for option in options {
        args.extend(["-c", option.as_str()]);
    }
    args.extend(["ls-remote", "--symref", "origin", "HEAD"]);
    let Ok(output) = git(Some(path), &args, &source.git_env()) else {
        return;
    };
    let target = output.lines().find_map(|line| {
        line.strip_prefix("ref: ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    });
    if let Some(target) = target
        && target.starts_with("refs/heads/")
    {
        let _ = git(Some(path), &["symbolic-ref", "HEAD", &target], &[]);
    }
}

impl Mirror {
    /// The mirror's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves `git_ref` (a branch, tag or commit; `None` for the default
    /// branch) to a commit. A ref the mirror does not have (a commit on no branch,
    /// `refs/pull/…`) is fetched once by name before giving up. Blocking.
    pub fn resolve(&self, git_ref: Option<&str>) -> Result<ResolvedRef, GitError> {
        let Some(name) = git_ref else {
            let commit = self.rev_parse("HEAD")?.ok_or(GitError::RefNotFound {
                git_ref: "HEAD (the repository has no default branch)".into(),
            })?;
            let branch = git(Some(&self.path), &["symbolic-ref", "--short", "HEAD"], &[])
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "HEAD".into());
            return Ok(ResolvedRef {
                name: branch,
                commit,
            });
        };
        validate_ref(name)?;
        if let Some(commit) = self.rev_parse(name)? {
            return Ok(ResolvedRef {
                name: name.to_string(),
                commit,
            });
        }
        let refspec = format!("{name}:refs/agentd/fetched");
        // Held like the mirror's own fetch: a second DNS answer or a
        // redirect must not take this one into the operator's network.
        let mut args = Vec::new();
        for option in &self.options {
            args.extend(["-c", option.as_str()]);
        }
        args.extend([
            "fetch",
            "--quiet",
            "--no-write-fetch-head",
            "origin",
            &refspec,
        ]);
        let fetched = git(Some(&self.path), &args, &self.source.git_env());
        if fetched.is_ok()
            && let Some(commit) = self.rev_parse("refs/agentd/fetched")?
        {
            return Ok(ResolvedRef {
                name: name.to_string(),
                commit,
            });
        }
        Err(GitError::RefNotFound {
            git_ref: name.to_string(),
        })
    }

    /// Whether the mirror holds `commit` (a full id).
    pub fn has_commit(&self, commit: &str) -> Result<bool, GitError> {
        Ok(self.rev_parse(commit)?.is_some())
    }

    fn rev_parse(&self, name: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{name}^{{commit}}");
        match git(
            Some(&self.path),
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            &[],
        ) {
            Ok(out) => Ok(Some(out.trim().to_string())),
            Err(GitError::Command { status: 1, .. }) => Ok(None),
            Err(GitError::Command { status: 128, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Refuses refs that could be read as options or that git itself would reject.
fn validate_ref(name: &str) -> Result<(), GitError> {
    if !crate::execution::is_ref_name(name) {
        return Err(GitError::InvalidRef {
            git_ref: name.to_string(),
        });
    }
    Ok(())
}

fn path_str(path: &Path) -> Result<&str, GitError> {
    path.to_str()
        .ok_or_else(|| GitError::io(path, std::io::Error::other("path is not UTF-8")))
}

/// Runs git with a clean, non-interactive environment and returns its stdout.
pub(crate) fn git(
    dir: Option<&Path>,
    args: &[&str],
    env: &[(String, String)],
) -> Result<String, GitError> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .output()
        .map_err(|source| GitError::Spawn { source })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(GitError::Command {
            args: args.join(" "),
            status: output.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs git in `dir` as a test author; returns stdout.
    fn run(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn repo_with_commit(dir: &Path) -> String {
        run(dir, &["init", "--quiet", "-b", "trunk"]);
        std::fs::write(dir.join("a.txt"), "a\n").unwrap();
        run(dir, &["add", "."]);
        run(dir, &["commit", "--quiet", "-m", "one"]);
        run(dir, &["tag", "v1"]);
        run(dir, &["rev-parse", "HEAD"]).trim().to_string()
    }

    #[test]
    fn clones_once_then_fetches_and_resolves_refs() {
        let tmp = tempfile::tempdir().unwrap();
        let upstream = tmp.path().join("up");
        std::fs::create_dir(&upstream).unwrap();
        let first = repo_with_commit(&upstream);
        let source = RepoSource::parse(upstream.to_str().unwrap()).unwrap();
        let cache = MirrorCache::new(tmp.path().join("mirrors"));

        let mirror = cache.sync(&source, None).unwrap();
        assert!(!mirror.path().join("hooks").exists());
        let default = mirror.resolve(None).unwrap();
        assert_eq!(
            default,
            ResolvedRef {
                name: "trunk".into(),
                commit: first.clone()
            }
        );
        assert_eq!(mirror.resolve(Some("v1")).unwrap().commit, first);
        assert_eq!(mirror.resolve(Some(&first[..10])).unwrap().commit, first);
        assert!(matches!(
            mirror.resolve(Some("nope")),
            Err(GitError::RefNotFound { .. })
        ));
        assert!(matches!(
            mirror.resolve(Some("--upload-pack=x")),
            Err(GitError::InvalidRef { .. })
        ));

        std::fs::write(upstream.join("b.txt"), "b\n").unwrap();
        run(&upstream, &["add", "."]);
        run(&upstream, &["commit", "--quiet", "-m", "two"]);
        let second = run(&upstream, &["rev-parse", "HEAD"]);
        let again = cache.sync(&source, None).unwrap();
        assert_eq!(again.path(), mirror.path());
        assert_eq!(again.resolve(Some("trunk")).unwrap().commit, second.trim());
    }
}

#[cfg(test)]
#[path = "mirror_pinned_tests.rs"]
mod pinned_tests;
