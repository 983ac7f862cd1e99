//! Claiming queued executions (FIFO, from the store) while there is room under
//! the concurrency cap, and running each on its own task.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Local, Supervisor};
use crate::execution::ExecutionRecord;
use crate::runner::{Job, Silent};

impl Supervisor {
    /// The scheduler loop: runs until shutdown.
    pub(super) async fn schedule(self: Arc<Self>) {
        loop {
            while self.accepting() && self.running() < self.config.max_concurrent {
                let _claiming = self.claiming.lock().await;
                if self.paused_here() {
                    break;
                }
                match self
                    .store
                    .claim_next(self.runner.owner(), self.runner_lease())
                    .await
                {
                    Ok(Some(record)) => {
                        let waited = (chrono::Utc::now() - record.created_at)
                            .to_std()
                            .unwrap_or_default();
                        crate::metrics::global().execution_claimed(&record.tenant_id, waited);
                        self.launch(record, false)
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "claiming queued work failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    fn runner_lease(&self) -> std::time::Duration {
        self.runner.config.lease
    }

    /// Runs (or, with `resume`, re-attaches) one execution on a tracked task.
    pub(super) fn launch(self: &Arc<Self>, record: ExecutionRecord, resume: bool) {
        let id = record.id.clone();
        let cancel = CancellationToken::new();
        {
            let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
            if local.contains_key(&id) {
                return;
            }
            local.insert(
                id.clone(),
                Local {
                    cancel: cancel.clone(),
                },
            );
        }
        let repo = self
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .unwrap_or_else(|| record.request.repo.clone());
        let me = self.clone();
        self.tasks.spawn(async move {
            // However the run ends (even by a panic past the runner's guard), the
            // slot is freed and the scheduler woken.
            let _slot = Slot {
                supervisor: me.clone(),
                id: id.clone(),
            };
            let summary = if resume {
                me.runner.resume(record, Arc::new(Silent), cancel).await
            } else {
                me.runner
                    .run(Job { record, repo }, Arc::new(Silent), cancel)
                    .await
            };
            tracing::info!(execution = %summary.id, status = %summary.status, "execution ended");
        });
    }
}

/// A running execution's place under the cap, given back when dropped.
struct Slot {
    supervisor: Arc<Supervisor>,
    id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.supervisor
            .local
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        self.supervisor.wake.notify_one();
    }
}
