//! Watching a running sandbox: re-attaching to one a previous supervisor left,
//! pumping its output into events, and stopping it at the time limit, on
//! cancel, or when the gateway trips a model limit.

use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use crate::execution::{EventBody, Status, container_name};
use crate::git::{RepoSource, ResolvedRef};

use super::prepare::Prepared;
use super::pump::{Pumped, pump};
use super::run::{Findings, Run, RunError};
use super::sandbox::Sandbox;
use super::verdict::Stop;
use super::{Runner, SUPERVISOR_RESTARTED};

/// How long the output pump may take to record what the container printed
/// before it stopped (its store writes can lag behind the container).
const PUMP_DRAIN: Duration = Duration::from_secs(120);

impl Runner {
    /// Finds what a previous supervisor prepared for this execution.
    pub(super) async fn reattach(
        &self,
        run: &Run,
        sandbox: &Sandbox,
    ) -> Result<Prepared, RunError> {
        let restarted = |why: &str| RunError::Restarted(format!("{SUPERVISOR_RESTARTED}: {why}"));
        let container = container_name(&run.id);
        if !sandbox.containers().contains(&container) {
            return Err(restarted("its container was never created"));
        }
        if self.engine.exit_state(&container).await.is_err() {
            return Err(RunError::Restarted(super::engine_lost()));
        }
        let source = RepoSource::parse(&run.record.request.repo)?;
        let mirrors = self.mirrors.for_tenant(&run.record.tenant_id);
        let mirror = match mirrors.existing(&source) {
            Some(mirror) => mirror,
            // Taken over from a replica with its own data directory: the
            // mirror (which holds the base commit the bundle is checked
            // against) is fetched again, vetted as the first fetch was. A
            // source whose credentials only the first replica held cannot be.
            None => {
                run.recorder
                    .emit(EventBody::progress(format!(
                        "fetching {} again: this replica has no mirror of it",
                        source.location()
                    )))
                    .await;
                let gone = |error: RunError| {
                    tracing::warn!(%error, "fetching the mirror again");
                    restarted("its repository mirror is gone and could not be fetched again")
                };
                self.sync_mirror(run, &source).await.map_err(gone)?
            }
        };
        let commit = run
            .record
            .base_commit
            .clone()
            .ok_or_else(|| restarted("its base commit was not recorded"))?;
        // A follow-up's base is its parent's work, which only the mirror of
        // the replica that started it holds: adopted again where it is missing.
        if run.record.parent_id.is_some()
            && !mirror.has_commit(&commit)?
            && let Some(parent) = self.parent_of(run).await?
        {
            self.parent_commit(run, &parent, &mirror).await?;
        }
        Ok(Prepared {
            mirror,
            resolved: ResolvedRef {
                name: run.record.request.git_ref.clone().unwrap_or_default(),
                commit,
            },
            volume: crate::execution::volume_name(&run.id),
            container,
            // The attachment of a previous process is gone with it, and
            // with it the agent's input (closed when it let go).
            input: std::sync::Mutex::new(None),
        })
    }

    /// Waits for the agent to finish (or the limit, or a cancel), pumping its
    /// output from line `skip` on.
    #[tracing::instrument(name = "watch", skip_all)]
    pub(super) async fn watch(
        &self,
        run: &Run,
        prepared: &Prepared,
        findings: &mut Findings,
        skip: u64,
    ) -> Result<(), RunError> {
        tracing::info!("watching the agent");
        let container = &prepared.container;
        let input = self.open_input(run, prepared).await;
        // Aborted if the watch is dropped (the lease went elsewhere): a pump
        // left running would record the container's lines a second time
        // beside the one that resumes the execution.
        let mut pump_task =
            AbortOnDropHandle::new(tokio::spawn(tracing::Instrument::in_current_span(pump(
                self.engine.clone(),
                container.clone(),
                run.recorder.clone(),
                skip,
                run.record.request.hooks.clone(),
                input.channel(),
            ))));
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
        findings.pumped = match tokio::time::timeout(PUMP_DRAIN, &mut pump_task).await {
            Ok(Ok(pumped)) => pumped,
            Ok(Err(error)) => return Err(RunError::Task(error.to_string())),
            Err(_) => {
                // Stop it: nothing may be recorded after the final status.
                pump_task.abort();
                run.recorder
                    .emit(EventBody::warning(
                        "the container's output did not end; moving on",
                    ))
                    .await;
                Pumped::default()
            }
        };
        findings.exit = Some(self.engine.exit_state(container).await?);
        if run.record.request.streaming_input {
            // Nothing reads the input any more: later messages are refused.
            super::input::close_input(
                self.store.as_ref(),
                &run.recorder,
                &run.id,
                "the agent ended",
            )
            .await;
        }
        if run.record.status != Status::Collecting {
            self.store
                .transition(&run.id, self.owner(), Status::Collecting)
                .await?;
            run.recorder
                .emit(EventBody::status(Status::Collecting, None))
                .await;
        }
        Ok(())
    }
}
