//! What image to build. Every field has a default, so `agentd image build` needs no
//! flags on a machine with Docker, `mmdebstrap`, apt and PyPI access.

use std::path::PathBuf;

/// Debian suite of the base image built with `mmdebstrap`.
pub const DEFAULT_SUITE: &str = "bookworm";
/// The `claude-agent-sdk` wheel on PyPI whose bundled CLI goes into the image.
/// Bump together with [`DEFAULT_CLAUDE_VERSION`] (see images/README.md).
pub const DEFAULT_CLAUDE_SDK_VERSION: &str = "0.2.187";
/// The Claude Code version that wheel bundles (its `_bundled/claude.version`).
/// It prefixes the agent tag, so a bump yields a new image.
pub const DEFAULT_CLAUDE_VERSION: &str = "2.1.330";

/// What image to build; every field has a documented default ([`ImageConfig::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// Debian suite for the mmdebstrap base. Default: [`DEFAULT_SUITE`].
    pub suite: String,
    /// Use this existing image (e.g. `debian:bookworm-slim` from a site registry) as
    /// the base instead of building one with mmdebstrap; pulled if not on the engine.
    /// Default: none (build the base offline).
    pub base_image: Option<String>,
    /// The `claude-agent-sdk` wheel version to take the CLI from.
    /// Default: [`DEFAULT_CLAUDE_SDK_VERSION`].
    pub claude_sdk_version: String,
    /// The Claude Code version the image must contain; the wheel's `claude.version`
    /// or `<claude_binary> --version` must report it. Default: [`DEFAULT_CLAUDE_VERSION`].
    pub claude_version: String,
    /// Use this native `claude` executable (e.g. the one npm installed) instead of
    /// the wheel. Default: none (download the wheel).
    pub claude_binary: Option<PathBuf>,
    /// Where the extracted binary is cached (`<cache_dir>/claude/<version>/claude`)
    /// and where build scratch files go. Default: [`default_cache_dir`].
    pub cache_dir: PathBuf,
    /// Rebuild the base and agent images (without the build cache) even if their
    /// tags exist. Default: false.
    pub force: bool,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            suite: DEFAULT_SUITE.to_string(),
            base_image: None,
            claude_sdk_version: DEFAULT_CLAUDE_SDK_VERSION.to_string(),
            claude_version: DEFAULT_CLAUDE_VERSION.to_string(),
            claude_binary: None,
            cache_dir: default_cache_dir(),
            force: false,
        }
    }
}

/// `$XDG_CACHE_HOME/agentd`, else `$HOME/.cache/agentd`, else `<temp dir>/agentd`:
/// the per-user cache place, so the 380 MB binary is downloaded once per user.
pub fn default_cache_dir() -> PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(cache) = absolute("XDG_CACHE_HOME") {
        return cache.join("agentd");
    }
    if let Some(home) = absolute("HOME") {
        return home.join(".cache").join("agentd");
    }
    std::env::temp_dir().join("agentd")
}
