//! Making the engine and the store agree: at start-up and on a timer.
//!
//! - A live execution in the store that nobody holds any more (its lease ran
//!   out, or its holder is provably dead: `dead_holder`) is taken over and
//!   resumed: a running container is re-attached, an exited one collected, one caught while
//!   preparing ends as `failed` with reason `supervisor_restarted`.
//! - A labelled container or volume whose execution is final (or unknown to
//!   the store and owned by a dead supervisor of this host) is removed, and so
//!   are dead supervisors' socket folders and lock files in the run directory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Supervisor, SupervisorError};
use crate::engine::{Engine, EngineError, ManagedResource, ManagedResources};
use crate::execution::ExecutionRecord;
use crate::execution::Status;
use crate::metrics::Removal;
use crate::runner::sweep_workspaces;

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Executions taken over and resumed.
    pub resumed: Vec<String>,
    /// Containers removed.
    pub containers_removed: usize,
    /// Volumes removed.
    pub volumes_removed: usize,
}

impl Supervisor {
    /// One reconciliation pass.
    pub async fn reconcile(self: &Arc<Self>) -> Result<Reconciled, SupervisorError> {
        self.hub.prune();
        let mut reconciled = Reconciled::default();
        let engine = self.runner.engine();
        let managed = engine.list_managed(None).await?;
        let live = self.store.live_executions().await?;
        reconciled.resumed = self.take_over_abandoned(&live, &managed).await?;

        let live_ids: HashSet<&str> = live.iter().map(|r| r.id.as_str()).collect();
        let mut known: HashMap<String, Option<Status>> = HashMap::new();
        let mut orphans = ManagedResources::default();
        for (resource, is_container) in managed
            .containers
            .iter()
            .map(|r| (r, true))
            .chain(managed.volumes.iter().map(|r| (r, false)))
        {
            if self.is_orphan(resource, &live_ids, &mut known).await? {
                if is_container {
                    orphans.containers.push(resource.clone());
                } else {
                    orphans.volumes.push(resource.clone());
                }
            }
        }
        for error in remove_orphans(engine, &orphans).await {
            tracing::warn!(%error, "removing an orphan");
        }
        let live_set: HashSet<String> = live_ids.iter().map(|id| id.to_string()).collect();
        let released = sweep_workspaces(engine, &self.runner.config.data_dir, &live_set).await;
        // What dead supervisors of this run directory left (socket folders,
        // lock files), except what executions taken over still mount.
        self.instance.remove_dead_socket_dirs(&live_set);
        if !released.is_empty() {
            tracing::info!(?released, "released orphaned workspace filesystems");
        }
        crate::metrics::global().reconcile_removed(Removal::Workspace, released.len());
        reconciled.containers_removed = orphans.containers.len();
        reconciled.volumes_removed = orphans.volumes.len();
        if !orphans.is_empty() {
            tracing::info!(?orphans, "removed orphaned resources");
        }
        Ok(reconciled)
    }

    /// Takes over and resumes the live executions whose holder is gone (see
    /// [`Supervisor::dead_holder`]); answers their ids. Cheap enough to run
    /// every lease (the engine's list and the live executions).
    async fn take_over_abandoned(
        self: &Arc<Self>,
        live: &[ExecutionRecord],
        managed: &ManagedResources,
    ) -> Result<Vec<String>, SupervisorError> {
        // A replica an admin paused (draining) takes over nothing: others do.
        if self.paused_here() {
            return Ok(Vec::new());
        }
        // One pass at a time, never between the scheduler's claim and its
        // launch (it holds this lock across both): an attempt just claimed
        // here is local before this pass looks at it.
        let _claiming = self.claiming.lock().await;
        let owner = self.runner.owner().to_string();
        let lease = self.runner.config.lease;
        let mut resumed = Vec::new();
        for record in live {
            if self.is_local(&record.id) {
                continue;
            }
            let taken = match self.dead_holder(record, managed) {
                Some(previous) => {
                    self.store
                        .take_over_from(&record.id, &previous, &owner, lease)
                        .await?
                }
                // Only a lease that has run out is worth a write.
                None if held_by_another(record, &owner) => None,
                None => self.store.take_over(&record.id, &owner, lease).await?,
            };
            if let Some(taken) = taken {
                if self.is_local(&taken.id) {
                    continue;
                }
                if let Some(why) = crate::runner::lost_attempt(&taken, managed)
                    && self.runner.requeue(&taken, &why).await?
                {
                    self.wake.notify_one();
                    continue;
                }
                tracing::info!(execution = %taken.id, status = %taken.status, "resuming");
                resumed.push(taken.id.clone());
                self.launch(taken, true);
            }
        }
        Ok(resumed)
    }

    /// The takeover pass alone, every lease: a dead holder's work is resumed
    /// within about two leases, not at the next full reconciliation.
    pub(super) async fn take_over_periodically(self: Arc<Self>) {
        let period = self.runner.config.lease.min(self.config.reconcile_interval);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
            let pass = async {
                let managed = self.runner.engine().list_managed(None).await?;
                let live = self.store.live_executions().await?;
                self.take_over_abandoned(&live, &managed).await
            };
            if let Err(error) = pass.await {
                tracing::warn!(%error, "taking over abandoned executions failed");
            }
        }
    }

    /// The holder of a live execution when it is provably dead — its
    /// container is on this engine and its lock on this host and run
    /// directory is free — so the execution is taken over at once, whatever
    /// the lease says. Any other execution is taken over once its lease has
    /// run out (one this supervisor owned before a restart, or nobody holds,
    /// at once), whatever host or run directory held it: the store fences a
    /// holder that lost its lease, so it can no longer write nor remove the
    /// sandbox. With the takeover pass every lease, a dead holder's work moves
    /// within about two leases.
    fn dead_holder(&self, record: &ExecutionRecord, managed: &ManagedResources) -> Option<String> {
        let previous = record.owner.clone()?;
        let instance = &self.instance;
        let here = instance.owner();
        let local_and_dead = managed
            .containers
            .iter()
            .chain(&managed.volumes)
            .filter(|r| r.execution.as_deref() == Some(record.id.as_str()))
            .any(|r| {
                r.host.as_deref() == Some(here.host.as_str())
                    && r.run_dir.as_deref() == Some(here.run_dir.as_str())
                    && r.supervisor.as_deref().is_some_and(|s| instance.is_dead(s))
            });
        local_and_dead.then_some(previous)
    }

    fn is_local(&self, id: &str) -> bool {
        self.local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// An orphan: its execution is final in the store, or unknown to the store
    /// and left by a dead supervisor of this host and run directory.
    async fn is_orphan(
        &self,
        resource: &ManagedResource,
        live: &HashSet<&str>,
        known: &mut HashMap<String, Option<Status>>,
    ) -> Result<bool, SupervisorError> {
        let Some(execution) = resource.execution.as_deref() else {
            return Ok(false);
        };
        if live.contains(execution) || self.is_local(execution) {
            return Ok(false);
        }
        let status = match known.get(execution) {
            Some(status) => *status,
            None => {
                let status = self
                    .store
                    .get_execution(None, execution)
                    .await?
                    .map(|record| record.status);
                known.insert(execution.to_string(), status);
                status
            }
        };
        match status {
            // Nothing final needs a sandbox.
            Some(status) if status.is_final() => return Ok(true),
            // Live (claimed since the list was read) or queued: not ours to judge.
            Some(_) => return Ok(false),
            None => {}
        }
        let instance = &self.instance;
        let owner = instance.owner();
        Ok(resource.host.as_deref() == Some(owner.host.as_str())
            && resource.run_dir.as_deref() == Some(owner.run_dir.as_str())
            && resource
                .supervisor
                .as_deref()
                .is_some_and(|s| instance.is_dead(s)))
    }

    /// Reconciles every `reconcile_interval` until shutdown.
    pub(super) async fn reconcile_periodically(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.reconcile_interval) => {}
            }
            if let Err(error) = self.reconcile().await {
                tracing::warn!(%error, "reconciliation failed");
            }
        }
    }
}

/// Whether someone other than `me` holds `record` with a lease that has not
/// run out yet (as far as this host's clock tells; the store decides).
fn held_by_another(record: &ExecutionRecord, me: &str) -> bool {
    record.owner.as_deref().is_some_and(|owner| owner != me)
        && record
            .lease_expires_at
            .is_some_and(|expiry| expiry >= chrono::Utc::now())
}

/// Removes orphaned containers, then volumes, counting what went by kind;
/// answers what could not be removed.
pub(super) async fn remove_orphans(
    engine: &Engine,
    orphans: &ManagedResources,
) -> Vec<EngineError> {
    let containers = ManagedResources {
        containers: orphans.containers.clone(),
        volumes: Vec::new(),
    };
    let volumes = ManagedResources {
        containers: Vec::new(),
        volumes: orphans.volumes.clone(),
    };
    let metrics = crate::metrics::global();
    let mut failed = Vec::new();
    for (kind, resources, total) in [
        (Removal::Container, &containers, orphans.containers.len()),
        (Removal::Volume, &volumes, orphans.volumes.len()),
    ] {
        let errors = engine.remove_all(resources).await;
        metrics.reconcile_removed(kind, total.saturating_sub(errors.len()));
        failed.extend(errors);
    }
    failed
}
