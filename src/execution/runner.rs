//! Taking one execution from `preparing` to a final status — or picking it up
//! where a dead supervisor left it.
//!
//! `preparing` (mirror, socket, volume, container) → `running` (the agent, its
//! output pumped into events; a timer and a cancel token may kill it) →
//! `collecting` (diff, bundle, artifacts out by tar) → a final status. Whatever
//! happens on the way — a failure, a timeout, a cancel, a panic — the sandbox's
//! resources are released before the final status is reported.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::WorkspaceKind;
use crate::engine::{Engine, EngineError, ExitState};
use crate::execution::collect::{self, Artifacts, Destination, Outputs};
use crate::execution::driver;
use crate::execution::hub::EventHub;
use crate::execution::instance::SupervisorInstance;
use crate::execution::layout::{DataDir, ExecutionDir};
use crate::execution::prepare::{Prepared, collector_name, container_name};
use crate::execution::pump::{Pumped, pump};
use crate::execution::recorder::{EventObserver, Recorder};
use crate::execution::sandbox::Sandbox;
use crate::execution::summary::AgentClaim;
use crate::execution::summary::Summary;
use crate::execution::verdict::{self, Observed, Stop};
use crate::execution::{EventBody, Status, SupervisorEvent};
use crate::gateway::Redactor;
use crate::gateway::{Account, Gateway, GatewayError, ModelLimits};
use crate::git::{GitError, MirrorCache, RepoSource, ResolvedRef, VerifyLimits};
use crate::store::{ExecutionRecord, Outcome, Store, StoreError};

/// How long the output pump may take to record what the container printed
/// before it stopped (its store writes can lag behind the container).
const PUMP_DRAIN: Duration = Duration::from_secs(120);

/// Attempts at storing the final status before giving up (the next
/// reconciliation then finds the execution live and ownerless).
const FINISH_ATTEMPTS: u32 = 5;

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
}

impl RunnerConfig {
    /// The default lease on a claimed execution.
    pub fn default_lease() -> Duration {
        crate::store::DEFAULT_LEASE
    }

    /// Defaults for everything but the data directory and image.
    pub fn new(data_dir: DataDir, image: impl Into<String>) -> Self {
        RunnerConfig {
            data_dir,
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
        }
    }
}

/// Runs executions on one Docker engine, recording them in a store.
pub struct Runner {
    pub(crate) engine: Engine,
    pub(crate) gateway: Gateway,
    pub(crate) mirrors: MirrorCache,
    pub(crate) instance: Arc<SupervisorInstance>,
    pub(crate) config: RunnerConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Arc<EventHub>,
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

/// Why preparing or running stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("repository: {0}")]
    Repo(#[from] GitError),
    #[error("docker: {0}")]
    Engine(#[from] EngineError),
    #[error("gateway: {0}")]
    Gateway(#[from] GatewayError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("internal task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Restarted(String),
    #[error("replay: {0}")]
    Replay(String),
    #[error("stopped")]
    Stopped(Stop),
}

/// What a run learned on its way, for the summary.
#[derive(Debug, Default)]
struct Findings {
    stop: Option<Stop>,
    exit: Option<ExitState>,
    pumped: Pumped,
    outputs: Outputs,
    artifacts: Artifacts,
    internal_error: Option<String>,
    collect_error: Option<String>,
}

/// One execution in progress.
pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) record: ExecutionRecord,
    pub(crate) dir: ExecutionDir,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) cancel: CancellationToken,
    pub(crate) deadline: Instant,
    started_at: chrono::DateTime<Utc>,
    /// The execution's account at the gateway.
    pub(crate) account: Arc<Account>,
    /// Tripped by the gateway when a model limit is reached.
    pub(crate) budget: Arc<BudgetStop>,
}

/// The gateway's signal that a model limit ended the execution.
#[derive(Debug, Default)]
pub(crate) struct BudgetStop {
    token: CancellationToken,
    limit: std::sync::Mutex<Option<String>>,
}

impl BudgetStop {
    /// Records the limit (the first one wins) and wakes the runner.
    pub(crate) fn trip(&self, limit: &str) {
        let mut held = self.limit.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_none() {
            *held = Some(limit.to_string());
        }
        self.token.cancel();
    }

    async fn tripped(&self) -> String {
        self.token.cancelled().await;
        self.limit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "a model limit was reached".into())
    }
}

impl Runner {
    /// A runner using `engine`, forwarding model traffic through `gateway`, and
    /// recording in `store` (live events through `hub`).
    pub fn new(
        engine: Engine,
        gateway: Gateway,
        instance: Arc<SupervisorInstance>,
        store: Arc<dyn Store>,
        hub: Arc<EventHub>,
        config: RunnerConfig,
    ) -> Runner {
        Runner {
            mirrors: MirrorCache::new(config.data_dir.mirrors()),
            engine,
            gateway,
            instance,
            config,
            store,
            hub,
        }
    }

    /// The engine this runner uses.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The supervisor identity this runner claims executions as.
    pub fn owner(&self) -> &str {
        self.instance.id()
    }

    /// Runs a claimed execution to its end. Never fails: every problem becomes a
    /// final status with a reason.
    pub async fn run(
        &self,
        job: Job,
        observer: Arc<dyn EventObserver>,
        cancel: CancellationToken,
    ) -> Summary {
        let secrets = RepoSource::parse(&job.repo)
            .map(|source| source.secrets())
            .unwrap_or_default();
        let run = self.begin(job.record, observer, cancel, &secrets);
        run.recorder
            .emit(EventBody::status(Status::Preparing, None))
            .await;
        let mut sandbox = Sandbox::new(&run.id, self.store.clone());
        let mut findings = Findings::default();
        let outcome = self
            .guarded(&run, async {
                let prepared = self.prepare(&run, &job.repo, &mut sandbox).await?;
                self.watch(&run, &prepared, &mut findings, 0).await?;
                self.collect(&run, &mut sandbox, &mut findings, &prepared)
                    .await;
                Ok(())
            })
            .await;
        self.conclude(run, sandbox, findings, outcome).await
    }

    /// Continues an execution a previous supervisor left live: a running agent is
    /// re-attached (its output read on from where the store's log cursor stands),
    /// an exited one is collected; one caught while preparing cannot be resumed
    /// and fails with reason `supervisor_restarted`.
    pub async fn resume(
        &self,
        record: ExecutionRecord,
        observer: Arc<dyn EventObserver>,
        cancel: CancellationToken,
    ) -> Summary {
        let status = record.status;
        let cursor = record.log_cursor;
        let run = self.begin(record, observer, cancel, &[]);
        let records = self.store.resources(&run.id).await.unwrap_or_default();
        let mut sandbox = Sandbox::from_records(&run.id, self.store.clone(), &records);
        let image =
            crate::engine::workspace::image_path(&self.config.data_dir.workspaces(), &run.id);
        if image.exists() {
            sandbox.set_disk(image);
        }
        let mut findings = Findings::default();
        let outcome = self
            .guarded(&run, async {
                if status == Status::Preparing {
                    return Err(RunError::Restarted(SUPERVISOR_RESTARTED.into()));
                }
                let prepared = self.reattach(&run, &sandbox).await?;
                run.recorder
                    .emit(EventBody::progress(format!(
                        "re-attached after a supervisor restart (was {status})"
                    )))
                    .await;
                if status == Status::Running
                    && let Some(dir) = sandbox.socket_dir().cloned()
                {
                    self.open_socket(&run, &mut sandbox, &dir).await?;
                }
                self.watch(&run, &prepared, &mut findings, cursor).await?;
                self.collect(&run, &mut sandbox, &mut findings, &prepared)
                    .await;
                Ok(())
            })
            .await;
        self.conclude(run, sandbox, findings, outcome).await
    }

    fn begin(
        &self,
        record: ExecutionRecord,
        observer: Arc<dyn EventObserver>,
        cancel: CancellationToken,
        extra_secrets: &[String],
    ) -> Run {
        let id = record.id.clone();
        let dir = self.config.data_dir.execution(&id);
        if let Err(error) = std::fs::create_dir_all(dir.root()) {
            tracing::error!(%error, dir = %dir.root().display(), "cannot create the execution folder");
        }
        let mut secrets = self.config.secrets.clone();
        secrets.extend(extra_secrets.iter().cloned());
        if let Some(credential) = self.gateway.upstream().credential() {
            secrets.push(credential.secret().to_string());
        }
        let recorder = Arc::new(Recorder::open(
            &id,
            self.store.clone(),
            self.hub.clone(),
            observer,
            Arc::new(Redactor::new(secrets).unwrap_or_else(|error| {
                tracing::error!(%error, "secrets cannot be redacted");
                Redactor::default()
            })),
            &dir.events(),
            &dir.transcript(),
        ));
        let started_at = record.started_at.unwrap_or_else(Utc::now);
        let elapsed = (Utc::now() - started_at).to_std().unwrap_or_default();
        let deadline = Instant::now() + record.limits.timeout.saturating_sub(elapsed);
        if record.cancel_requested {
            cancel.cancel();
        }
        let account = Arc::new(Account::new(
            model_limits(&record),
            self.gateway.prices(),
            record.gateway,
            record.conversation.clone(),
        ));
        let budget = Arc::new(BudgetStop::default());
        if let Some(limit) = account.exceeded() {
            budget.trip(&limit);
        }
        Run {
            id,
            record,
            dir,
            recorder,
            cancel,
            deadline,
            started_at,
            account,
            budget,
        }
    }

    /// Runs the work beside a lease heartbeat and turns a panic into an error.
    async fn guarded(
        &self,
        run: &Run,
        work: impl std::future::Future<Output = Result<(), RunError>>,
    ) -> Result<(), RunError> {
        let outcome = tokio::select! {
            outcome = std::panic::AssertUnwindSafe(work).catch_unwind() => outcome,
            _ = self.heartbeat(run) => unreachable!("the heartbeat never ends"),
        };
        outcome.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(execution = %run.id, %message, "execution panicked");
            Err(RunError::Task(format!("internal error: {message}")))
        })
    }

    /// Always releases the sandbox, then records the final status.
    async fn conclude(
        &self,
        run: Run,
        mut sandbox: Sandbox,
        mut findings: Findings,
        outcome: Result<(), RunError>,
    ) -> Summary {
        match outcome {
            Ok(()) => {}
            Err(RunError::Stopped(stop)) => findings.stop = Some(stop),
            Err(RunError::Restarted(reason)) => findings.internal_error = Some(reason),
            Err(error) => findings.internal_error = Some(error.to_string()),
        }
        sandbox.release(&self.engine).await;
        self.finish(run, findings).await
    }

    /// Renews this execution's lease and picks up cancel requests made through
    /// the store (by another process's API), until dropped.
    async fn heartbeat(&self, run: &Run) {
        let period = (self.config.lease / 3).max(Duration::from_millis(200));
        loop {
            tokio::time::sleep(period).await;
            match self
                .store
                .take_over(&run.id, self.owner(), self.config.lease)
                .await
            {
                Ok(Some(record)) if record.cancel_requested => run.cancel.cancel(),
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::error!(execution = %run.id, "lost the lease to another supervisor")
                }
                Err(error) => tracing::warn!(%error, "lease renewal failed"),
            }
        }
    }

    /// Finds what a previous supervisor prepared for this execution.
    async fn reattach(&self, run: &Run, sandbox: &Sandbox) -> Result<Prepared, RunError> {
        let restarted = |why: &str| RunError::Restarted(format!("{SUPERVISOR_RESTARTED}: {why}"));
        let container = container_name(&run.id);
        if !sandbox.containers().contains(&container) {
            return Err(restarted("its container was never created"));
        }
        if self.engine.exit_state(&container).await.is_err() {
            return Err(restarted("its container is gone"));
        }
        let source = RepoSource::parse(&run.record.repo)?;
        let mirror = self
            .mirrors
            .existing(&source)
            .ok_or_else(|| restarted("its repository mirror is gone"))?;
        let commit = run
            .record
            .base_commit
            .clone()
            .ok_or_else(|| restarted("its base commit was not recorded"))?;
        Ok(Prepared {
            mirror,
            resolved: ResolvedRef {
                name: run.record.git_ref.clone().unwrap_or_default(),
                commit,
            },
            volume: crate::execution::prepare::volume_name(&run.id),
            container,
        })
    }

    /// Waits for the agent to finish (or the limit, or a cancel), pumping its
    /// output from line `skip` on.
    async fn watch(
        &self,
        run: &Run,
        prepared: &Prepared,
        findings: &mut Findings,
        skip: u64,
    ) -> Result<(), RunError> {
        let container = &prepared.container;
        let pump_task = tokio::spawn(pump(
            self.engine.clone(),
            container.clone(),
            run.recorder.clone(),
            skip,
        ));
        // A container that already ended (a resumed execution) ended on its
        // own: a deadline or cancel that passed meanwhile does not rewrite that.
        let stop = if !self.engine.is_running(container).await? {
            None
        } else {
            tokio::select! {
                exited = self.engine.wait(container) => { exited?; None }
                _ = tokio::time::sleep_until(run.deadline) => Some(Stop::Timeout),
                _ = run.cancel.cancelled() => Some(Stop::Cancel),
                limit = run.budget.tripped() => Some(Stop::Budget(limit)),
            }
        };
        if let Some(stop) = stop {
            run.recorder
                .emit(EventBody::progress(match &stop {
                    Stop::Timeout => "time limit reached: killing the sandbox".to_string(),
                    Stop::Cancel => "cancelled: killing the sandbox".to_string(),
                    Stop::Budget(limit) => format!("{limit}: killing the sandbox"),
                }))
                .await;
            findings.stop = Some(stop);
            self.engine.kill(container).await?;
            let _ =
                tokio::time::timeout(Duration::from_secs(10), self.engine.wait(container)).await;
        }
        let abort = pump_task.abort_handle();
        findings.pumped = match tokio::time::timeout(PUMP_DRAIN, pump_task).await {
            Ok(Ok(pumped)) => pumped,
            Ok(Err(error)) => return Err(RunError::Task(error.to_string())),
            Err(_) => {
                // Stop it: nothing may be recorded after the final status.
                abort.abort();
                run.recorder
                    .emit(EventBody::warning(
                        "the container's output did not end; moving on",
                    ))
                    .await;
                Pumped::default()
            }
        };
        findings.exit = Some(self.engine.exit_state(container).await?);
        if run.record.status != Status::Collecting {
            self.store.transition(&run.id, Status::Collecting).await?;
            run.recorder
                .emit(EventBody::status(Status::Collecting, None))
                .await;
        }
        Ok(())
    }

    /// Brings out the bundle and artifacts (through a collector container if
    /// the agent's could not commit its work), verifies the bundle and computes
    /// the diff on the host. Any failure on the way is kept as the collection's
    /// error: an execution whose work could not be brought back never succeeds.
    async fn collect(
        &self,
        run: &Run,
        sandbox: &mut Sandbox,
        findings: &mut Findings,
        prepared: &Prepared,
    ) {
        if findings.pumped.setup_error.is_some() {
            return;
        }
        let container = &prepared.container;
        let branch = branch_name(&run.id);
        let destination = Destination {
            dir: &run.dir,
            mirror: prepared.mirror.path(),
            base: &prepared.resolved.commit,
            branch: &branch,
            limits: &self.config.verify,
        };
        let mut error = None;
        match collect::outputs(&self.engine, container, &destination).await {
            Ok(outputs) => findings.outputs = outputs,
            Err(failed) => error = Some(format!("collecting the results: {failed}")),
        }
        if !findings.outputs.complete {
            run.recorder
                .emit(EventBody::progress(
                    "committing the agent's work in a collector container",
                ))
                .await;
            match self.run_collector(run, sandbox, prepared).await {
                Ok(collector) => {
                    match collect::outputs(&self.engine, &collector, &destination).await {
                        Ok(outputs) => {
                            findings.outputs = outputs;
                            error = None;
                        }
                        Err(failed) => error = Some(format!("collecting the results: {failed}")),
                    }
                }
                Err(failed) => error = Some(format!("collector container: {failed}")),
            }
            if error.is_none() && !findings.outputs.complete {
                error = Some("the sandbox did not finish committing the agent's work".into());
            }
        }
        let error = error.or_else(|| findings.outputs.error.clone());
        if let Some(error) = &error {
            run.recorder.emit(EventBody::warning(error.clone())).await;
        }
        findings.collect_error = error;
        for note in &findings.outputs.notes {
            run.recorder.emit(EventBody::warning(note.clone())).await;
        }
        for left in &findings.outputs.left_out {
            run.recorder
                .emit(EventBody::warning(match left.reason.as_str() {
                    "too_large_for_diff" => format!(
                        "{} ({} bytes) is in the branch but too large to show in the diff",
                        left.path, left.size
                    ),
                    _ => format!(
                        "{} ({} bytes) was left out: larger than the {} MiB collection limit",
                        left.path,
                        left.size,
                        self.config.max_file_bytes >> 20
                    ),
                }))
                .await;
        }
        match collect::artifacts(
            &self.engine,
            container,
            &run.dir,
            run.record.limits.max_artifact_bytes,
        )
        .await
        {
            Ok(artifacts) => findings.artifacts = artifacts,
            Err(error) => {
                run.recorder
                    .emit(EventBody::warning(format!("collecting artifacts: {error}")))
                    .await
            }
        }
        let refused: Vec<EventBody> = findings
            .outputs
            .refused
            .iter()
            .chain(&findings.artifacts.refused)
            .map(|refused| {
                EventBody::Agentd(SupervisorEvent::Refused {
                    path: refused.path.clone(),
                    reason: refused.reason.clone(),
                })
            })
            .collect();
        run.recorder.record(refused, None).await;
    }

    /// Runs the driver's `collect` mode in a fresh container on the same volume.
    async fn run_collector(
        &self,
        run: &Run,
        sandbox: &mut Sandbox,
        prepared: &Prepared,
    ) -> Result<String, RunError> {
        let name = collector_name(&run.id);
        // A collector left by a previous supervisor is replaced.
        self.engine.remove_container(&name).await?;
        let spec = self.spec(
            run,
            &prepared.mirror,
            &prepared.resolved,
            &prepared.volume,
            driver::collect_command(),
            "collector",
        );
        if !sandbox.containers().contains(&name) {
            sandbox.add_container(&name).await;
        }
        self.engine.create_container(&name, &spec).await?;
        self.engine.start(&name).await?;
        match tokio::time::timeout(self.config.collect_timeout, self.engine.wait(&name)).await {
            Ok(exited) => {
                exited?;
            }
            Err(_) => {
                self.engine.kill(&name).await?;
                run.recorder
                    .emit(EventBody::warning("the collector ran out of time"))
                    .await;
            }
        }
        Ok(name)
    }

    async fn finish(&self, run: Run, findings: Findings) -> Summary {
        let conversation = run.account.conversation();
        let claim = findings.pumped.result.as_ref();
        let collect_error = findings
            .collect_error
            .clone()
            .or_else(|| findings.pumped.collect_error.clone());
        let (status, reason) = verdict::decide(&Observed {
            internal_error: findings.internal_error.clone(),
            stop: findings.stop,
            exit: findings.exit,
            agent_exit: findings.pumped.agent_exit,
            setup_error: findings.pumped.setup_error.clone(),
            collect_error,
            workspace: findings.pumped.workspace,
            conversation: conversation.clone(),
            claim,
        });
        let finished_at = Utc::now();
        let duration_ms = (finished_at - run.started_at).num_milliseconds().max(0) as u64;
        let gateway = run.account.totals();
        let outcome = Outcome {
            status,
            reason: reason.clone(),
            head_commit: findings.outputs.head.clone(),
            session_id: findings.pumped.session_id.clone(),
            num_turns: conversation.answers,
            usage: gateway.usage,
            cost_usd: gateway.cost_usd,
            tool_calls: conversation.tool_uses,
            result: conversation.text.clone(),
            files_changed: findings.outputs.files.clone(),
            exit_code: findings.exit.map(|e| e.exit_code),
            oom_killed: findings.exit.is_some_and(|e| e.oom_killed),
            has_diff: findings.outputs.diff.is_some(),
            has_bundle: findings.outputs.bundle.is_some(),
            artifacts: findings.artifacts.files.clone(),
            duration_ms,
            gateway,
            claimed: claim.map(|claim| AgentClaim {
                subtype: claim.subtype.clone(),
                is_error: claim.is_error,
                num_turns: claim.num_turns,
                usage: claim.usage,
                cost_usd: claim.total_cost_usd,
                tool_calls: findings.pumped.claimed_tool_calls,
                result: claim.result.clone(),
            }),
            conversation,
            left_out: findings.outputs.left_out.clone(),
        };
        let mut attempt = 0;
        let record = loop {
            attempt += 1;
            match self.store.finish(&run.id, &outcome).await {
                Ok(record) => break record,
                Err(error) => {
                    let hopeless = matches!(
                        error,
                        StoreError::IllegalTransition { .. } | StoreError::NotFound(_)
                    );
                    if hopeless || attempt >= FINISH_ATTEMPTS {
                        tracing::error!(%error, execution = %run.id, "cannot store the final status");
                        break run.record.clone();
                    }
                    tracing::warn!(%error, execution = %run.id, "storing the final status, retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        };
        let summary = Summary::from_record(
            &record,
            &outcome,
            &run.dir,
            &findings.outputs.refused,
            &findings.artifacts.refused,
            finished_at,
        );
        if let Err(error) = write_summary(&run.dir.summary(), &summary) {
            run.recorder
                .emit(EventBody::warning(format!(
                    "cannot write summary.json: {error}"
                )))
                .await;
        }
        run.recorder.emit(EventBody::status(status, reason)).await;
        self.hub.close(&run.id);
        crate::metrics::global().execution_finished(status.as_str());
        summary
    }
}

/// The model limits of an execution, for its gateway account.
fn model_limits(record: &ExecutionRecord) -> ModelLimits {
    ModelLimits {
        max_budget_usd: record.agent.max_budget_usd,
        max_tokens: record.limits.max_tokens,
        max_requests: record.limits.max_requests,
        requests_per_minute: record.limits.requests_per_minute,
    }
}

/// The branch holding an execution's work.
pub fn branch_name(id: &str) -> String {
    format!("agent/{id}")
}

pub(crate) fn stop_requested(run: &Run) -> Result<(), RunError> {
    if run.cancel.is_cancelled() {
        return Err(RunError::Stopped(Stop::Cancel));
    }
    if Instant::now() >= run.deadline {
        return Err(RunError::Stopped(Stop::Timeout));
    }
    Ok(())
}

impl Runner {
    /// Waits for a preparation step unless the deadline passes or a cancel arrives.
    pub(crate) async fn interruptible<T>(
        &self,
        run: &Run,
        task: tokio::task::JoinHandle<T>,
    ) -> Result<T, RunError> {
        tokio::select! {
            joined = task => joined.map_err(|e| RunError::Task(e.to_string())),
            _ = tokio::time::sleep_until(run.deadline) => Err(RunError::Stopped(Stop::Timeout)),
            _ = run.cancel.cancelled() => Err(RunError::Stopped(Stop::Cancel)),
        }
    }
}

fn write_summary(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(summary)?)?;
    std::fs::rename(&tmp, path)
}
