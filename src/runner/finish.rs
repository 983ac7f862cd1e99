//! Finishing: the final status decided from what was observed, the figures
//! stored, the summary written.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use crate::execution::{AgentClaim, EventBody, ExecutionRecord, Outcome, Summary};
use crate::gateway::ModelLimits;
use crate::store::StoreError;

use super::Runner;
use super::lifecycle::{Call, Stage};
use super::run::{Findings, Run};
use super::verdict::{self, Observed};

impl Runner {
    /// Delivers a run's branch before its final status is stored (so a
    /// client that sees the end sees the delivery too), holding the lease
    /// meanwhile; progress and the result are events.
    async fn deliver_run(
        &self,
        run: &Run,
        findings: &Findings,
        outcome: &Outcome,
        at: chrono::DateTime<Utc>,
    ) -> crate::execution::Delivery {
        let mut ended = run.record.clone();
        ended.conclude(outcome, at);
        if ended.base_commit.is_none() {
            ended.base_commit.clone_from(&findings.base);
        }
        let repo = findings
            .repo
            .clone()
            .unwrap_or_else(|| run.record.request.repo.clone());
        if outcome.status == crate::execution::Status::Succeeded {
            run.recorder
                .emit(EventBody::progress(format!(
                    "delivering branch {} to the remote",
                    ended.branch
                )))
                .await;
        }
        let bundle = findings.outputs.bundle.as_deref();
        let scratch = self.deliver_scratch(&run.id);
        self.tell(Stage::Deliver, Call::Before, &ended).await;
        let delivery = tokio::select! {
            delivery = self.delivery(&ended, bundle, &repo, &scratch) => delivery,
            () = self.heartbeat(run) => {
                tracing::error!(execution = %run.id, "lost the lease while delivering");
                crate::execution::Delivery {
                    status: crate::execution::DeliveryStatus::Failed,
                    error: Some("agentd lost the execution while delivering".into()),
                    ..super::deliver::outline(&ended)
                }
            }
        };
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        ended.delivery = Some(delivery.clone());
        match (&delivery.error, delivery.status.landed()) {
            (Some(error), false)
                if delivery.status != crate::execution::DeliveryStatus::Skipped =>
            {
                self.tell(Stage::Deliver, Call::Error(error), &ended).await
            }
            _ => self.tell(Stage::Deliver, Call::After, &ended).await,
        }
        let message = match &delivery.error {
            Some(error) => format!("delivery {}: {error}", delivery.status.as_str()),
            None => format!(
                "delivery {}: branch {} at {} on the remote",
                delivery.status.as_str(),
                delivery.branch,
                delivery
                    .commit
                    .as_deref()
                    .map_or("", |c| &c[..12.min(c.len())])
            ),
        };
        let event = if delivery.status.landed() && delivery.error.is_none() {
            EventBody::progress(message)
        } else {
            EventBody::warning(message)
        };
        run.recorder.emit(event).await;
        delivery
    }
}

/// Attempts at storing the final status before giving up (the next
/// reconciliation then finds the execution live and ownerless).
const FINISH_ATTEMPTS: u32 = 5;

impl Runner {
    #[tracing::instrument(name = "finish", skip_all)]
    pub(super) async fn finish(&self, run: Run, findings: Findings) -> Summary {
        tracing::info!("deciding the final status");
        self.tell(Stage::Finish, Call::Before, &run.record).await;
        // Uploads may outlast a lease: the lease is renewed meanwhile (the
        // heartbeat ended with the run), and a heartbeat that finds it lost
        // ends the uploads (each is also fenced before it replaces a copy).
        // Whether it is still held when the final status is written, the
        // store decides.
        tokio::select! {
            () = self.publish(&run, &findings) => {}
            () = self.heartbeat(&run) => {
                tracing::error!(execution = %run.id, "lost the lease while publishing");
            }
        }
        let conversation = run.account.conversation();
        let claim = findings.pumped.result.as_ref();
        let collect_error = findings
            .collect_error
            .clone()
            .or_else(|| findings.pumped.collect_error.clone());
        let (status, reason) = verdict::decide(&Observed {
            internal_error: findings.internal_error.clone(),
            stop: findings.stop.clone(),
            exit: findings.exit,
            agent_exit: findings.pumped.agent_exit,
            setup_error: findings.pumped.setup_error.clone(),
            teardown_error: findings.pumped.teardown_error.clone(),
            collect_error,
            workspace: findings.pumped.workspace,
            conversation: conversation.clone(),
            claim,
        });
        let finished_at = Utc::now();
        let duration_ms = (finished_at - run.started_at).num_milliseconds().max(0) as u64;
        let gateway = run.account.totals();
        let outcome = Outcome {
            status,
            reason: reason.clone(),
            head_commit: findings.outputs.head.clone(),
            session_id: findings.pumped.session_id.clone(),
            num_turns: conversation.answers,
            usage: gateway.usage,
            cost_usd: gateway.cost_usd,
            tool_calls: conversation.tool_uses,
            result: conversation.text.clone(),
            files_changed: findings.outputs.files.clone(),
            exit_code: findings.exit.map(|e| e.exit_code),
            oom_killed: findings.exit.is_some_and(|e| e.oom_killed),
            has_diff: findings.outputs.diff.is_some(),
            has_bundle: findings.outputs.bundle.is_some(),
            artifacts: findings.artifacts.files.clone(),
            duration_ms,
            gateway,
            claimed: claim.map(|claim| AgentClaim {
                subtype: claim.subtype.clone(),
                is_error: claim.is_error,
                num_turns: claim.num_turns,
                usage: claim.usage,
                cost_usd: claim.total_cost_usd,
                tool_calls: findings.pumped.claimed_tool_calls,
                result: claim.result.clone(),
            }),
            conversation,
            left_out: findings.outputs.left_out.clone(),
        };
        let delivery = if run.record.request.push {
            Some(
                self.deliver_run(&run, &findings, &outcome, finished_at)
                    .await,
            )
        } else {
            None
        };
        let mut attempt = 0;
        // The record as it ends, and whether this replica stored it.
        let (record, stored) = loop {
            attempt += 1;
            match self.store.finish(&run.id, self.owner(), &outcome).await {
                Ok(record) => {
                    // Counted by whoever stored the final status (a replica
                    // that lost the execution to another counts nothing), as
                    // soon as it is stored.
                    crate::metrics::global().execution_finished(
                        &run.record.tenant_id,
                        status.as_str(),
                        Duration::from_millis(duration_ms),
                    );
                    break (record, true);
                }
                Err(error) => {
                    let hopeless = matches!(
                        error,
                        StoreError::IllegalTransition { .. }
                            | StoreError::NotFound(_)
                            | StoreError::LeaseLost { .. }
                    );
                    if hopeless || attempt >= FINISH_ATTEMPTS {
                        tracing::error!(%error, execution = %run.id, "cannot store the final status");
                        let mut record = run.record.clone();
                        record.conclude(&outcome, finished_at);
                        break (record, false);
                    }
                    tracing::warn!(%error, execution = %run.id, "storing the final status, retrying");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        };
        let record = match (&delivery, stored) {
            (Some(delivery), true) => match self.store.record_delivery(&run.id, delivery).await {
                Ok(record) => record,
                Err(error) => {
                    tracing::error!(%error, execution = %run.id, "cannot record the delivery");
                    record
                }
            },
            (Some(delivery), false) => {
                let mut record = record;
                record.delivery = Some(delivery.clone());
                record
            }
            (None, _) => record,
        };
        let refused = findings
            .outputs
            .refused
            .iter()
            .chain(&findings.artifacts.refused)
            .cloned()
            .collect();
        let summary = Summary::new(
            &record,
            &run.dir.result_paths(),
            findings.artifacts.files.clone(),
            refused,
        );
        if let Err(error) = write_summary(&run.dir.summary(), &summary) {
            run.recorder
                .emit(EventBody::warning(format!(
                    "cannot write summary.json: {error}"
                )))
                .await;
        }
        tracing::info!(status = %status, reason = reason.as_deref().unwrap_or(""), "finished");
        run.recorder.emit(EventBody::status(status, reason)).await;
        self.tell(Stage::Finish, Call::After, &record).await;
        self.hub.close(&run.id);
        if !stored {
            // Another replica holds it, or will: the event log is its to write.
            return summary;
        }
        match super::export::export_events(self.store.as_ref(), &run.id, &run.dir.events()).await {
            Ok(_) => {
                if let Err(error) = self
                    .config
                    .results
                    .publish(
                        &run.id,
                        &crate::results::ResultFile::Events,
                        &crate::results::Unfenced,
                    )
                    .await
                {
                    tracing::warn!(%error, "publishing the event log file");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot write the event log file"),
        }
        summary
    }
}

/// The model limits of an execution, for its gateway account.
pub(super) fn model_limits(record: &ExecutionRecord) -> ModelLimits {
    ModelLimits {
        max_budget_usd: record.request.agent.max_budget_usd,
        max_tokens: record.request.limits.max_tokens,
        max_requests: record.request.limits.max_requests,
        requests_per_minute: record.request.limits.requests_per_minute,
    }
}

fn write_summary(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(summary)?)?;
    std::fs::rename(&tmp, path)
}
