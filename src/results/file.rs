//! The names of an execution's result files: in its data-directory folder
//! and as keys in the shared location.

use std::path::{Path, PathBuf};

/// One result file of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultFile {
    /// The diff against the base commit.
    Diff,
    /// The git bundle of the agent's branch.
    Bundle,
    /// The event log exported from the store.
    Events,
    /// The agent's stdout, verbatim.
    Transcript,
    /// The recorded model exchanges.
    Cassette,
    /// The agent CLI's session transcript, for a follow-up to resume.
    Session,
    /// An artifact, by its relative path (as listed; checked when unpacked).
    Artifact(String),
}

impl ResultFile {
    /// The file's name in the execution's folder.
    pub fn file_name(&self) -> &str {
        match self {
            ResultFile::Diff => "changes.diff",
            ResultFile::Bundle => "branch.bundle",
            ResultFile::Events => "events.jsonl",
            ResultFile::Transcript => "transcript.jsonl",
            ResultFile::Cassette => "cassette.jsonl",
            ResultFile::Session => "session.jsonl",
            ResultFile::Artifact(path) => path,
        }
    }

    /// Where it lies under the execution's folder `root`.
    pub fn local_path(&self, root: &Path) -> PathBuf {
        match self {
            ResultFile::Artifact(path) => root.join(ARTIFACTS).join(path),
            other => root.join(other.file_name()),
        }
    }

    /// Its key in the shared location (unique within the execution).
    pub fn key(&self) -> String {
        match self {
            ResultFile::Artifact(path) => format!("{ARTIFACTS}/{path}"),
            other => other.file_name().to_string(),
        }
    }
}

/// The artifacts' folder in an execution's folder.
pub const ARTIFACTS: &str = "artifacts";
