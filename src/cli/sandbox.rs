//! How sandboxes are kept within the host's disk: options `run` and `serve` share.

use clap::{Args, ValueEnum};

use agentd::engine::WorkspaceKind;
use agentd::execution::parse_bytes;
use agentd::runner::RunnerConfig;

/// How each execution's workspace is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkspaceLimit {
    /// A filesystem of the execution's workspace size on a loop device: writes
    /// beyond it fail, the host never loses more (needs root or CAP_SYS_ADMIN).
    Loop,
    /// A plain Docker volume without a size limit: the agent can fill the host's disk.
    None,
}

/// Disk options of the sandboxes.
#[derive(Debug, Clone, Args)]
pub struct DiskArgs {
    /// How each workspace is made: `loop` (a size-limited filesystem, see
    /// --workspace-size) or `none` (no limit: for hosts where agentd cannot make
    /// loop devices; the agent can then fill the disk).
    #[arg(long, env = "AGENTD_WORKSPACE_LIMIT", value_enum, default_value_t = WorkspaceLimit::Loop)]
    pub workspace_limit: WorkspaceLimit,

    /// Files larger than this are not collected (not committed, bundled or shown
    /// in the diff); the summary lists them as left out.
    #[arg(long, env = "AGENTD_MAX_FILE_SIZE", default_value = "100m", value_parser = parse_bytes)]
    pub max_file_size: u64,

    /// Repositories with at least this much packed history (`64m`, `1g`, `0`
    /// for all) get a checkout template per base commit: the first execution
    /// on a commit checks it out once into a read-only template, later ones
    /// on that host start from it at once (their writes go to their own
    /// layer). `off`: every workspace checks the repository out itself.
    /// Needs --workspace-limit loop.
    #[arg(long, env = "AGENTD_CHECKOUT_TEMPLATES", default_value = "64m", value_parser = parse_threshold)]
    pub checkout_templates: Threshold,
}

/// A size, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold(pub Option<u64>);

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Threshold(None));
    }
    parse_bytes(text).map(|bytes| Threshold(Some(bytes)))
}

impl DiskArgs {
    /// Sets these options on a runner configuration.
    pub fn apply(&self, config: &mut RunnerConfig) {
        config.workspace = match self.workspace_limit {
            WorkspaceLimit::Loop => WorkspaceKind::Limited,
            WorkspaceLimit::None => WorkspaceKind::Unlimited,
        };
        config.max_file_bytes = self.max_file_size;
        config.checkout_templates = self.checkout_templates.0;
    }
}
