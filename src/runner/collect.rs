//! Collecting: bringing the agent's work and artifacts out of the sandbox
//! (through a collector container when the agent's own could not commit) and
//! verifying them on the host.

use crate::execution::{EventBody, SupervisorEvent, collector_name};

use super::Runner;
use super::driver;
use super::prepare::Prepared;
use super::results::{self, Destination};
use super::run::{Findings, Run, RunError};
use super::sandbox::Sandbox;

impl Runner {
    /// Brings out the bundle and artifacts (through a collector container if
    /// the agent's could not commit its work), verifies the bundle and computes
    /// the diff on the host. Any failure on the way is kept as the collection's
    /// error: an execution whose work could not be brought back never succeeds.
    #[tracing::instrument(name = "collect", skip_all)]
    pub(super) async fn collect(
        &self,
        run: &Run,
        sandbox: &mut Sandbox,
        findings: &mut Findings,
        prepared: &Prepared,
    ) {
        tracing::info!("collecting the results");
        findings.base = Some(prepared.resolved.commit.clone());
        if findings.pumped.setup_error.is_some() {
            return;
        }
        let container = &prepared.container;
        let branch = run.record.branch.clone();
        let destination = Destination {
            dir: &run.dir,
            mirror: prepared.mirror.path(),
            base: &prepared.resolved.commit,
            branch: &branch,
            limits: &self.config.verify,
        };
        let mut error = None;
        match results::outputs(&self.engine, container, &destination).await {
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
                    match results::outputs(&self.engine, &collector, &destination).await {
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
        match results::artifacts(
            &self.engine,
            container,
            &run.dir,
            run.record.request.limits.max_artifact_bytes,
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
        self.keep_session(run, container).await;
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

    /// Keeps the agent's session transcript for follow-ups (said in a
    /// warning when it cannot be); the parent's copy this run resumed is
    /// removed.
    async fn keep_session(&self, run: &Run, container: &str) {
        let _ = tokio::fs::remove_dir_all(run.dir.resume()).await;
        let redactor = run.recorder.redactor().clone();
        let kept = results::session(&self.engine, container, &run.dir, &run.id, |text| {
            redactor.redact_str(text)
        })
        .await;
        let warning = match kept {
            Ok(results::SessionKept::Kept(bytes)) => {
                tracing::debug!(bytes, "kept the agent's session");
                None
            }
            Ok(results::SessionKept::Missing) => None,
            Ok(results::SessionKept::TooLarge) => Some(format!(
                "the agent's session is larger than {} MiB and was not kept: a follow-up starts a fresh session",
                crate::agent::claude::session::MAX_SESSION_BYTES >> 20
            )),
            Err(error) => Some(format!("keeping the agent's session: {error}")),
        };
        if let Some(warning) = warning {
            run.recorder.emit(EventBody::warning(warning)).await;
        }
    }

    /// Runs the driver's `collect` mode in a fresh container on the same volume.
    pub(super) async fn run_collector(
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
}
