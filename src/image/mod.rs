//! Building the agent image offline: a Debian base made with `mmdebstrap` (or an
//! existing base image), the Claude Code binary taken from the `claude-agent-sdk`
//! wheel (or a native binary from npm), and `images/agent/Dockerfile` on top.
//!
//! [`ImageBuilder::ensure`] builds only what is missing, so every `agentd run` can
//! call it; when the agent tag exists it costs one Docker API call.

pub mod agent;
pub mod base;
mod builder;
pub mod claude_binary;
mod config;
pub mod deployment;
mod error;
mod process;

pub use builder::{BuiltImage, ImageBuilder};
pub use config::{
    DEFAULT_CLAUDE_SDK_VERSION, DEFAULT_CLAUDE_VERSION, DEFAULT_SUITE, ImageConfig,
    default_cache_dir,
};
pub use error::ImageError;

/// Label on images agentd builds: `base` or `agent`.
pub const IMAGE_LABEL: &str = "agentd.image";
/// Label on the agent image: the Claude Code version inside it.
pub const CLAUDE_VERSION_LABEL: &str = "agentd.claude-version";
