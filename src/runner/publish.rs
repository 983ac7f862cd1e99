//! Publishing: the files an execution brought back copied where every
//! replica serves them from (the database or an S3 bucket), before its final
//! status is stored — a final execution's files are there for whoever asks.
//! With local results there is nothing to do.

use crate::execution::EventBody;
use crate::results::ResultFile;

use super::Runner;
use super::run::{Findings, Run};

impl Runner {
    /// Copies the diff, bundle, artifacts, transcript and cassette that exist.
    /// A file that cannot be copied is said in a warning event; the execution
    /// ends as it would have (its files are still in this replica's folder).
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
        for optional in [ResultFile::Transcript, ResultFile::Cassette] {
            if results.local_path(&run.id, &optional).is_file() {
                files.push(optional);
            }
        }
        for file in files {
            self.publish_one(run, &file).await;
        }
    }

    /// Copies one file; a failure becomes a warning event.
    async fn publish_one(&self, run: &Run, file: &ResultFile) {
        if let Err(error) = self.config.results.publish(&run.id, file).await {
            tracing::warn!(%error, file = file.key(), "publishing a result file");
            run.recorder
                .emit(EventBody::warning(format!(
                    "{} is kept only on this replica: {error}",
                    file.key()
                )))
                .await;
        }
    }
}
