//! Deciding an execution's final status from what was observed, with the
//! agent's own report weighed as a claim.
//!
//! Everything read from inside the sandbox may have been written by the agent:
//! its `result` line is a claim. What agentd observes from outside decides: the
//! gateway's record of the conversation (how many answers, how the last one
//! ended), the engine's exit and OOM state, the driver's report of the agent's
//! exit code and the workspace (the driver runs as another uid, out of the
//! agent's reach), and whether the work could be brought back and verified.
//! A claim of success that contradicts an observation is never a success.

use crate::engine::ExitState;
use crate::execution::AgentResult;
use crate::execution::Conversation;
use crate::execution::Status;
use crate::runner::driver::WorkspaceUse;

/// Why agentd stopped the sandbox itself, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The time limit passed.
    Timeout,
    /// Someone cancelled the execution.
    Cancel,
    /// A model limit was reached; the text names it.
    Budget(String),
}

/// Everything the final status depends on.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    /// agentd itself failed (could not prepare, lost the engine, panicked, was
    /// restarted at a moment it cannot resume from); the text is the reason.
    pub internal_error: Option<String>,
    /// agentd stopped the sandbox.
    pub stop: Option<Stop>,
    /// How the agent container ended, if it ran (the engine's observation).
    pub exit: Option<ExitState>,
    /// The agent process's exit code, as the driver saw it.
    pub agent_exit: Option<i64>,
    /// The driver could not set the sandbox up (clone, checkout).
    pub setup_error: Option<String>,
    /// The agent's work could not be collected or failed verification.
    pub collect_error: Option<String>,
    /// A teardown hook whose failure fails the execution failed.
    pub teardown_error: Option<String>,
    /// The workspace's use at the end, as the kernel reported it.
    pub workspace: Option<WorkspaceUse>,
    /// The gateway's record of the conversation.
    pub conversation: Conversation,
    /// The agent's own final report: a claim.
    pub claim: Option<&'a AgentResult>,
}

/// The final status and, unless it succeeded, why.
///
/// Order matters: a cancel or timeout explains everything after it; an OOM
/// kill anywhere in the sandbox wins over the agent's own report (a killed test
/// or build means the work may be incomplete even if the agent carried on); so
/// does a full workspace.
pub fn decide(observed: &Observed<'_>) -> (Status, Option<String>) {
    if let Some(stop) = &observed.stop {
        return match stop {
            Stop::Cancel => (Status::Cancelled, Some("cancelled".into())),
            Stop::Timeout => (Status::TimedOut, Some("time limit reached".into())),
            Stop::Budget(limit) => (Status::BudgetExceeded, Some(limit.clone())),
        };
    }
    if let Some(error) = &observed.internal_error {
        return (Status::Failed, Some(error.clone()));
    }
    if observed.exit.is_some_and(|exit| exit.oom_killed) {
        return (
            Status::OutOfMemory,
            Some("the sandbox exceeded its memory limit".into()),
        );
    }
    if let Some(error) = &observed.setup_error {
        // A setup hook's failure says so itself (`setup_failed: …`).
        let reason = if error.starts_with("setup_failed: ") {
            error.clone()
        } else {
            format!("sandbox setup failed: {error}")
        };
        return (Status::Failed, Some(reason));
    }
    if let Some(workspace) = observed.workspace.filter(WorkspaceUse::is_full) {
        return (
            Status::Failed,
            Some(format!(
                "disk_limit: the workspace reached its size limit ({} MiB used, {} KiB left)",
                workspace.used >> 20,
                workspace.avail >> 10
            )),
        );
    }
    if let Some(error) = &observed.collect_error {
        return (
            Status::Failed,
            Some(format!("collecting the agent's work failed: {error}")),
        );
    }
    let Some(claim) = observed.claim else {
        let code = observed
            .agent_exit
            .or(observed.exit.map(|exit| exit.exit_code))
            .map(|code| code.to_string())
            .unwrap_or_else(|| "unknown".into());
        return (
            Status::Failed,
            Some(format!(
                "the agent exited (code {code}) without reporting a result"
            )),
        );
    };
    if !claim.succeeded() {
        return (Status::Failed, Some(claim.failure_reason()));
    }
    let contradictions = contradictions(observed);
    if contradictions.is_empty() {
        match &observed.teardown_error {
            Some(error) => (Status::Failed, Some(format!("teardown_failed: {error}"))),
            None => (Status::Succeeded, None),
        }
    } else {
        (
            Status::Failed,
            Some(format!(
                "the agent reported success, but agentd observed that {}",
                contradictions.join("; and that ")
            )),
        )
    }
}

/// What agentd observed that a claim of success cannot be true with.
fn contradictions(observed: &Observed<'_>) -> Vec<String> {
    let mut found = Vec::new();
    let exit = observed
        .agent_exit
        .or(observed.exit.map(|exit| exit.exit_code));
    if let Some(code) = exit.filter(|code| *code != 0) {
        found.push(format!("the agent's process exited with code {code}"));
    }
    let conversation = &observed.conversation;
    if conversation.answers == 0 {
        found.push("the model never answered".into());
    } else if !conversation.finished() {
        let reason = conversation.stop_reason.as_deref().unwrap_or("unknown");
        found.push(match reason {
            "tool_use" => "the model's last answer asked for a tool (stop_reason tool_use): \
                           the conversation did not end"
                .to_string(),
            other => format!("the model's last answer ended with stop_reason {other}"),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::Usage;

    fn result(subtype: &str, is_error: bool) -> AgentResult {
        AgentResult {
            subtype: subtype.into(),
            is_error,
            num_turns: 1,
            duration_ms: None,
            duration_api_ms: None,
            total_cost_usd: None,
            usage: Usage::default(),
            result: None,
            errors: vec!["too many turns".into()],
            permission_denials: 0,
            session_id: None,
        }
    }

    const CLEAN: ExitState = ExitState {
        exit_code: 0,
        oom_killed: false,
    };

    fn finished() -> Conversation {
        Conversation {
            answers: 3,
            tool_uses: 2,
            stop_reason: Some("end_turn".into()),
            text: Some("Done.".into()),
        }
    }

    fn honest(claim: &AgentResult) -> Observed<'_> {
        Observed {
            exit: Some(CLEAN),
            agent_exit: Some(0),
            conversation: finished(),
            claim: Some(claim),
            ..Default::default()
        }
    }

    #[test]
    fn success_needs_a_successful_claim_that_the_observations_bear_out() {
        let ok = result("success", false);
        assert_eq!(decide(&honest(&ok)), (Status::Succeeded, None));
        let observed = Observed {
            claim: None,
            ..honest(&ok)
        };
        assert_eq!(decide(&observed).0, Status::Failed);
    }

    #[test]
    fn a_forged_success_contradicted_by_observations_fails_and_says_why() {
        let forged = result("success", false);
        let mut observed = honest(&forged);
        observed.conversation.stop_reason = Some("tool_use".into());
        observed.agent_exit = Some(1);
        let (status, reason) = decide(&observed);
        assert_eq!(status, Status::Failed);
        let reason = reason.unwrap();
        assert!(reason.contains("asked for a tool"), "{reason}");
        assert!(reason.contains("exited with code 1"), "{reason}");

        let mut observed = honest(&forged);
        observed.conversation = Conversation::default();
        let (status, reason) = decide(&observed);
        assert_eq!(status, Status::Failed);
        assert!(reason.unwrap().contains("never answered"));

        let mut observed = honest(&forged);
        observed.conversation.stop_reason = Some("max_tokens".into());
        assert_eq!(decide(&observed).0, Status::Failed);
    }

    #[test]
    fn failures_carry_the_reason() {
        let turns = result("error_max_turns", true);
        let (status, reason) = decide(&honest(&turns));
        assert_eq!(status, Status::Failed);
        assert_eq!(reason.unwrap(), "error_max_turns: too many turns");
    }

    #[test]
    fn a_full_workspace_or_a_failed_collection_is_never_success() {
        let ok = result("success", false);
        let mut observed = honest(&ok);
        observed.workspace = Some(WorkspaceUse {
            size: 256 << 20,
            used: 255 << 20,
            avail: 0,
        });
        let (status, reason) = decide(&observed);
        assert_eq!(status, Status::Failed);
        assert!(reason.unwrap().starts_with("disk_limit"));
        let mut observed = honest(&ok);
        observed.collect_error = Some("the bundle failed verification".into());
        let (status, reason) = decide(&observed);
        assert_eq!(status, Status::Failed);
        assert!(reason.unwrap().contains("bundle failed verification"));
    }

    #[test]
    fn stops_and_oom_win() {
        let ok = result("success", false);
        let oom = ExitState {
            exit_code: 0,
            oom_killed: true,
        };
        let observed = Observed {
            exit: Some(oom),
            ..honest(&ok)
        };
        assert_eq!(decide(&observed).0, Status::OutOfMemory);
        let observed = Observed {
            stop: Some(Stop::Timeout),
            exit: Some(oom),
            ..Default::default()
        };
        assert_eq!(decide(&observed).0, Status::TimedOut);
        let observed = Observed {
            stop: Some(Stop::Cancel),
            internal_error: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(decide(&observed).0, Status::Cancelled);
        let observed = Observed {
            stop: Some(Stop::Budget("max_budget_usd 0.5 reached".into())),
            ..honest(&ok)
        };
        assert_eq!(
            decide(&observed),
            (
                Status::BudgetExceeded,
                Some("max_budget_usd 0.5 reached".into())
            )
        );
        let observed = Observed {
            setup_error: Some("clone failed".into()),
            exit: Some(ExitState {
                exit_code: 90,
                oom_killed: false,
            }),
            ..Default::default()
        };
        assert_eq!(
            decide(&observed),
            (
                Status::Failed,
                Some("sandbox setup failed: clone failed".into())
            )
        );
    }
}
