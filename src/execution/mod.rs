//! The domain: what an execution *is* — the request and its limits, the
//! status life cycle, the events, what it produced (changed files, artifacts,
//! what was left out or refused), what agentd observed of its model use, what
//! the agent claimed, the summary, and the names its things go by.
//!
//! This room imports nothing of agentd's: every other room may use it, and the
//! store keeps its records.

mod agent;
pub mod branch;
mod brief;
mod delivery;
mod event;
mod follow_up;
mod hooks;
mod input;
mod names;
mod options;
mod path_rule;
mod policy;
mod record;
mod request;
mod shell_split;
mod status;
pub mod summary;
mod tool_match;
mod usage;
pub(crate) mod whole;

pub use agent::{AgentEvent, AgentResult, Usage};
pub use brief::{BriefLinks, EXECUTION_PATH, ExecutionBrief, PROMPT_PREVIEW_CHARS, prompt_preview};
pub use delivery::{Delivery, DeliveryStatus, DiffStats};
pub use event::{Event, EventBody, SupervisorEvent};
pub use follow_up::{FollowUpRequest, Lineage, follow_up_branch, within_conversation};
pub use hooks::{HookStage, Hooks, MAX_HOOKS, OnFailure, SetupHook, TeardownHook};
pub use input::{AgentInput, InputKind, MAX_MESSAGE_BYTES};
pub use names::{
    AGENT_UID, COLLECT_GID, branch_name, collector_name, container_name, is_execution_id,
    is_ref_name, template_builder_name, volume_name,
};
pub use options::AgentOptions;
pub use policy::{AppliedPolicy, Clamp, Decision, RuleSource, ToolRule, ToolRules};
pub use record::{Execution, ExecutionRecord, NewExecution, Outcome};
pub(crate) use request::humantime_serde_compat as humantime_serde;
pub use request::{
    DEFAULT_CPUS, DEFAULT_MEMORY_BYTES, DEFAULT_PIDS, DEFAULT_TIMEOUT, DEFAULT_WORKSPACE_BYTES,
    ExecutionRequest, InvalidField, Limits, MAX_PROMPT_BYTES, SandboxOptions, parse_bytes,
};
pub use status::{Status, UnknownStatus};
pub use summary::{AgentClaim, Artifact, ChangedFile, LeftOut, RefusedEntry, ResultPaths, Summary};
pub use tool_match::{AGENT_CWD, ToolCall, Verdict, glob, parse_rule};
pub use usage::{Conversation, GatewayUsage};
