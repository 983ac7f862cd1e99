//! Where agentd keeps things on the host.
//!
//! ```text
//! <data_dir>/
//!   executions/<id>/   events.jsonl  transcript.jsonl  summary.json
//!                      changes.diff  branch.bundle  cassette.jsonl  artifacts/…
//!   mirrors/           one bare mirror per repository
//!   workspaces/        <execution>.img: each live sandbox's size-limited workspace filesystem
//!                      (.fs .base .repo: its mount points when layered over a template)
//!   templates/         <key>.img <key>.ready: checkout templates (engine::layers)
//!   cache/             the extracted agent CLI, keyed by version
//! <run_dir>/           0700; sockets and liveness locks (a tmpfs is ideal)
//!   <supervisor>.lock  <supervisor>.detached (a serve that left work running)
//!   <supervisor>/<execution>/llm.sock  tools.sock  policy/ (tool rules: managed settings, hook)
//! ```

use std::path::{Path, PathBuf};

use crate::execution::ResultPaths;
use crate::results::ResultFile;

/// The data directory: results, mirrors and caches that outlive a process.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (created on use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// `$XDG_DATA_HOME/agentd`, else `~/.local/share/agentd`, else `/var/lib/agentd`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = non_empty_env("XDG_DATA_HOME") {
            return PathBuf::from(dir).join("agentd");
        }
        match non_empty_env("HOME") {
            Some(home) => PathBuf::from(home).join(".local/share/agentd"),
            None => PathBuf::from("/var/lib/agentd"),
        }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where one execution's results go.
    pub fn execution(&self, id: &str) -> ExecutionDir {
        ExecutionDir {
            root: self.executions().join(id),
        }
    }

    /// The folder of every execution's folder.
    pub fn executions(&self) -> PathBuf {
        self.root.join("executions")
    }

    /// The mirror cache.
    pub fn mirrors(&self) -> PathBuf {
        self.root.join("mirrors")
    }

    /// The size-limited workspace filesystems of live executions.
    pub fn workspaces(&self) -> PathBuf {
        self.root.join("workspaces")
    }

    /// Checkout templates: per base commit of a large repository, the
    /// read-only checkout later workspaces are layered over.
    pub fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }

    /// Download and build caches.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
}

/// One execution's folder.
#[derive(Debug, Clone)]
pub struct ExecutionDir {
    root: PathBuf,
}

impl ExecutionDir {
    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Typed events, one JSON object per line.
    pub fn events(&self) -> PathBuf {
        ResultFile::Events.local_path(&self.root)
    }
    /// The agent's stdout, verbatim.
    pub fn transcript(&self) -> PathBuf {
        ResultFile::Transcript.local_path(&self.root)
    }
    /// The final summary.
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// The diff against the base commit.
    pub fn diff(&self) -> PathBuf {
        ResultFile::Diff.local_path(&self.root)
    }
    /// The git bundle of the agent's branch.
    pub fn bundle(&self) -> PathBuf {
        ResultFile::Bundle.local_path(&self.root)
    }
    /// The artifacts the agent handed back.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join(crate::results::ARTIFACTS)
    }
    /// The recorded model exchanges (when recording was asked for).
    pub fn cassette(&self) -> PathBuf {
        ResultFile::Cassette.local_path(&self.root)
    }
    /// The agent CLI's session transcript, for a follow-up to resume.
    pub fn session(&self) -> PathBuf {
        ResultFile::Session.local_path(&self.root)
    }
    /// The parent's session transcript, bound read-only into a follow-up's
    /// sandbox while it runs.
    pub fn resume(&self) -> PathBuf {
        self.root.join("resume")
    }
    /// Scratch space for unpacking the driver's output.
    pub fn staging(&self) -> PathBuf {
        self.root.join(".staging")
    }
    /// Where the results are, for a summary.
    pub fn result_paths(&self) -> ResultPaths {
        let text = |path: PathBuf| path.display().to_string();
        ResultPaths {
            data_dir: self.root.display().to_string(),
            events: text(self.events()),
            diff: text(self.diff()),
            bundle: text(self.bundle()),
            artifacts: text(self.artifacts()),
        }
    }
    /// Scratch repository where the bundle is verified on the host.
    pub fn verify_scratch(&self) -> PathBuf {
        self.root.join(".verify")
    }
}

/// The run directory: sockets and liveness locks, which must not outlive a boot.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// `/run/agentd` for root, else `$XDG_RUNTIME_DIR/agentd`, else `/tmp/agentd-<uid>`.
    /// Kept short: socket paths must fit in 107 bytes.
    pub fn default_root() -> PathBuf {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        if uid == 0 {
            return PathBuf::from("/run/agentd");
        }
        match non_empty_env("XDG_RUNTIME_DIR") {
            Some(dir) => PathBuf::from(dir).join("agentd"),
            None => PathBuf::from(format!("/tmp/agentd-{uid}")),
        }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The liveness lock of a supervisor process.
    pub fn lock(&self, supervisor: &str) -> PathBuf {
        self.root.join(format!("{supervisor}.lock"))
    }

    /// Left by a supervisor that shut down leaving its executions running (it
    /// will re-attach them): while it exists the supervisor counts as alive.
    pub fn detached(&self, supervisor: &str) -> PathBuf {
        self.root.join(format!("{supervisor}.detached"))
    }

    /// A supervisor's folder of execution sockets.
    pub fn supervisor(&self, supervisor: &str) -> PathBuf {
        self.root.join(supervisor)
    }

    /// The folder holding one execution's socket (bind-mounted into its sandbox).
    pub fn socket_dir(&self, supervisor: &str, execution: &str) -> PathBuf {
        self.supervisor(supervisor).join(execution)
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
