//! Options every command shares, and the start-up every command needs.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use agentd::engine::{Engine, RuntimeError, SandboxRuntime};
use agentd::runner::RunnerConfig;
use agentd::runner::layout::{DataDir, RunDir};

/// Where agentd keeps its state, and how it logs.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// TOML file of option defaults: `option = value` with the long option names,
    /// global ones at the top, a verb's in a table named after it ([serve], [run]).
    /// Flags and environment variables win over it.
    #[arg(long, env = "AGENTD_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory: results of every execution, repository mirrors, caches.
    /// Default: $XDG_DATA_HOME/agentd or ~/.local/share/agentd.
    #[arg(long, env = "AGENTD_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Run directory for per-execution model sockets and liveness locks (keep the
    /// path short: socket paths are limited to 107 bytes). Default: /run/agentd as
    /// root, else $XDG_RUNTIME_DIR/agentd or /tmp/agentd-<uid>.
    #[arg(long, env = "AGENTD_RUN_DIR", global = true, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,

    /// Log filter for agentd's own diagnostics (tracing syntax, e.g. `info`,
    /// `agentd=debug`). Logs go to stderr. Default: `warn`.
    #[arg(
        long,
        env = "AGENTD_LOG",
        global = true,
        default_value = "warn",
        value_name = "FILTER"
    )]
    pub log: String,

    /// Log format.
    #[arg(long, env = "AGENTD_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How diagnostics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

impl Global {
    /// The data directory to use.
    pub fn data_dir(&self) -> DataDir {
        DataDir::new(self.data_dir.clone().unwrap_or_else(DataDir::default_root))
    }

    /// The run directory to use.
    pub fn run_dir(&self) -> RunDir {
        RunDir::new(self.run_dir.clone().unwrap_or_else(RunDir::default_root))
    }

    /// Installs the tracing subscriber.
    pub fn init_logging(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => builder.with_target(false).init(),
            LogFormat::Json => builder.json().flatten_event(true).init(),
        }
    }
}

/// An error for the user: printed as one line, process exits with `code`.
#[derive(Debug)]
pub struct Failure {
    /// What to print.
    pub message: String,
    /// The process exit code (2 for usage errors, 1 otherwise).
    pub code: i32,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// An operational error (exit 1).
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::fatal(error.to_string())
    }
}

/// Checks the sandbox's OCI runtime (`--runtime`, else the engine's default)
/// against the engine before anything is created. A runtime the engine does not
/// have is a usage error (exit 2); gVisor registered without the arguments the
/// sandbox needs is an operational one (exit 1) whose message holds the fix.
pub async fn check_runtime(
    engine: &Engine,
    runtime: Option<&str>,
) -> Result<SandboxRuntime, Failure> {
    match engine.sandbox_runtime(runtime).await {
        Ok(chosen) => {
            tracing::info!(runtime = %chosen.name, gvisor = chosen.gvisor, "sandbox runtime");
            Ok(chosen)
        }
        Err(error @ RuntimeError::Unregistered { .. }) => Err(Failure::usage(error.to_string())),
        Err(error) => Err(Failure::fatal(error.to_string())),
    }
}

/// Applies the checked runtime to the runner's settings: the name asked for
/// (none, or empty, means the engine's default) and whether it is gVisor.
pub fn use_runtime(config: &mut RunnerConfig, asked: Option<&str>, checked: &SandboxRuntime) {
    config.runtime = asked.filter(|name| !name.is_empty()).map(str::to_string);
    config.gvisor = checked.gvisor;
}
