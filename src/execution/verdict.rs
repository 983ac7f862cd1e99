//! Deciding an execution's final status from everything that was observed.

use crate::agent::AgentResult;
use crate::engine::ExitState;
use crate::execution::Status;

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
    /// How the agent container ended, if it ran.
    pub exit: Option<ExitState>,
    /// The driver could not set the sandbox up (clone, checkout).
    pub setup_error: Option<String>,
    /// The agent's own final report.
    pub result: Option<&'a AgentResult>,
}

/// The final status and, unless it succeeded, why.
///
/// Order matters: a cancel or timeout explains everything after it; an OOM
/// kill anywhere in the sandbox wins over the agent's own report (a killed test
/// or build means the work may be incomplete even if the agent carried on).
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
        return (
            Status::Failed,
            Some(format!("sandbox setup failed: {error}")),
        );
    }
    match observed.result {
        Some(result) if result.succeeded() => (Status::Succeeded, None),
        Some(result) => (Status::Failed, Some(result.failure_reason())),
        None => {
            let code = observed
                .exit
                .map(|exit| exit.exit_code.to_string())
                .unwrap_or_else(|| "unknown".into());
            (
                Status::Failed,
                Some(format!(
                    "the agent exited (code {code}) without reporting a result"
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Usage;

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

    #[test]
    fn success_needs_a_successful_result() {
        let ok = result("success", false);
        let observed = Observed {
            exit: Some(CLEAN),
            result: Some(&ok),
            ..Default::default()
        };
        assert_eq!(decide(&observed), (Status::Succeeded, None));
        let observed = Observed {
            exit: Some(CLEAN),
            ..Default::default()
        };
        assert_eq!(decide(&observed).0, Status::Failed);
    }

    #[test]
    fn failures_carry_the_reason() {
        let turns = result("error_max_turns", true);
        let (status, reason) = decide(&Observed {
            exit: Some(CLEAN),
            result: Some(&turns),
            ..Default::default()
        });
        assert_eq!(status, Status::Failed);
        assert_eq!(reason.unwrap(), "error_max_turns: too many turns");
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
            result: Some(&ok),
            ..Default::default()
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
        let ok = result("success", false);
        let observed = Observed {
            stop: Some(Stop::Budget("max_budget_usd 0.5 reached".into())),
            exit: Some(CLEAN),
            result: Some(&ok),
            ..Default::default()
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
