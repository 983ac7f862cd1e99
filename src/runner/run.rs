//! One execution's run: its state, its guard (lease heartbeat, panics), and
//! the path from claim (or re-attachment) to conclusion.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{EngineError, ExitState};
use crate::execution::{EventBody, ExecutionRecord, Status, Summary, SupervisorEvent};
use crate::gateway::{Account, GatewayError, Redactor};
use crate::git::{GitError, RepoSource};
use crate::store::StoreError;

use super::layout::ExecutionDir;
use super::lifecycle::{Call, Stage};
use super::pump::Pumped;
use super::recorder::{EventObserver, Recorder};
use super::results::{Artifacts, Outputs};
use super::{Job, Runner, SUPERVISOR_RESTARTED};

use super::finish::model_limits;
use super::sandbox::Sandbox;
use super::verdict::Stop;

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
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// Building a checkout template failed (the execution goes on without).
    #[error("checkout template: {0}")]
    Template(String),
    /// A tenant's repository source failed the fetch-time check.
    #[error("repository: the repository could not be fetched")]
    SourceRefused,
    #[error("stopped")]
    Stopped(Stop),
    /// Another replica holds the lease now: this one stops and leaves the
    /// sandbox to it.
    #[error("the lease went to another replica")]
    LeaseLost,
}

/// What a run learned on its way, for the summary.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub(super) stop: Option<Stop>,
    pub(super) exit: Option<ExitState>,
    pub(super) pumped: Pumped,
    pub(super) outputs: Outputs,
    pub(super) artifacts: Artifacts,
    pub(super) internal_error: Option<String>,
    pub(super) collect_error: Option<String>,
    /// The commit the work started from (for delivery).
    pub(super) base: Option<String>,
    /// The repository as the client gave it, credentials included (a fresh
    /// run's; a resumed one no longer has them).
    pub(super) repo: Option<String>,
}

/// One execution in progress.
pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) record: ExecutionRecord,
    pub(crate) dir: ExecutionDir,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) cancel: CancellationToken,
    pub(crate) deadline: Instant,
    pub(crate) started_at: chrono::DateTime<Utc>,
    /// The execution's account at the gateway.
    pub(crate) account: Arc<Account>,
    /// Tripped by the gateway when a model limit is reached.
    pub(crate) budget: Arc<BudgetStop>,
    /// Until when this replica may take the lease as its own: the start of
    /// the last renewal that succeeded, plus the lease. Past it, another
    /// replica may have taken the execution over without this one hearing.
    pub(crate) lease_valid_until: std::sync::Mutex<Instant>,
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

    pub(super) async fn tripped(&self) -> String {
        self.token.cancelled().await;
        self.limit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "a model limit was reached".into())
    }
}

impl Runner {
    /// Runs a claimed execution to its end. Never fails: every problem becomes a
    /// final status with a reason. Everything it logs is in a span `execution`
    /// carrying the execution's id and tenant (and each phase's own span).
    #[tracing::instrument(name = "execution", skip_all, fields(execution = %job.record.id, tenant = %job.record.tenant_id))]
    pub async fn run(
        &self,
        job: Job,
        observer: Arc<dyn EventObserver>,
        cancel: CancellationToken,
    ) -> Summary {
        let secrets = RepoSource::parse(&job.repo)
            .map(|source| source.secrets())
            .unwrap_or_default();
        let (record, spent) = self.within_conversation(job.record).await;
        let run = self.begin(record, observer, cancel, &secrets);
        self.say_spent(&run, spent).await;
        run.recorder
            .emit(EventBody::status(Status::Preparing, None))
            .await;
        if !run.record.policy.clamped.is_empty() {
            let clamped = run.record.policy.clamped.clone();
            run.recorder
                .emit(EventBody::Agentd(SupervisorEvent::PolicyClamped {
                    clamped,
                }))
                .await;
        }
        let mut sandbox = Sandbox::new(&run.id, self.store.clone());
        let mut findings = Findings {
            repo: Some(job.repo.clone()),
            ..Findings::default()
        };
        let outcome = self
            .guarded(&run, async {
                let prepared = self
                    .stage(
                        &run,
                        Stage::Prepare,
                        self.prepare(&run, &job.repo, &mut sandbox),
                    )
                    .await?;
                self.run_stage(&run, &prepared, &mut findings, 0).await?;
                self.collect_stage(&run, &mut sandbox, &mut findings, &prepared)
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
    #[tracing::instrument(name = "execution", skip_all, fields(execution = %record.id, tenant = %record.tenant_id, resumed = true))]
    pub async fn resume(
        &self,
        record: ExecutionRecord,
        observer: Arc<dyn EventObserver>,
        cancel: CancellationToken,
    ) -> Summary {
        let status = record.status;
        let cursor = record.log_cursor;
        let (record, _) = self.within_conversation(record).await;
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
                self.run_stage(&run, &prepared, &mut findings, cursor)
                    .await?;
                self.collect_stage(&run, &mut sandbox, &mut findings, &prepared)
                    .await;
                Ok(())
            })
            .await;
        self.conclude(run, sandbox, findings, outcome).await
    }

    /// `record` with its model limits less what its conversation's other
    /// steps used, when its policy says they count the whole conversation.
    async fn within_conversation(
        &self,
        mut record: ExecutionRecord,
    ) -> (ExecutionRecord, Option<crate::execution::GatewayUsage>) {
        let spent = self.conversation_spent(&record).await;
        if let Some(spent) = &spent {
            crate::execution::within_conversation(&mut record.execution.request, spent);
        }
        (record, spent)
    }

    async fn say_spent(&self, run: &Run, spent: Option<crate::execution::GatewayUsage>) {
        if let Some(spent) = spent {
            run.recorder
                .emit(EventBody::progress(format!(
                    "the conversation's earlier steps used ${:.4}, {} tokens and {} model requests of its limits",
                    spent.cost_usd.unwrap_or(0.0),
                    spent.usage.total(),
                    spent.requests
                )))
                .await;
        }
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
            self.owner(),
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
        let deadline = Instant::now() + record.request.limits.timeout.saturating_sub(elapsed);
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
            lease_valid_until: std::sync::Mutex::new(Instant::now() + self.config.lease),
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
            _ = self.heartbeat(run) => Ok(Err(RunError::LeaseLost)),
            _ = run.recorder.lease_lost().cancelled() => Ok(Err(RunError::LeaseLost)),
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

    /// Releases the sandbox, then records the final status — while this
    /// replica still holds the lease. One that lost it (or cannot confirm it
    /// still holds it) touches neither: the new holder has re-attached to
    /// the sandbox and finishes the execution.
    async fn conclude(
        &self,
        run: Run,
        mut sandbox: Sandbox,
        mut findings: Findings,
        outcome: Result<(), RunError>,
    ) -> Summary {
        let lost = matches!(outcome, Err(RunError::LeaseLost)) || !self.still_holds(&run).await;
        if lost {
            run.recorder.lose_lease();
            sandbox.leave().await;
            self.hub.close(&run.id);
            return Summary::new(&run.record, &run.dir.result_paths(), Vec::new(), Vec::new());
        }
        match outcome {
            Ok(()) => {}
            Err(RunError::Stopped(stop)) => findings.stop = Some(stop),
            Err(RunError::Restarted(reason)) => findings.internal_error = Some(reason),
            Err(error) => findings.internal_error = Some(self.reason_for(&run, &error)),
        }
        sandbox.release(&self.engine).await;
        self.finish(run, findings).await
    }

    /// Runs one stage of `run`, telling the lifecycle observers before and
    /// after it (or of its failure, in the words the execution records).
    async fn stage<T>(
        &self,
        run: &Run,
        stage: Stage,
        work: impl std::future::Future<Output = Result<T, RunError>>,
    ) -> Result<T, RunError> {
        self.tell(stage, Call::Before, &run.record).await;
        let done = work.await;
        match &done {
            Ok(_) => self.tell(stage, Call::After, &run.record).await,
            Err(error) => {
                let reason = self.reason_for(run, error);
                self.tell(stage, Call::Error(&reason), &run.record).await;
            }
        }
        done
    }

    /// Watches the agent run, telling the lifecycle observers (a setup that
    /// failed in the sandbox is the stage's failure).
    async fn run_stage(
        &self,
        run: &Run,
        prepared: &super::prepare::Prepared,
        findings: &mut Findings,
        cursor: u64,
    ) -> Result<(), RunError> {
        self.tell(Stage::Run, Call::Before, &run.record).await;
        let watched = self.watch(run, prepared, findings, cursor).await;
        let failure = match &watched {
            Err(error) => Some(self.reason_for(run, error)),
            Ok(()) => findings.pumped.setup_error.clone(),
        };
        match failure {
            Some(error) => {
                self.tell(Stage::Run, Call::Error(&error), &run.record)
                    .await
            }
            None => self.tell(Stage::Run, Call::After, &run.record).await,
        }
        watched
    }

    /// Collects, telling the lifecycle observers.
    async fn collect_stage(
        &self,
        run: &Run,
        sandbox: &mut Sandbox,
        findings: &mut Findings,
        prepared: &super::prepare::Prepared,
    ) {
        self.tell(Stage::Collect, Call::Before, &run.record).await;
        self.collect(run, sandbox, findings, prepared).await;
        let error = findings
            .collect_error
            .clone()
            .or_else(|| findings.outputs.error.clone());
        match error {
            Some(error) => {
                self.tell(Stage::Collect, Call::Error(&error), &run.record)
                    .await
            }
            None => self.tell(Stage::Collect, Call::After, &run.record).await,
        }
    }

    /// The reason a failed run records. A tenant learns what it may know: a
    /// fetch that failed says so without git's words (which tell a closed
    /// port from an open one, or an HTTP server from neither); agentd's log
    /// keeps the cause.
    fn reason_for(&self, run: &Run, error: &RunError) -> String {
        let hidden = matches!(
            error,
            RunError::Repo(
                GitError::Command { .. }
                    | GitError::Spawn { .. }
                    | GitError::Io { .. }
                    | GitError::InvalidSource { .. }
            )
        );
        if hidden && !run.record.policy.operator {
            tracing::warn!(%error, "the repository could not be fetched");
            return RunError::SourceRefused.to_string();
        }
        error.to_string()
    }

    /// Renews this execution's lease and picks up cancel requests made through
    /// the store (by another process's API), until dropped; returns when the
    /// lease went to another replica, or when it could not be renewed for a
    /// whole lease (the store unreachable or stalled: another replica may
    /// have taken it over meanwhile, so this one must stop as if it had).
    pub(super) async fn heartbeat(&self, run: &Run) {
        let period = (self.config.lease / 3).max(Duration::from_millis(200));
        loop {
            tokio::time::sleep(period).await;
            match self.renew(run).await {
                Renewal::Held => {}
                Renewal::Lost => {
                    tracing::error!(execution = %run.id, "lost the lease to another supervisor");
                    return;
                }
                Renewal::Unknown if Instant::now() >= valid_until(run) => {
                    tracing::error!(execution = %run.id, lease = ?self.config.lease,
                        "the lease could not be renewed for a whole lease: stopping here");
                    return;
                }
                Renewal::Unknown => {}
            }
        }
    }

    /// One renewal, given at most until the lease runs out; a success moves
    /// [`Run::lease_valid_until`] on and picks up a cancel request.
    async fn renew(&self, run: &Run) -> Renewal {
        let started = Instant::now();
        let renewal = self
            .store
            .take_over(&run.id, self.owner(), self.config.lease);
        let left = valid_until(run).saturating_duration_since(started);
        match tokio::time::timeout(left, renewal).await {
            Ok(Ok(Some(record))) => {
                *run.lease_valid_until
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = started + self.config.lease;
                if record.cancel_requested {
                    run.cancel.cancel();
                }
                Renewal::Held
            }
            Ok(Ok(None)) => Renewal::Lost,
            // A record gone from the store is nobody else's either.
            Ok(Err(StoreError::NotFound(_))) => Renewal::Held,
            Ok(Err(error)) => {
                tracing::warn!(%error, "lease renewal failed");
                Renewal::Unknown
            }
            Err(_) => Renewal::Unknown,
        }
    }

    /// Renews the lease once more before the sandbox is removed: a renewal
    /// that succeeds guarantees nobody else takes the execution over for a
    /// whole lease, which the removal and the final write fit in. A store
    /// that does not answer is not proof of a loss while the last renewal is
    /// less than a lease old; past that, this replica lets go.
    pub(super) async fn still_holds(&self, run: &Run) -> bool {
        for attempt in 0..3u32 {
            match self.renew(run).await {
                Renewal::Held => return true,
                Renewal::Lost => return false,
                Renewal::Unknown if Instant::now() >= valid_until(run) => return false,
                Renewal::Unknown => {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        Instant::now() < valid_until(run)
    }
}

/// What one renewal of the lease found.
enum Renewal {
    /// Still this replica's, for another lease.
    Held,
    /// Another replica's now.
    Lost,
    /// The store did not say (an error, or no answer in time).
    Unknown,
}

fn valid_until(run: &Run) -> Instant {
    *run.lease_valid_until
        .lock()
        .unwrap_or_else(|p| p.into_inner())
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
