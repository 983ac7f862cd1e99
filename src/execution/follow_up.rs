//! A follow-up: the next step of a conversation. It continues its parent's
//! branch from the parent's last commit, and the agent resumes the parent's
//! session, so the model sees the whole earlier conversation.

use serde::{Deserialize, Serialize};

use super::{AgentOptions, ExecutionRequest, Hooks, Limits};

/// What a client asks of a follow-up: the next prompt, and optionally new
/// agent options and limits. A field left out keeps the parent's value
/// (agent options, limits, context file, hooks, push and merge target);
/// `record`, `replay` and `streaming_input` are the follow-up's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUpRequest {
    /// The next prompt.
    pub prompt: String,
    /// Options for the agent CLI. Default: the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentOptions>,
    /// Limits of the sandbox and its model use. Default: the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// A `CLAUDE.md` memory file. Default: the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_file: Option<String>,
    /// Commands run in the sandbox before and after the agent. Default: the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// Push the branch when the follow-up succeeds. Default: the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<bool>,
    /// Merge into this integration branch too. Default: the parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_into: Option<String>,
    /// Record the model exchanges of this step.
    #[serde(default)]
    pub record: bool,
    /// Play this step's model from a recorded execution's cassette.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    /// Start the agent in streaming-input mode (messages while it runs).
    #[serde(default)]
    pub streaming_input: bool,
    /// Queue again this many times when the engine running it is lost.
    #[serde(default, deserialize_with = "super::whole::number")]
    pub retries: u32,
}

impl FollowUpRequest {
    /// The request the follow-up runs: the parent's repository, start, sandbox
    /// and names, with this step's prompt and what it changes.
    pub fn onto(self, parent: &ExecutionRequest) -> ExecutionRequest {
        ExecutionRequest {
            prompt: self.prompt,
            agent: self.agent.unwrap_or_else(|| parent.agent.clone()),
            limits: self.limits.unwrap_or_else(|| parent.limits.clone()),
            context_file: self.context_file.or_else(|| parent.context_file.clone()),
            hooks: self.hooks.unwrap_or_else(|| parent.hooks.clone()),
            push: self.push.unwrap_or(parent.push),
            merge_into: self.merge_into.or_else(|| parent.merge_into.clone()),
            record: self.record,
            replay: self.replay,
            streaming_input: self.streaming_input,
            retries: self.retries,
            ..parent.clone()
        }
    }
}

/// Where an execution stands in its conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The execution it follows up.
    pub parent_id: String,
    /// The conversation's first execution.
    pub conversation_id: String,
}

impl Lineage {
    /// The lineage of a follow-up of `parent`.
    pub fn of(parent: &super::Execution) -> Self {
        Lineage {
            parent_id: parent.id.clone(),
            conversation_id: parent.conversation_id.clone(),
        }
    }
}

/// `request`'s model limits less what its conversation's other steps used
/// (`spent`, as the gateway metered it), never below zero: under a policy
/// whose budgets count the whole conversation.
pub fn within_conversation(request: &mut ExecutionRequest, spent: &super::GatewayUsage) {
    if let Some(budget) = request.agent.max_budget_usd.as_mut() {
        *budget = (*budget - spent.cost_usd.unwrap_or(0.0)).max(0.0);
    }
    if let Some(limit) = request.limits.max_tokens.as_mut() {
        *limit = limit.saturating_sub(spent.usage.total());
    }
    if let Some(limit) = request.limits.max_requests.as_mut() {
        *limit = limit.saturating_sub(spent.requests);
    }
}

/// The branch of a parent's `sibling`-th follow-up (from 1): the first
/// continues the parent's branch, the others get their own (`{branch}-2`, …),
/// so no two steps that may run at once ever write one branch.
pub fn follow_up_branch(parent_branch: &str, sibling: u32) -> String {
    if sibling <= 1 {
        parent_branch.to_string()
    } else {
        format!("{parent_branch}-{sibling}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> ExecutionRequest {
        serde_json::from_value(serde_json::json!({
            "repo": "https://example.com/r.git",
            "ref": "main",
            "prompt": "first",
            "agent": {"model": "claude-x", "max_turns": 4},
            "limits": {"timeout": "5m"},
            "context_file": "be brief",
            "push": true,
            "record": true,
            "agent_id": "a1",
        }))
        .unwrap()
    }

    #[test]
    fn left_out_fields_keep_the_parents() {
        let follow: FollowUpRequest =
            serde_json::from_value(serde_json::json!({"prompt": "second"})).unwrap();
        let merged = follow.onto(&parent());
        assert_eq!(merged.prompt, "second");
        assert_eq!(merged.agent.model.as_deref(), Some("claude-x"));
        assert_eq!(merged.limits.timeout, std::time::Duration::from_secs(300));
        assert_eq!(merged.context_file.as_deref(), Some("be brief"));
        assert_eq!(merged.git_ref.as_deref(), Some("main"));
        assert_eq!(merged.agent_id.as_deref(), Some("a1"));
        assert!(merged.push);
        assert!(!merged.record, "recording is each step's own choice");
    }

    #[test]
    fn given_fields_replace_the_parents() {
        let follow: FollowUpRequest = serde_json::from_value(serde_json::json!({
            "prompt": "second",
            "agent": {"max_turns": 2},
            "push": false,
        }))
        .unwrap();
        let merged = follow.onto(&parent());
        assert_eq!(merged.agent.model, None);
        assert_eq!(merged.agent.max_turns, Some(2));
        assert!(!merged.push);
    }

    #[test]
    fn a_conversation_budget_leaves_what_the_earlier_steps_did_not_use() {
        let mut request = parent();
        request.agent.max_budget_usd = Some(1.0);
        request.limits.max_tokens = Some(1000);
        request.limits.max_requests = Some(3);
        let spent = crate::execution::GatewayUsage {
            requests: 5,
            usage: crate::execution::Usage {
                input_tokens: 300,
                output_tokens: 100,
                cache_creation_input_tokens: 50,
                cache_read_input_tokens: 50,
            },
            cost_usd: Some(0.25),
        };
        within_conversation(&mut request, &spent);
        assert_eq!(request.agent.max_budget_usd, Some(0.75));
        assert_eq!(request.limits.max_tokens, Some(500));
        assert_eq!(request.limits.max_requests, Some(0), "never below zero");
        let mut unlimited = parent();
        within_conversation(&mut unlimited, &spent);
        assert_eq!(unlimited.limits.max_tokens, None, "no limit stays none");
    }

    #[test]
    fn siblings_never_share_a_branch() {
        assert_eq!(follow_up_branch("agent/x", 1), "agent/x");
        assert_eq!(follow_up_branch("agent/x", 2), "agent/x-2");
        assert_eq!(follow_up_branch("agent/x", 3), "agent/x-3");
    }
}
