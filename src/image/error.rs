//! Everything that can stop an image build, one variant per step that can fail.

use std::path::PathBuf;

/// Why [`super::ImageBuilder::ensure`] could not produce the agent image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The engine refused or failed an image operation (inspect, pull, import,
    /// a build request).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The offline base needs mmdebstrap on the host running agentd.
    #[error("mmdebstrap is not installed (apt-get install mmdebstrap), or pass a base image")]
    MmdebstrapMissing,
    /// mmdebstrap ran and failed; `output` holds its last lines.
    #[error("mmdebstrap failed ({status}):\n{output}")]
    Mmdebstrap { status: String, output: String },
    /// The wheel route needs `python3 -m pip`.
    #[error(
        "python3 is not installed: it downloads the claude-agent-sdk wheel (or pass a claude binary)"
    )]
    PythonMissing,
    /// pip ran and failed; `output` holds its last lines.
    #[error("pip could not download claude-agent-sdk=={version} ({status}):\n{output}")]
    PipDownload {
        version: String,
        status: String,
        output: String,
    },
    /// pip succeeded but left no `.whl` file.
    #[error("pip saved no wheel for claude-agent-sdk=={version} in {dir}")]
    WheelNotFound { version: String, dir: PathBuf },
    /// The wheel is not a readable zip, or lacks the bundled CLI.
    #[error("cannot read {entry} from the wheel {wheel}: {source}")]
    Wheel {
        wheel: PathBuf,
        entry: String,
        source: zip::result::ZipError,
    },
    /// The CLI found is not the version asked for (the tag would lie).
    #[error(
        "{origin} holds Claude Code {found}, expected {expected}; set the Claude version to match"
    )]
    ClaudeVersionMismatch {
        origin: String,
        found: String,
        expected: String,
    },
    /// The CLI found is not a native Linux executable (e.g. npm's JavaScript shim).
    #[error(
        "{path} is not a native Linux executable (ELF); pass the binary the npm package installed"
    )]
    NotNative { path: PathBuf },
    /// `<claude_binary> --version` did not run or said nothing usable.
    #[error("`{path} --version` failed: {detail}")]
    ClaudeVersion { path: PathBuf, detail: String },
    /// A Dockerfile step failed; `step` is the builder's `Step N/M : …` line.
    #[error("docker build of {tag} failed at {step}: {message}")]
    Build {
        tag: String,
        step: String,
        message: String,
    },
    /// A local file operation failed; `context` says which.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl ImageError {
    /// An [`ImageError::Io`] with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}
