//! The tool calls of one execution as agentd's gateway saw the model ask for
//! them, and agentd's decision on each: made once, on the call as the model
//! asked for it, and recorded as one `tool_decision` event.
//!
//! Nothing from inside the sandbox is trusted here: a question about a call
//! the gateway never saw gets a denial and no event, and a call is decided on
//! its name and input from the model's answer, whatever the question said.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use crate::execution::{Decision, EventBody, SupervisorEvent, ToolCall, ToolRules, Verdict};
use crate::gateway::{ToolUse, ToolUseObserver};

use super::recorder::Recorder;

/// The most calls one execution keeps: 10,000. Later calls are not kept, so
/// questions about them are denied.
pub const MAX_TOOL_CALLS: usize = 10_000;

/// One execution's tool calls and decisions.
pub(crate) struct ToolCalls {
    rules: ToolRules,
    recorder: Arc<Recorder>,
    seen: Mutex<HashMap<String, Seen>>,
    arrived: Notify,
}

struct Seen {
    tool: String,
    input: Option<Value>,
    verdict: Option<Verdict>,
}

impl ToolCalls {
    /// Decides by `rules`, recording decisions through `recorder`.
    pub(crate) fn new(rules: ToolRules, recorder: Arc<Recorder>) -> Self {
        ToolCalls {
            rules,
            recorder,
            seen: Mutex::new(HashMap::new()),
            arrived: Notify::new(),
        }
    }

    /// The decision on the call `id`, waiting up to `wait` for the gateway to
    /// see it; `None` when it never did. The first answer for a call records
    /// its event; later ones repeat the decision without another.
    pub(crate) async fn decide(&self, id: &str, wait: Duration) -> Option<Verdict> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some((verdict, first, tool)) = self.decided(id) {
                if first {
                    self.record(id, &tool, &verdict).await;
                }
                return Some(verdict);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The call's verdict (made now if it was not yet), whether it was made
    /// now, and the tool's name.
    fn decided(&self, id: &str) -> Option<(Verdict, bool, String)> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let call = seen.get_mut(id)?;
        if let Some(verdict) = &call.verdict {
            return Some((verdict.clone(), false, call.tool.clone()));
        }
        let verdict = self.rules.decide(&ToolCall {
            tool: &call.tool,
            input: call.input.as_ref(),
        });
        call.verdict = Some(verdict.clone());
        Some((verdict, true, call.tool.clone()))
    }

    async fn record(&self, id: &str, tool: &str, verdict: &Verdict) {
        self.recorder
            .emit(EventBody::Agentd(SupervisorEvent::ToolDecision {
                tool_use_id: id.to_string(),
                tool: tool.to_string(),
                decision: verdict.decision,
                rule: verdict.rule.clone(),
                rule_source: verdict.source,
            }))
            .await;
    }
}

impl ToolUseObserver for ToolCalls {
    fn tool_use(&self, call: ToolUse) {
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() >= MAX_TOOL_CALLS || seen.contains_key(&call.id) {
                return;
            }
            seen.insert(
                call.id,
                Seen {
                    tool: call.name,
                    input: call.input,
                    verdict: None,
                },
            );
        }
        self.arrived.notify_waiters();
    }
}

/// Why a call was denied, as the CLI shows it to the model.
pub(crate) fn denial_reason(verdict: Option<&Verdict>) -> String {
    match verdict {
        None => "agentd: this tool call is not one the model asked for; denied".to_string(),
        Some(Verdict {
            decision: Decision::Deny,
            rule: Some(rule),
            ..
        }) => format!("agentd: denied by the tool rule {rule}"),
        Some(_) => "agentd: this tool is not in the execution's allowed tools; denied".to_string(),
    }
}
