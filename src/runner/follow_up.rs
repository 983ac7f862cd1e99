//! Starting a follow-up where its parent ended: from the parent's last commit
//! (its verified bundle adopted into the mirror), with the parent's session
//! transcript placed where the CLI resumes it.

use crate::agent::claude::session::{RESUME_MOUNT, SESSION_FILE, is_session_id};
use crate::engine::Bind;
use crate::execution::{EventBody, ExecutionRecord};
use crate::git::{Mirror, ResolvedRef};
use crate::results::ResultFile;

use super::Runner;
use super::run::{Run, RunError};

/// What a follow-up takes from its parent.
pub(crate) struct Continued {
    /// Where the follow-up starts: the parent's last commit, when it has one.
    pub(crate) start: Option<ResolvedRef>,
    /// The parent's session to resume, and the read-only bind holding its
    /// transcript; none when the parent left no session.
    pub(crate) session: Option<(String, Bind)>,
}

impl Runner {
    /// What the other steps of `record`'s conversation used, as the gateway
    /// metered it, when its policy counts model limits over the whole
    /// conversation and it is a follow-up; `None` otherwise.
    pub(crate) async fn conversation_spent(
        &self,
        record: &ExecutionRecord,
    ) -> Option<crate::execution::GatewayUsage> {
        if !record.policy.conversation_budget || record.parent_id.is_none() {
            return None;
        }
        let steps = match self
            .store
            .conversation(&record.tenant_id, &record.conversation_id)
            .await
        {
            Ok(steps) => steps,
            Err(error) => {
                tracing::warn!(%error, "reading the conversation's spend");
                return None;
            }
        };
        let mut spent = crate::execution::GatewayUsage::default();
        for step in steps.iter().filter(|step| step.id != record.id) {
            spent.requests = spent.requests.saturating_add(step.gateway.requests);
            spent.usage.add(&step.gateway.usage);
            spent.cost_usd =
                Some(spent.cost_usd.unwrap_or(0.0) + step.gateway.cost_usd.unwrap_or(0.0));
        }
        Some(spent)
    }

    /// The parent of `run` (a follow-up), as the store has it now.
    pub(crate) async fn parent_of(&self, run: &Run) -> Result<Option<ExecutionRecord>, RunError> {
        let Some(parent) = &run.record.parent_id else {
            return Ok(None);
        };
        Ok(self.store.get_execution(None, parent).await?)
    }

    /// Brings what `run` continues from its `parent` into place: the
    /// parent's commit into `mirror`, its transcript into this execution's
    /// folder. What the parent did not leave is said in a progress event.
    pub(crate) async fn continue_from(
        &self,
        run: &Run,
        parent: &ExecutionRecord,
        mirror: &Mirror,
    ) -> Result<Continued, RunError> {
        let start = self.parent_commit(run, parent, mirror).await?;
        if start.is_none() {
            run.recorder
                .emit(EventBody::progress(
                    "the parent left no commit: starting from the request's ref",
                ))
                .await;
        }
        let session = self.parent_session(run, parent).await?;
        if session.is_none() {
            run.recorder
                .emit(EventBody::progress(
                    "the parent left no agent session: the agent starts a fresh session from its commit",
                ))
                .await;
        }
        Ok(Continued { start, session })
    }

    /// The parent's last commit, in the mirror: its branch's bundle adopted
    /// under `refs/agentd/follow-ups/<this execution>` (verified again), or its base
    /// when it changed nothing.
    pub(crate) async fn parent_commit(
        &self,
        run: &Run,
        parent: &ExecutionRecord,
        mirror: &Mirror,
    ) -> Result<Option<ResolvedRef>, RunError> {
        let results = &self.config.results;
        if parent.has_bundle
            && results
                .fetch(&parent.id, &ResultFile::Bundle)
                .await
                .map_err(|e| RunError::Sandbox(format!("the parent's bundle: {e}")))?
        {
            let bundle = results.local_path(&parent.id, &ResultFile::Bundle);
            // One ref per follow-up: siblings adopting the same parent at
            // once never race for a ref lock.
            let target = format!("refs/agentd/follow-ups/{}", run.id);
            let head = crate::git::adopt_bundle(
                mirror.path(),
                &bundle,
                &parent.branch,
                &target,
                &run.dir.root().join(".adopt"),
                self.config.verify.command_timeout,
            )
            .await
            .map_err(|e| RunError::Sandbox(format!("the parent's branch: {e}")))?;
            return Ok(Some(ResolvedRef {
                name: parent.branch.clone(),
                commit: head,
            }));
        }
        let commit = parent
            .head_commit
            .clone()
            .or_else(|| parent.base_commit.clone());
        Ok(commit.map(|commit| ResolvedRef {
            name: parent.branch.clone(),
            commit,
        }))
    }

    /// The parent's session transcript copied into this execution's
    /// `resume/` folder (bound read-only into the sandbox), with the
    /// session's id: the parent's execution id, which agentd gave its CLI.
    async fn parent_session(
        &self,
        run: &Run,
        parent: &ExecutionRecord,
    ) -> Result<Option<(String, Bind)>, RunError> {
        if !is_session_id(&parent.id) {
            return Ok(None);
        }
        let results = &self.config.results;
        let found = results
            .fetch(&parent.id, &ResultFile::Session)
            .await
            .map_err(|e| RunError::Sandbox(format!("the parent's session: {e}")))?;
        if !found {
            return Ok(None);
        }
        let dir = run.dir.resume();
        let io = |source| RunError::Io {
            path: dir.display().to_string(),
            source,
        };
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        tokio::fs::copy(
            results.local_path(&parent.id, &ResultFile::Session),
            dir.join(SESSION_FILE),
        )
        .await
        .map_err(io)?;
        let bind = Bind {
            host: dir.display().to_string(),
            container: RESUME_MOUNT.to_string(),
            read_only: true,
        };
        Ok(Some((parent.id.clone(), bind)))
    }
}
