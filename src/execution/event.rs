//! The event log of one execution: what agentd did and what the agent did, in
//! one ordered stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::execution::AgentEvent;
use crate::execution::Status;

/// One entry of an execution's event log.
///
/// Serialised flat: `{"seq":3,"at":"…","source":"agent","type":"tool_call",…}`.
/// `seq` starts at 1 and has no gaps within an execution, so a reader can resume
/// after the last one it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the execution's log, from 1.
    pub seq: u64,
    /// When agentd recorded it.
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// Who an event comes from, and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum EventBody {
    /// Something agentd itself did or noticed.
    Agentd(SupervisorEvent),
    /// Something the agent printed, parsed by its adapter.
    Agent(AgentEvent),
}

/// What the supervisor reports about an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SupervisorEvent {
    /// The execution moved to a new state.
    Status {
        status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Progress on long work (fetching the mirror, building the image, collecting).
    Progress { message: String },
    /// A line the container wrote to stderr (the in-container driver, the CLI's own
    /// diagnostics). Kept verbatim.
    Log { line: String },
    /// An entry of the container's output that agentd refused to unpack.
    Refused { path: String, reason: String },
    /// Something went wrong that did not end the execution.
    Warning { message: String },
    /// One model request through the gateway, as the gateway metered it.
    ModelCall {
        /// Status answered to the agent.
        status: u16,
        /// The model that answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// Tokens metered from the answer.
        usage: crate::execution::Usage,
        /// The answer's cost, when its model is priced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// The execution's totals after this request.
        totals: crate::execution::GatewayUsage,
        /// Time to the answer's last byte, in milliseconds.
        duration_ms: u64,
        /// What went wrong (upstream's error, or the gateway's refusal).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Fields the admins' policy lowered to its caps when the execution was
    /// admitted.
    PolicyClamped {
        clamped: Vec<crate::execution::Clamp>,
    },
    /// agentd's decision on one tool call the model asked for, by the
    /// execution's tool rules.
    ToolDecision {
        /// The model's id for the call.
        tool_use_id: String,
        /// The tool's name (`Bash`, `Read`, …).
        tool: String,
        /// Allowed or denied.
        decision: crate::execution::Decision,
        /// The rule that decided, in the CLI's syntax; absent when no rule
        /// matched and the call was allowed by default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        /// Who wrote the rule (`policy` also for a call refused because the
        /// policy allows only listed tools). Not `source`: that key says who
        /// an event comes from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule_source: Option<crate::execution::RuleSource>,
    },
    /// A lifecycle hook in the sandbox started.
    HookStarted {
        stage: crate::execution::HookStage,
        /// Its place among the stage's hooks (from 0).
        index: usize,
        /// The command, as the request gave it.
        command: String,
    },
    /// A line a hook printed (stdout and stderr together; at most 1,000
    /// lines and 64 KiB per hook are kept).
    HookOutput {
        stage: crate::execution::HookStage,
        index: usize,
        line: String,
    },
    /// A lifecycle hook ended.
    HookFinished {
        stage: crate::execution::HookStage,
        index: usize,
        /// 0 on success; 124 or 137 when it ran out of time.
        exit_code: i64,
        duration_ms: u64,
    },
    /// A message a client sent to the running agent (streaming input),
    /// delivered to its standard input.
    UserMessage {
        /// The message.
        text: String,
        /// Who sent it: the API key's id, or `operator`.
        sender: String,
    },
    /// A client asked the agent to stop its current turn (streaming input).
    InterruptRequested {
        /// Who asked: the API key's id, or `operator`.
        sender: String,
    },
    /// agentd closed the agent's standard input (streaming input): the agent
    /// reported its result with no message pending, so it ends by itself.
    InputClosed {
        /// Why, in words.
        reason: String,
    },
}

impl EventBody {
    /// Shorthand for a supervisor status change.
    pub fn status(status: Status, reason: Option<String>) -> Self {
        EventBody::Agentd(SupervisorEvent::Status { status, reason })
    }

    /// Shorthand for a progress message.
    pub fn progress(message: impl Into<String>) -> Self {
        EventBody::Agentd(SupervisorEvent::Progress {
            message: message.into(),
        })
    }

    /// Shorthand for a warning.
    pub fn warning(message: impl Into<String>) -> Self {
        EventBody::Agentd(SupervisorEvent::Warning {
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::AgentEvent;

    #[test]
    fn serialises_flat_and_round_trips() {
        let event = Event {
            seq: 3,
            at: DateTime::parse_from_rfc3339("2026-11-22T02:44:38Z")
                .unwrap()
                .with_timezone(&Utc),
            body: EventBody::Agent(AgentEvent::ToolCall {
                id: "toolu_1".into(),
                name: "Write".into(),
                input: serde_json::json!({"file_path": "a.txt"}),
                parent_tool_use_id: None,
            }),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["seq"], 3);
        assert_eq!(json["source"], "agent");
        assert_eq!(json["type"], "tool_call");
        assert_eq!(json["name"], "Write");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);

        let status = Event {
            seq: 1,
            at: event.at,
            body: EventBody::status(Status::Running, None),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["source"], "agentd");
        assert_eq!(json["type"], "status");
        assert_eq!(json["status"], "running");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, status);
    }
}
