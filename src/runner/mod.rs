//! What runs one execution: from `preparing` to a final status — or picking it
//! up where a dead supervisor left it.
//!
//! `preparing` (mirror, socket, workspace, container: [`prepare`]) → `running`
//! (the agent, its output pumped into events; a timer and a cancel token may
//! kill it: [`watch`]) → `collecting` (the bundle and artifacts out by tar, the
//! bundle verified on the host: [`collect`]) → a final status decided from what
//! was observed ([`finish`]). Whatever happens on the way — a failure, a
//! timeout, a cancel, a panic — the sandbox's resources are released before the
//! final status is reported ([`run`]).

pub mod bounds;
mod collect;
mod deliver;
pub mod driver;
mod export;
mod fence;
mod finish;
mod follow_up;
mod gateway_events;
pub mod hub;
pub mod input;
pub mod layout;
mod ledger;
pub mod lifecycle;
mod prepare;
mod publish;
mod pump;
pub mod recorder;
mod requeue;
pub mod results;
mod run;
mod sandbox;
mod template;
mod tool_calls;
mod tool_door;
mod tool_policy;
pub mod verdict;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::labels::Owner;
use crate::engine::{Engine, WorkspaceKind};
use crate::execution::ExecutionRecord;
use crate::gateway::Gateway;
use crate::git::{MirrorCache, VerifyLimits};
use crate::store::Store;

use hub::EventHub;
use layout::{DataDir, RunDir};

pub use deliver::DeliverError;
pub use lifecycle::{Lifecycle, Stage};
pub use recorder::{EventObserver, Silent};
pub use requeue::{ENGINE_LOST, engine_lost, lost_attempt};
pub use sandbox::sweep_workspaces;

/// The reason given when a supervisor restart made an execution impossible to continue.
pub const SUPERVISOR_RESTARTED: &str = "supervisor_restarted";

/// Settings shared by every execution a runner starts.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Where results, mirrors and caches live.
    pub data_dir: DataDir,
    /// The agent image (see `agentd image build`).
    pub image: String,
    /// OCI runtime for sandboxes (`runsc` for gVisor). Default: the engine's.
    pub runtime: Option<String>,
    /// The sandboxes' runtime is gVisor (as the engine registered it; see
    /// `Engine::sandbox_runtime`): their pids limit is widened on the engine to
    /// cover gVisor's own host threads. Default: false.
    pub gvisor: bool,
    /// Author of the commit holding the agent's work. Default: `agentd`.
    pub git_name: String,
    /// Its email. Default: `agentd@localhost`.
    pub git_email: String,
    /// Bound on collecting after the agent stopped. Default: 2 min.
    pub collect_timeout: Duration,
    /// How long a claim on an execution lasts without renewal. Default: 30 s.
    pub lease: Duration,
    /// Values removed from every event and log line before it is stored or
    /// streamed (the upstream credential and repository credentials are added
    /// automatically). Default: none.
    pub secrets: Vec<String>,
    /// Files larger than this are not collected (listed as left out). Default: 100 MiB.
    pub max_file_bytes: u64,
    /// Limits for verifying the bundle and computing the diff on the host.
    pub verify: VerifyLimits,
    /// How each execution's workspace is made: a size-limited filesystem
    /// (default), or a plain volume the agent can grow without bound.
    pub workspace: WorkspaceKind,
    /// Where result files are kept for every replica to serve. Default: the
    /// data directory (local).
    pub results: crate::results::Results,
    /// The operator's key that opens tenants' stored credentials (for
    /// delivery). Default: none (no stored credential can be used).
    pub secret_key: Option<crate::tenancy::SecretKey>,
    /// Retries of a delivery's transient failures.
    pub delivery_retry: crate::git::push::RetryPolicy,
    /// Repositories whose mirror holds at least this many bytes of packed
    /// history get a checkout template per base commit, which later
    /// workspaces on that commit are layered over instead of checking out
    /// (size-limited workspaces only; see `engine::layers`). `None`: never.
    /// Default: 64 MiB.
    pub checkout_templates: Option<u64>,
}

/// The default of [`RunnerConfig::checkout_templates`]: 64 MiB of packs.
pub const DEFAULT_TEMPLATE_THRESHOLD: u64 = 64 << 20;

impl RunnerConfig {
    /// The default lease on a claimed execution.
    pub fn default_lease() -> Duration {
        crate::store::DEFAULT_LEASE
    }

    /// Defaults for everything but the data directory and image.
    pub fn new(data_dir: DataDir, image: impl Into<String>) -> Self {
        RunnerConfig {
            image: image.into(),
            runtime: None,
            gvisor: false,
            git_name: "agentd".into(),
            git_email: "agentd@localhost".into(),
            collect_timeout: Duration::from_secs(120),
            lease: crate::store::DEFAULT_LEASE,
            secrets: Vec::new(),
            max_file_bytes: driver::DEFAULT_MAX_FILE_BYTES,
            verify: VerifyLimits::default(),
            workspace: WorkspaceKind::default(),
            results: crate::results::Results::local(&data_dir.executions()),
            secret_key: None,
            delivery_retry: crate::git::push::RetryPolicy::default(),
            checkout_templates: Some(DEFAULT_TEMPLATE_THRESHOLD),
            data_dir,
        }
    }
}

/// Who runs executions here: the supervisor's id, host and run directory, as
/// its resources are labelled and its sockets placed. The supervisor (or
/// `agentd run`) holds the liveness lock behind it for as long as the runner runs.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Where sockets go.
    pub run_dir: RunDir,
    /// The labels' owner: supervisor id, host, run directory.
    pub owner: Owner,
}

/// Runs executions on one Docker engine, recording them in a store.
pub struct Runner {
    pub(crate) engine: Engine,
    pub(crate) gateway: Gateway,
    pub(crate) mirrors: MirrorCache,
    pub(crate) identity: Identity,
    pub(crate) config: RunnerConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Arc<EventHub>,
    /// An embedding program's observers of every stage.
    pub(crate) lifecycle: Vec<Arc<dyn lifecycle::Lifecycle>>,
    /// The input channels of the streaming executions this runner writes to.
    pub(crate) inputs: std::sync::Mutex<HashMap<String, Arc<input::InputChannel>>>,
}

/// An execution to start: its stored record (claimed, `preparing`), and the
/// repository as the client gave it (credentials included; never stored).
#[derive(Debug, Clone)]
pub struct Job {
    /// The stored execution.
    pub record: ExecutionRecord,
    /// The repository location with any credentials.
    pub repo: String,
}

impl Runner {
    /// A runner using `engine`, forwarding model traffic through `gateway`, and
    /// recording in `store` (live events through `hub`).
    pub fn new(
        engine: Engine,
        gateway: Gateway,
        identity: Identity,
        store: Arc<dyn Store>,
        hub: Arc<EventHub>,
        config: RunnerConfig,
    ) -> Runner {
        Runner {
            mirrors: MirrorCache::new(config.data_dir.mirrors()),
            engine,
            gateway,
            identity,
            config,
            store,
            hub,
            lifecycle: Vec::new(),
            inputs: Default::default(),
        }
    }

    /// Tells the input writer of streaming execution `id`, when this runner
    /// writes it, that a client said something (any replica's runner picks
    /// inputs up from the store within a moment anyway).
    pub fn nudge_input(&self, id: &str) {
        let inputs = self.inputs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = inputs.get(id) {
            channel.nudge();
        }
    }

    /// The engine this runner uses.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The image and runtime an execution gets when its request does not choose.
    pub fn server_sandbox(&self) -> crate::tenancy::ServerSandbox {
        crate::tenancy::ServerSandbox {
            image: self.config.image.clone(),
            runtime: self.config.runtime.clone(),
        }
    }

    /// The supervisor identity this runner claims executions as.
    pub fn owner(&self) -> &str {
        &self.identity.owner.supervisor
    }
}
