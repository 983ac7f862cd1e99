//! A team's remote, agentd's mirror of it and a sandbox's bundle of work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentd::git::push::{
    Delivered, DeliveryJob, Identity, PushError, Remote, RemoteAuth, RetryPolicy, deliver,
};

use crate::common::git;
use crate::common::remotes::bare_remote;

/// A bare remote under `root`, agentd's mirror of it, and work to deliver.
pub struct Team {
    pub tmp: tempfile::TempDir,
    pub bare: PathBuf,
    pub mirror: PathBuf,
    pub base: String,
}

impl Team {
    pub fn new(name: &str) -> Team {
        let tmp = tempfile::tempdir().unwrap();
        let (bare, base) = bare_remote(tmp.path(), name);
        let mirror = tmp.path().join("mirror.git");
        git(
            tmp.path(),
            &[
                "clone",
                "--quiet",
                "--mirror",
                bare.to_str().unwrap(),
                mirror.to_str().unwrap(),
            ],
        );
        Team {
            tmp,
            bare,
            mirror,
            base,
        }
    }

    /// The sandbox's work on `branch`, as the bundle it hands back.
    pub fn work(&self, branch: &str, file: &str, text: &str) -> (PathBuf, String) {
        let dir = self
            .tmp
            .path()
            .join(format!("work-{}", branch.replace('/', "-")));
        git(
            self.tmp.path(),
            &[
                "clone",
                "--quiet",
                "--no-local",
                self.mirror.to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        git(&dir, &["checkout", "--quiet", "-b", branch, &self.base]);
        std::fs::write(dir.join(file), text).unwrap();
        git(&dir, &["add", "."]);
        git(&dir, &["commit", "--quiet", "-m", "agent's work"]);
        let head = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
        let bundle = self
            .tmp
            .path()
            .join(format!("{}.bundle", branch.replace('/', "-")));
        git(
            &dir,
            &[
                "bundle",
                "create",
                "--quiet",
                bundle.to_str().unwrap(),
                branch,
                &format!("^{}", self.base),
            ],
        );
        (bundle, head)
    }

    /// Delivers `bundle`'s `branch` to `location` with `auth`.
    pub async fn deliver(
        &self,
        bundle: &Path,
        branch: &str,
        location: &str,
        auth: RemoteAuth,
        retry: RetryPolicy,
    ) -> Result<Delivered, PushError> {
        let remote = Remote {
            location: location.to_string(),
            auth,
            pinned: None,
        };
        let identity = Identity {
            name: "agentd".into(),
            email: "agentd@example.org".into(),
        };
        deliver(&DeliveryJob {
            mirror: &self.mirror,
            bundle,
            branch,
            base: &self.base,
            remote: &remote,
            merge_into: None,
            identity: &identity,
            merge_message: "merge",
            scratch: &self.tmp.path().join("scratch"),
            retry: &retry,
        })
        .await
    }
}

/// Quick retries for tests: `attempts` in all, pauses from `base`.
pub fn retries(attempts: u32, base_ms: u64) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base: Duration::from_millis(base_ms),
        max: Duration::from_secs(5),
        command_timeout: Duration::from_secs(60),
    }
}
