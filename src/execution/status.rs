//! The life cycle of an execution.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an execution is in its life.
///
/// `queued → preparing → running → collecting → (a final state)`. Any live
/// state may also jump straight to a final one (a failure while preparing, a
/// cancel while queued). Final states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted, waiting for a slot.
    Queued,
    /// Fetching the repository, building the image, creating the container.
    Preparing,
    /// The agent is running in its container.
    Running,
    /// The agent has stopped; agentd is bringing out the diff, bundle and artifacts.
    Collecting,
    /// The agent reported success.
    Succeeded,
    /// The agent reported failure, could not start, or agentd itself failed.
    Failed,
    /// The time limit was reached and the container was killed.
    TimedOut,
    /// Someone cancelled it.
    Cancelled,
    /// The container hit its memory limit and the kernel killed a process in it.
    OutOfMemory,
    /// A model limit (budget, tokens, requests) was reached; the gateway refused
    /// further requests and the container was stopped.
    BudgetExceeded,
}

impl Status {
    /// Every status, in life-cycle order.
    pub const ALL: [Status; 10] = [
        Status::Queued,
        Status::Preparing,
        Status::Running,
        Status::Collecting,
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Cancelled,
        Status::OutOfMemory,
        Status::BudgetExceeded,
    ];

    /// True for states an execution never leaves.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Status::Queued | Status::Preparing | Status::Running | Status::Collecting
        )
    }

    /// Whether moving from `self` to `next` is a legal step of the life cycle.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        if self.is_final() {
            return false;
        }
        if next.is_final() {
            return true;
        }
        matches!(
            (self, next),
            (Queued, Preparing) | (Preparing, Running) | (Running, Collecting)
        )
    }

    /// The snake_case name used in JSON, the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Preparing => "preparing",
            Status::Running => "running",
            Status::Collecting => "collecting",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Cancelled => "cancelled",
            Status::OutOfMemory => "out_of_memory",
            Status::BudgetExceeded => "budget_exceeded",
        }
    }

    /// The process exit code `agentd run` ends with for this final status:
    /// 0 only for success, otherwise distinct codes a script can branch on.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Succeeded => 0,
            Status::Failed => 1,
            Status::TimedOut => 124,
            Status::Cancelled => 130,
            Status::OutOfMemory => 137,
            Status::BudgetExceeded => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status name.
#[derive(Debug, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn life_cycle_moves_forward_only() {
        use Status::*;
        assert!(Queued.can_become(Preparing));
        assert!(Preparing.can_become(Running));
        assert!(Running.can_become(Collecting));
        assert!(Collecting.can_become(Succeeded));
        assert!(Queued.can_become(Cancelled));
        assert!(Preparing.can_become(Failed));
        assert!(!Running.can_become(Preparing));
        assert!(!Queued.can_become(Running));
        assert!(!Succeeded.can_become(Failed));
        assert!(!Cancelled.can_become(Cancelled));
    }

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().into())
            );
        }
        assert!("bogus".parse::<Status>().is_err());
    }
}
