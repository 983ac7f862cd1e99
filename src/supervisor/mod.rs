//! The long-running supervisor behind `agentd serve`: accepts executions into
//! the store's queue, runs them under a global concurrency cap, re-attaches
//! what a previous process left running, sweeps orphans, and shuts down cleanly.
//!
//! The store is the source of truth: the queue lives there (and so survives a
//! restart), and so does every claim. This module only decides what runs here
//! and when.

pub mod admission;
pub mod governance;
pub mod instance;
mod reconcile;
mod scheduler;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::execution::{ExecutionRecord, Status};
use crate::execution::{ExecutionRequest, FollowUpRequest, InvalidField, Lineage};
use crate::runner::Runner;
use crate::runner::hub::EventHub;
use crate::runner::layout::{DataDir, ExecutionDir};
use crate::store::{CancelOutcome, Created, ListQuery, Store, StoreError};
use crate::tenancy::{PolicyRefusal, Principal};
use governance::GovernanceError;
use instance::SupervisorInstance;

pub use admission::{AdmissionError, Admitted};
pub use reconcile::Reconciled;

/// Settings of the supervisor loop.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Executions running at once on this supervisor. Default: 4.
    pub max_concurrent: usize,
    /// How often the queue is checked even without a wake-up (other replicas may
    /// have freed slots or queued work). Default: 1 s.
    pub poll_interval: Duration,
    /// How often to reconcile with the engine by label. Default: 60 s.
    pub reconcile_interval: Duration,
    /// What SIGTERM does to running executions. Default: detach.
    pub on_shutdown: ShutdownMode,
    /// How long shutdown may take before the process leaves anyway. Default: 10 s.
    pub shutdown_grace: Duration,
    /// How status webhooks are sent.
    pub webhooks: webhooks::WebhookConfig,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            max_concurrent: 4,
            poll_interval: Duration::from_secs(1),
            reconcile_interval: Duration::from_secs(60),
            on_shutdown: ShutdownMode::Detach,
            shutdown_grace: Duration::from_secs(10),
            webhooks: webhooks::WebhookConfig::default(),
        }
    }
}

/// What happens to running executions when the supervisor stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShutdownMode {
    /// Leave them running in their containers; the next start re-attaches them.
    Detach,
    /// Cancel them (kill, collect, `cancelled`) before leaving.
    Cancel,
    /// Let them finish within the grace period, then cancel (kill, collect,
    /// `cancelled`) what is still running: for engines that die with agentd
    /// (a dockerd sidecar in the same pod), where detaching would lose them.
    Drain,
}

/// How long a drain gives the executions it cancels once the grace period
/// is over to be collected and recorded.
pub const DRAIN_CANCEL_ALLOWANCE: Duration = Duration::from_secs(30);

impl SupervisorConfig {
    /// The longest a shutdown takes in this configuration: the grace period,
    /// and in drain mode the cancellation after it.
    pub fn shutdown_budget(&self) -> Duration {
        match self.on_shutdown {
            ShutdownMode::Drain => self.shutdown_grace + DRAIN_CANCEL_ALLOWANCE,
            ShutdownMode::Detach | ShutdownMode::Cancel => self.shutdown_grace,
        }
    }
}

/// What the supervisor refuses, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The request breaks a rule.
    #[error("invalid {0}")]
    Invalid(#[from] InvalidField),
    /// The admins' policy does not admit the request.
    #[error(transparent)]
    Refused(#[from] PolicyRefusal),
    /// The supervisor is shutting down and takes no new work.
    #[error("agentd is shutting down")]
    ShuttingDown,
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Docker engine failed.
    #[error("docker: {0}")]
    Engine(#[from] crate::engine::EngineError),
    /// Where results are kept failed.
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
    /// A delivery could not be tried.
    #[error(transparent)]
    Deliver(#[from] crate::runner::DeliverError),
    /// The agent cannot be spoken to: not in streaming-input mode, or ended.
    #[error("{0}")]
    NotListening(String),
}

impl From<GovernanceError> for SupervisorError {
    fn from(error: GovernanceError) -> Self {
        match error {
            GovernanceError::Refused(refusal) => SupervisorError::Refused(refusal),
            GovernanceError::Store(store) => SupervisorError::Store(store),
        }
    }
}

impl From<AdmissionError> for SupervisorError {
    fn from(error: AdmissionError) -> Self {
        match error {
            AdmissionError::Invalid(invalid) => SupervisorError::Invalid(invalid),
            AdmissionError::Store(store) => SupervisorError::Store(store),
            AdmissionError::Results(results) => SupervisorError::Results(results),
        }
    }
}

/// A running execution on this supervisor.
struct Local {
    cancel: CancellationToken,
}

/// The supervisor. Share it as `Arc<Supervisor>`.
pub struct Supervisor {
    store: Arc<dyn Store>,
    hub: Arc<EventHub>,
    runner: Arc<Runner>,
    /// This supervisor's identity and liveness lock.
    instance: Arc<SupervisorInstance>,
    data_dir: DataDir,
    config: SupervisorConfig,
    local: Mutex<HashMap<String, Local>>,
    /// Repository strings with credentials, for queued executions (never stored).
    credentials: Mutex<HashMap<String, String>>,
    wake: Notify,
    accepting: AtomicBool,
    /// An admin paused claiming on this supervisor.
    paused: AtomicBool,
    /// Held by the scheduler while it claims, so a pause waits for a claim
    /// under way.
    claiming: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    /// The running executions' tasks.
    tasks: tokio_util::task::TaskTracker,
    /// Webhook deliveries in flight per endpoint.
    endpoints: webhooks::Endpoints,
}

impl Supervisor {
    /// A supervisor over `store`, running executions with `runner`.
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<EventHub>,
        runner: Arc<Runner>,
        instance: Arc<SupervisorInstance>,
        data_dir: DataDir,
        config: SupervisorConfig,
    ) -> Arc<Supervisor> {
        Arc::new(Supervisor {
            store,
            hub,
            runner,
            instance,
            data_dir,
            config,
            local: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            accepting: AtomicBool::new(true),
            paused: AtomicBool::new(false),
            claiming: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
            tasks: tokio_util::task::TaskTracker::new(),
            endpoints: webhooks::Endpoints::default(),
        })
    }

    /// Where results are kept.
    pub fn results(&self) -> &crate::results::Results {
        &self.runner.config.results
    }

    /// The operator's key for sealing tenants' stored credentials, when
    /// configured.
    pub fn secret_key(&self) -> Option<&crate::tenancy::SecretKey> {
        self.runner.config.secret_key.as_ref()
    }

    /// Delivers a finished execution of `tenant` to its remote again (after
    /// a failed delivery, or to deliver one that did not ask to be pushed);
    /// answers the record with the new delivery.
    pub async fn redeliver(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<ExecutionRecord, SupervisorError> {
        let record = self
            .store
            .get_execution(Some(tenant), id)
            .await?
            .ok_or_else(|| SupervisorError::Store(StoreError::NotFound(id.to_string())))?;
        Ok(self.runner.redeliver(&record, None).await?)
    }

    /// The settings it runs with.
    pub fn config(&self) -> &SupervisorConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The live event hub.
    pub fn hub(&self) -> &Arc<EventHub> {
        &self.hub
    }

    /// Where an execution's files (diff, bundle, artifacts) are.
    pub fn execution_dir(&self, id: &str) -> ExecutionDir {
        self.data_dir.execution(id)
    }

    /// Cancelled when shutdown begins: long-lived responses (SSE) end on it.
    pub fn shutting_down(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// False once shutdown has begun.
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Pauses or resumes claiming on this supervisor alone: while paused it
    /// claims no queued execution and takes over no abandoned one; what runs
    /// here carries on, and other replicas claim as before. For maintenance
    /// of one replica, and to drain it before it stops.
    /// Once it returns, nothing more is claimed here (a claim under way has
    /// ended, and what it claimed counts in [`Supervisor::running`]).
    pub async fn pause_here(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        drop(self.claiming.lock().await);
        self.wake.notify_one();
    }

    /// Whether claiming is paused on this supervisor.
    pub fn paused_here(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Wakes the scheduler (claiming resumed everywhere, say).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// This supervisor's id (the owner of what it runs).
    pub fn replica_id(&self) -> &str {
        self.instance.id()
    }

    /// The most executions this supervisor runs at once.
    pub fn max_concurrent(&self) -> usize {
        self.config.max_concurrent
    }

    /// Number of executions running on this supervisor.
    pub fn running(&self) -> usize {
        self.local.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Checks the database and the Docker engine answer (for `/readyz`).
    pub async fn ready(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())?;
        self.runner
            .engine()
            .list_managed(Some("readyz-probe"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Validates and queues an execution for `principal`: a tenant's key
    /// submits under the admins' policy; the local operator (no key) is not
    /// governed. With an idempotency key already used for the same request,
    /// returns that execution instead.
    pub async fn submit(
        &self,
        principal: &Principal,
        request: ExecutionRequest,
        idempotency_key: Option<String>,
    ) -> Result<Created, SupervisorError> {
        self.admit(principal, request, idempotency_key, None).await
    }

    /// Queues a follow-up of execution `parent_id` of `principal`'s tenant
    /// (404 for another tenant's): the parent's request with this step's
    /// prompt and changes, admitted and governed like any request. It waits
    /// in the queue while its parent runs.
    pub async fn follow_up(
        &self,
        principal: &Principal,
        parent_id: &str,
        follow_up: FollowUpRequest,
        idempotency_key: Option<String>,
    ) -> Result<Created, SupervisorError> {
        let tenant = match principal {
            Principal::Tenant { tenant, .. } => Some(tenant.as_str()),
            _ => None,
        };
        let parent = self
            .store
            .get_execution(tenant, parent_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(parent_id.to_string()))?;
        let lineage = Lineage::of(&parent);
        let request = follow_up.onto(&parent.request);
        self.admit(principal, request, idempotency_key, Some(lineage))
            .await
    }

    /// Accepts a message or an interrupt for the running agent of
    /// streaming execution `id` of `tenant`: stored, delivered in order by
    /// whichever replica holds the execution (at once when it is this one).
    /// Answers the input's number.
    pub async fn say(
        &self,
        tenant: &str,
        id: &str,
        kind: crate::execution::InputKind,
        text: &str,
        sender: &str,
    ) -> Result<u64, SupervisorError> {
        let record = self
            .store
            .get_execution(Some(tenant), id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if !record.request.streaming_input {
            return Err(SupervisorError::NotListening(format!(
                "execution {id} was not started with `streaming_input`: its agent reads no input"
            )));
        }
        if record.status.is_final() {
            return Err(SupervisorError::NotListening(format!(
                "execution {id} has ended ({})",
                record.status
            )));
        }
        if kind == crate::execution::InputKind::Message {
            if text.trim().is_empty() {
                return Err(InvalidField {
                    field: "text",
                    rule: "must not be empty".into(),
                }
                .into());
            }
            if text.len() > crate::execution::MAX_MESSAGE_BYTES || text.contains('\0') {
                return Err(InvalidField {
                    field: "text",
                    rule: format!(
                        "must be at most {} bytes, without NUL characters",
                        crate::execution::MAX_MESSAGE_BYTES
                    ),
                }
                .into());
            }
        }
        let Some(seq) = self.store.add_input(id, kind, text, sender).await? else {
            return Err(SupervisorError::NotListening(format!(
                "execution {id}'s agent no longer reads input (it reported its result, or ended)"
            )));
        };
        self.runner.nudge_input(id);
        Ok(seq)
    }

    async fn admit(
        &self,
        principal: &Principal,
        request: ExecutionRequest,
        idempotency_key: Option<String>,
        lineage: Option<Lineage>,
    ) -> Result<Created, SupervisorError> {
        if !self.accepting() {
            return Err(SupervisorError::ShuttingDown);
        }
        let Principal::Tenant { tenant, key_id } = principal else {
            return Err(SupervisorError::Invalid(InvalidField {
                field: "tenant",
                rule: "executions belong to tenants; the admin credential cannot submit".into(),
            }));
        };
        let governed = key_id.is_some();
        let policy = if governed {
            let policy = governance::effective_policy(self.store.as_ref(), tenant).await?;
            governance::precheck_repo(&policy, &request.repo)?;
            Some(policy)
        } else {
            None
        };
        if let Some(replay) = &request.replay {
            admission::check_replay(self.store.as_ref(), self.results(), tenant, replay).await?;
        }
        let Admitted { mut new, repo } = admission::admit(request, tenant, idempotency_key)
            .map_err(|invalid| match invalid.field {
                // Parsing a path asked the host; its answer is not the tenant's.
                "repo" if governed => {
                    SupervisorError::Refused(PolicyRefusal::source("sources.local_paths"))
                }
                _ => SupervisorError::Invalid(invalid),
            })?;
        new.lineage = lineage;
        let location = new.request.repo.clone();
        if let Some(policy) = &policy {
            let applied = governance::govern(
                self.store.as_ref(),
                tenant,
                policy,
                &mut new.request,
                &location,
                &self.runner.server_sandbox(),
                chrono::Utc::now(),
            )
            .await?;
            for clamp in &applied.policy.clamped {
                crate::metrics::global().policy_clamped(&clamp.field);
            }
            new.policy = applied.policy;
        }
        let created = self.store.create_execution(new).await?;
        if !created.existing && repo != location {
            self.credentials
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(created.record.id.clone(), repo);
        }
        self.wake.notify_one();
        Ok(created)
    }

    /// Cancels an execution of `tenant`: a queued one never starts, a running
    /// one here is killed within moments, one running elsewhere is flagged
    /// for its owner.
    pub async fn cancel(&self, tenant: &str, id: &str) -> Result<ExecutionRecord, SupervisorError> {
        let outcome = self.store.request_cancel(Some(tenant), id).await?;
        if outcome == CancelOutcome::CancelledWhileQueued {
            // Only the request that moved it out of the queue gets this
            // outcome, so the transition is counted once — here, at once,
            // before anything else can fail or the request be dropped.
            crate::metrics::global().execution_ended_unstarted(tenant, Status::Cancelled.as_str());
            self.credentials
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
        if outcome == CancelOutcome::Requested
            && let Some(local) = self.local.lock().unwrap_or_else(|p| p.into_inner()).get(id)
        {
            local.cancel.cancel();
        }
        self.store
            .get_execution(Some(tenant), id)
            .await?
            .ok_or_else(|| SupervisorError::Store(StoreError::NotFound(id.to_string())))
    }

    /// Cancels every execution of `tenant` that has not ended (a disabled
    /// tenant spends nothing more). Statuses are read in life-cycle order,
    /// so one that moves on meanwhile was already asked to stop. Returns how
    /// many were.
    pub async fn cancel_tenant(&self, tenant: &str) -> Result<usize, SupervisorError> {
        let mut cancelled = 0;
        for status in Status::ALL.into_iter().filter(|s| !s.is_final()) {
            let mut cursor = None;
            loop {
                let page = self
                    .store
                    .list_executions(&ListQuery {
                        tenant_id: Some(tenant.to_string()),
                        status: Some(status),
                        repo: None,
                        limit: 200,
                        cursor,
                    })
                    .await?;
                for record in &page.items {
                    self.cancel(tenant, &record.id).await?;
                    cancelled += 1;
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(cancelled)
    }

    /// Starts the scheduler and reconcile loops. Call once.
    pub async fn start(self: &Arc<Self>) -> Result<Reconciled, SupervisorError> {
        let reconciled = self.reconcile().await?;
        tokio::spawn(self.clone().schedule());
        tokio::spawn(self.clone().reconcile_periodically());
        tokio::spawn(self.clone().take_over_periodically());
        tokio::spawn(self.clone().send_webhooks());
        Ok(reconciled)
    }

    /// The first step of [`Supervisor::shutdown`], which needs no waiting:
    /// new submissions are refused (503), nothing more is claimed, live
    /// streams end. Running executions are left as they are.
    pub fn stop_taking_work(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        self.shutdown.cancel();
    }

    /// Stops taking work and ends live streams. Running executions are then
    /// detached (left running in their containers, to be re-attached by the next
    /// start; returns at once), in cancel mode cancelled and waited for within
    /// the grace period, or in drain mode waited for within the grace period
    /// and then cancelled.
    pub async fn shutdown(&self) {
        self.stop_taking_work();
        let grace = self.config.shutdown_grace;
        match self.config.on_shutdown {
            ShutdownMode::Detach => {
                if self.running() > 0 {
                    self.instance.detach();
                }
            }
            ShutdownMode::Cancel => self.cancel_local(grace).await,
            ShutdownMode::Drain => {
                self.tasks.close();
                let running = self.running();
                if running > 0 {
                    tracing::info!(running, ?grace, "draining: running executions may finish");
                }
                if tokio::time::timeout(grace, self.tasks.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        running = self.running(),
                        "drain grace period over; cancelling what still runs"
                    );
                    self.cancel_local(DRAIN_CANCEL_ALLOWANCE).await;
                }
            }
        }
    }

    /// Cancels every execution running here and waits up to `within` for
    /// them to be collected and recorded.
    async fn cancel_local(&self, within: Duration) {
        for local in self
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            local.cancel.cancel();
        }
        self.tasks.close();
        if tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; leaving the rest detached");
        }
    }
}
