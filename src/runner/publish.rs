//! Publishing: the files an execution brought back copied where every
//! replica serves them from (the database or an S3 bucket), before its final
//! status is stored — a final execution's files are there for whoever asks.
//! With local results there is nothing to do.

use crate::execution::EventBody;
use crate::results::{ResultFile, ResultsError};

use super::Runner;
use super::fence::LeaseFence;
use super::run::{Findings, Run};

impl Runner {
    /// Copies the diff, bundle, artifacts, transcript and cassette that exist.
    /// A file that cannot be copied is said in a warning event; the execution
    /// ends as it would have (its files are still in this replica's folder).
    /// Each copy replaces what is stored only while the lease is held; once
    /// it is another replica's, nothing more is copied.
    pub(super) async fn publish(&self, run: &Run, findings: &Findings) {
        let results = &self.config.results;
        if !results.is_shared() {
            return;
        }
        let mut files = Vec::new();
        if findings.outputs.diff.is_some() {
            files.push(ResultFile::Diff);
        }
        if findings.outputs.bundle.is_some() {
            files.push(ResultFile::Bundle);
        }
        files.extend(
            findings
                .artifacts
                .files
                .iter()
                .map(|artifact| ResultFile::Artifact(artifact.path.clone())),
        );
        for optional in [
            ResultFile::Transcript,
            ResultFile::Cassette,
            ResultFile::Session,
        ] {
            if results.local_path(&run.id, &optional).is_file() {
                files.push(optional);
            }
        }
        for file in files {
            if !self.publish_one(run, &file).await {
                return;
            }
        }
    }

    /// Copies one file; a failure becomes a warning event. False when the
    /// execution is another replica's now.
    async fn publish_one(&self, run: &Run, file: &ResultFile) -> bool {
        let fence = LeaseFence { runner: self, run };
        match self.config.results.publish(&run.id, file, &fence).await {
            Ok(()) => true,
            Err(error @ ResultsError::Fenced { .. }) => {
                tracing::error!(%error, execution = %run.id, "stopped publishing");
                false
            }
            Err(error) => {
                self.warn_unpublished(run, file, &error).await;
                true
            }
        }
    }

    async fn warn_unpublished(&self, run: &Run, file: &ResultFile, error: &ResultsError) {
        tracing::warn!(%error, file = file.key(), "publishing a result file");
        run.recorder
            .emit(EventBody::warning(format!(
                "{} is kept only on this replica: {error}",
                file.key()
            )))
            .await;
    }
}
