//! Another attempt for an execution whose engine was lost: when a replica's
//! pod or node vanished without draining, the replica that takes the
//! execution over finds no container of it on its own engine. If the request
//! allows `retries`, the execution goes back to the queue (from the start, on
//! whichever replica claims it) instead of ending `failed` with reason
//! `engine_lost`.

use super::Runner;
use super::sandbox::Sandbox;
use crate::engine::ManagedResources;
use crate::execution::{EventBody, ExecutionRecord, Status};
use crate::store::{ResourceKind, StoreError};

/// The reason an execution ends with when the engine running it is gone.
pub const ENGINE_LOST: &str = "engine_lost";

/// Why `record`, just taken over, cannot continue on this engine, when it
/// cannot: caught while preparing (nothing to re-attach), or its container
/// is not on this engine (`managed`: what this engine holds).
pub fn lost_attempt(record: &ExecutionRecord, managed: &ManagedResources) -> Option<String> {
    // A cancel asked for, or an attempt already being collected (its holder
    // removed the container and died recording the end), is finished by
    // resuming it, never run again.
    if record.cancel_requested || record.status == Status::Collecting {
        return None;
    }
    if record.status == Status::Preparing {
        return Some(format!(
            "{}: its supervisor stopped while preparing",
            super::SUPERVISOR_RESTARTED
        ));
    }
    let here = managed
        .containers
        .iter()
        .any(|c| c.execution.as_deref() == Some(record.id.as_str()));
    (!here).then(engine_lost)
}

/// The reason of an execution whose container is not on this engine.
pub fn engine_lost() -> String {
    format!(
        "{ENGINE_LOST}: its container is not on this replica's engine (the pod or node that ran it is gone)"
    )
}

impl Runner {
    /// Queues `record` (held by this runner, taken over) again for another
    /// attempt when its request's `retries` allow: what this engine holds of
    /// it is removed, a `queued` status event says why. False when no retry
    /// is left, a cancel was asked for, the attempt's container was already
    /// removed by its holder (its work was being collected), or the execution
    /// is no longer this runner's: the caller resumes it, and it ends as it
    /// must.
    pub async fn requeue(&self, record: &ExecutionRecord, why: &str) -> Result<bool, StoreError> {
        if record.retried >= record.request.retries || record.cancel_requested {
            return Ok(false);
        }
        let id = &record.id;
        let records = self.store.resources(id).await?;
        let collected = records
            .iter()
            .any(|r| r.kind == ResourceKind::Container && r.removed_at.is_some());
        if collected {
            return Ok(false);
        }
        let mut sandbox = Sandbox::from_records(id, self.store.clone(), &records);
        let image = crate::engine::workspace::image_path(&self.config.data_dir.workspaces(), id);
        if image.exists() {
            sandbox.set_disk(image);
        }
        sandbox.release(&self.engine).await;
        let reason = format!(
            "{why}; queued again (retry {} of {})",
            record.retried + 1,
            record.request.retries
        );
        let events = self
            .store
            .append_events(
                id,
                self.owner(),
                &[EventBody::status(Status::Queued, Some(reason))],
                None,
            )
            .await?;
        let requeued = self.store.requeue(id, self.owner()).await?;
        if requeued.is_some() {
            for event in &events {
                self.hub.publish(id, event);
            }
            tracing::warn!(execution = %id, %why, "queued again after its engine was lost");
        }
        Ok(requeued.is_some())
    }
}
