//! OpenAPI schemas of the domain types the API carries but does not own
//! (`ExecutionRequest`, `Limits`, `AgentOptions`, `Usage`, `Status`, `Event`).
//!
//! They describe the JSON those types read and write; a test below checks each
//! one lists exactly the fields its domain type has, so they cannot drift apart.

use serde::Serialize;
use utoipa::ToSchema;

/// One execution as asked for (`POST /v1/executions`). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExecutionRequest)]
pub struct ExecutionRequestSchema {
    /// A git URL (credentials allowed: they are never stored) or a path on the
    /// supervisor's host.
    #[schema(
        example = "https://github.com/octo/hello.git",
        min_length = 1,
        pattern = r"^\s*[^\s\x00-][^\n\x00]*$"
    )]
    pub repo: String,
    /// Branch, tag or commit to start from. Default: the repository's default branch.
    #[serde(rename = "ref")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^(?!.*\.\.)[^\x00-\x20\x7f-\x9f~^:?*\[\\-][^\x00-\x20\x7f-\x9f~^:?*\[\\]*$"
    )]
    pub git_ref: Option<String>,
    /// The task for the agent (1 byte to 100 KiB).
    #[schema(
        example = "Fix the failing test in src/lib.rs",
        min_length = 1,
        max_length = 102400,
        pattern = r"^(?=[\s\S]*\S)[^\x00]*$"
    )]
    pub prompt: String,
    /// Options for the agent CLI.
    #[serde(default)]
    pub agent: AgentOptionsSchema,
    /// Text given to the agent as a `CLAUDE.md` memory file (at most 100 KiB).
    #[schema(max_length = 102400)]
    pub context_file: Option<String>,
    /// Resource limits of the sandbox and of its model use.
    #[serde(default)]
    pub limits: LimitsSchema,
    /// The sandbox's image and OCI runtime (the server's by default; a policy
    /// says which a tenant may choose, and may force a runtime).
    #[serde(default)]
    pub sandbox: SandboxOptionsSchema,
    /// Record every model exchange into a cassette (secrets redacted), to replay later.
    #[serde(default)]
    pub record: bool,
    /// Play the model's side from the cassette of this recorded execution (its id)
    /// instead of calling the model.
    pub replay: Option<String>,
    /// Your name for the agent doing the work, for `branch_template`
    /// (`{agent_id}`): 1 to 64 letters, digits, `_` and `-`.
    #[schema(example = "coder-7", pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]
    pub agent_id: Option<String>,
    /// Your name for the task, for `branch_template` (`{task_id}`).
    #[schema(example = "JIRA-42", pattern = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")]
    pub task_id: Option<String>,
    /// The branch the work is committed to, as a template: `/`-joined
    /// components of letters, digits, `_`, `-` and the variables
    /// `{execution_id}`, `{short_id}` (its last 8 characters), `{tenant}`,
    /// `{agent_id}`, `{task_id}` (each only when the request gives it); at
    /// most 200 bytes, making a name of at most 255. Default:
    /// `agent/{execution_id}`.
    #[schema(
        example = "agent/{agent_id}-{task_id}",
        max_length = 200,
        pattern = r"^(?:[A-Za-z0-9_]|\{(?:execution_id|short_id|tenant|agent_id|task_id)\})(?:[A-Za-z0-9_-]|\{(?:execution_id|short_id|tenant|agent_id|task_id)\})*(?:/(?:[A-Za-z0-9_-]|\{(?:execution_id|short_id|tenant|agent_id|task_id)\})+)*$"
    )]
    pub branch_template: Option<String>,
    /// Push the work's branch to the repository's remote when the execution
    /// succeeds, from the host, with the tenant's stored credential for the
    /// repository (it never enters the sandbox). Never forced: a remote
    /// branch of that name that does not lead to the work is left alone
    /// (`delivery.status: rejected`).
    #[serde(default)]
    pub push: bool,
    /// With `push`, also merge the branch into this integration branch on the
    /// remote: fast-forward when possible, else a merge commit; a conflict
    /// leaves it as it was (`delivery.status: conflict`, paths listed).
    #[schema(example = "integration", max_length = 255)]
    pub merge_into: Option<String>,
    /// Commands run in the sandbox before and after the agent.
    #[serde(default)]
    pub hooks: HooksSchema,
    /// How many times the execution may be queued again, from the start,
    /// when the engine running it is lost (its replica's pod or node vanished
    /// without draining). 0: it ends `failed` with reason `engine_lost`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3)]
    pub retries: u32,
    /// Start the agent in streaming-input mode: the prompt and any message
    /// sent while it runs (`POST …/messages`) reach it on its standard
    /// input, and `POST …/interrupt` can stop its current turn. agentd closes
    /// the input once the agent reported its result with no message pending,
    /// so the execution still ends by itself. Default: false.
    #[serde(default)]
    pub streaming_input: bool,
}

/// The next step of a conversation: a prompt, and optionally new agent
/// options and limits (a field left out keeps the parent's value; `record`,
/// `replay`, `streaming_input` and `retries` are the step's own).
#[derive(Serialize, ToSchema)]
#[schema(as = FollowUpRequest)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequestSchema {
    /// The next prompt (1 byte to 100 KiB).
    #[schema(
        example = "Also handle the empty case",
        min_length = 1,
        max_length = 102400,
        pattern = r"^(?=[\s\S]*\S)[^\x00]*$"
    )]
    pub prompt: String,
    /// Options for the agent CLI. Default: the parent's.
    pub agent: Option<AgentOptionsSchema>,
    /// Limits of the sandbox and its model use. Default: the parent's.
    pub limits: Option<LimitsSchema>,
    /// Text given to the agent as a `CLAUDE.md` memory file. Default: the parent's.
    #[schema(max_length = 102400)]
    pub context_file: Option<String>,
    /// Commands run in the sandbox before and after the agent. Default: the parent's.
    pub hooks: Option<HooksSchema>,
    /// Push the branch when the step succeeds. Default: the parent's.
    pub push: Option<bool>,
    /// Also merge into this integration branch. Default: the parent's.
    #[schema(example = "integration", max_length = 255)]
    pub merge_into: Option<String>,
    /// Record this step's model exchanges into a cassette.
    #[serde(default)]
    pub record: bool,
    /// Play this step's model side from this recorded execution's cassette.
    pub replay: Option<String>,
    /// Start the agent in streaming-input mode (see `ExecutionRequest`).
    #[serde(default)]
    pub streaming_input: bool,
    /// How many times the step may be queued again when its engine is lost.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3)]
    pub retries: u32,
}

/// Lifecycle hooks in the sandbox: bash command lines run in the repository
/// as the agent's user, without network, each within its time limit; their
/// output becomes `hook_output` events between `hook_started` and
/// `hook_finished`.
#[derive(Serialize, Default, ToSchema)]
#[schema(as = Hooks)]
#[serde(deny_unknown_fields)]
pub struct HooksSchema {
    /// Run in order before the agent (at most 8); the first that fails or
    /// runs out of time ends the execution `failed` with reason
    /// `setup_failed: …`, and the agent never starts.
    #[schema(max_items = 8)]
    #[serde(default)]
    pub setup: Vec<SetupHookSchema>,
    /// Run in order after the agent, before its work is collected (what they
    /// change is part of the work; at most 8).
    #[schema(max_items = 8)]
    #[serde(default)]
    pub teardown: Vec<TeardownHookSchema>,
}

/// A command run before the agent.
#[derive(Serialize, ToSchema)]
#[schema(as = SetupHook)]
#[serde(deny_unknown_fields)]
pub struct SetupHookSchema {
    /// A bash command line (1 to 4096 characters, no NUL).
    #[schema(
        example = "npm ci --offline",
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$"
    )]
    pub command: String,
    /// Its time limit in seconds. Default: 300.
    #[schema(minimum = 1, maximum = 3600, default = 300)]
    #[serde(default)]
    pub timeout_seconds: u32,
}

/// A command run after the agent.
#[derive(Serialize, ToSchema)]
#[schema(as = TeardownHook)]
#[serde(deny_unknown_fields)]
pub struct TeardownHookSchema {
    /// A bash command line (1 to 4096 characters, no NUL).
    #[schema(
        example = "cargo fmt",
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$"
    )]
    pub command: String,
    /// Its time limit in seconds. Default: 300.
    #[schema(minimum = 1, maximum = 3600, default = 300)]
    #[serde(default)]
    pub timeout_seconds: u32,
    /// What its failure does: `fail` the execution (reason
    /// `teardown_failed: …`; its work is still collected) or `warn`.
    /// Default: `fail`.
    #[serde(default)]
    pub on_failure: OnFailureSchema,
}

/// What a failing teardown hook does.
#[derive(Serialize, Default, ToSchema)]
#[schema(as = OnFailure)]
#[serde(rename_all = "snake_case")]
pub enum OnFailureSchema {
    #[default]
    Fail,
    Warn,
}

/// Options for the agent CLI; every field optional. Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AgentOptions)]
pub struct AgentOptionsSchema {
    /// Model name. Default: the CLI's default model.
    #[schema(
        example = "claude-sonnet-4-5",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f-][^\s\x00-\x1f\x7f-\x9f]*$"
    )]
    pub model: Option<String>,
    /// Stop after this many agent turns (at least 1).
    #[schema(format = Int64, minimum = 1, maximum = 4294967295_u64)]
    pub max_turns: Option<u32>,
    /// Stop once the model cost, as agentd's gateway meters and prices it,
    /// reaches this many US dollars (> 0); the execution ends `budget_exceeded`.
    pub max_budget_usd: Option<f64>,
    /// Tool rules the agent may use, e.g. `Bash(git diff *)`, `Read`.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// Tool rules the agent may never use. Deny wins over allow.
    #[serde(default)]
    pub disallowed_tools: Vec<String>,
    /// Text appended to the CLI's system prompt (at most 100 KiB, no NUL).
    #[schema(max_length = 102400)]
    pub append_system_prompt: Option<String>,
}

/// The sandbox's image and runtime; both optional. Unknown fields are refused.
#[derive(Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = SandboxOptions)]
pub struct SandboxOptionsSchema {
    /// The agent image (`name:tag`, present on the engine). Default: the server's.
    #[schema(example = "agentd-agent:2.1.330-9264fad5")]
    pub image: Option<String>,
    /// The OCI runtime (`runc`, `runsc`). Default: the server's.
    #[schema(example = "runsc")]
    pub runtime: Option<String>,
}

/// What the admins' policy made of one execution when it was admitted.
#[derive(Serialize, ToSchema)]
#[schema(as = AppliedPolicy)]
pub struct AppliedPolicySchema {
    /// Fields asked above a cap and lowered to it (absent when none was).
    pub clamped: Option<Vec<ClampSchema>>,
    /// The tool rules the sandbox enforced.
    pub tools: ToolRulesSchema,
    /// The tenant's spend limit per UTC day, in US dollars, if any.
    pub daily_spend_usd: Option<f64>,
    /// The model limits counted the whole conversation (absent: false).
    pub conversation_budget: Option<bool>,
    /// Models the gateway forwards requests for (absent: any).
    pub models: Option<Vec<String>>,
    /// Whether repository hosts on loopback, link-local or private addresses were allowed.
    pub allow_private_hosts: bool,
    /// Submitted by the local operator (no policy restricts it; failures are
    /// explained in full).
    pub operator: bool,
    /// The name the work was committed as, when the policy gives one.
    pub git_author_name: Option<String>,
    /// Its email, when the policy gives one.
    pub git_author_email: Option<String>,
    /// The policy's commit message template, if any.
    pub commit_message: Option<String>,
}

/// One field lowered to its cap.
#[derive(Serialize, ToSchema)]
#[schema(as = Clamp)]
pub struct ClampSchema {
    /// The request field, as a JSON path.
    #[schema(example = "limits.cpus")]
    pub field: String,
    /// What was asked (or agentd's default, when nothing was).
    #[schema(value_type = Object)]
    pub asked: serde_json::Value,
    /// What the execution got.
    #[schema(value_type = Object)]
    pub allowed: serde_json::Value,
}

/// Tool rules: deny wins over allow; with `only_allowed`, a call no allow rule
/// matches is denied too.
#[derive(Serialize, ToSchema)]
#[schema(as = ToolRules)]
pub struct ToolRulesSchema {
    /// Rules whose calls may run.
    pub allow: Vec<ToolRuleSchema>,
    /// Rules whose calls are refused.
    pub deny: Vec<ToolRuleSchema>,
    /// Refuse every call no allow rule matches.
    pub only_allowed: bool,
}

/// A permission rule in the CLI's syntax, and who wrote it.
#[derive(Serialize, ToSchema)]
#[schema(as = ToolRule)]
pub struct ToolRuleSchema {
    /// The rule.
    #[schema(example = "Bash(curl *)")]
    pub rule: String,
    /// `policy` (an admin's) or `request` (the execution's own).
    #[schema(example = "policy")]
    pub source: String,
}

/// Duration as text (`10m`, `1h30m`) or a number of seconds.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Timeout)]
pub enum TimeoutSchema {
    /// Human-readable duration: numbers with units (`ms`, `s`, `m`, `h`, `d`…).
    Text(DurationText),
    /// Seconds (1 to 86400; `90.0` is read as 90).
    Seconds(TimeoutSeconds),
}

/// A duration as text: whole numbers with units, e.g. `10m`, `1h 30m`
/// (24 hours read back as `1day`); the first number is not 0. The API reads
/// exactly what this pattern admits (a test checks both agree).
#[derive(Serialize, ToSchema)]
#[schema(
    value_type = String,
    pattern = r"^\s*[1-9][0-9]{0,5}\s*(s|m|h|days|day|d)(\s*[0-9]{1,6}\s*(s|m|h|days|day|d))*\s*$"
)]
pub struct DurationText(String);

/// A duration in seconds: 1 to 86400.
#[derive(Serialize)]
pub struct TimeoutSeconds(u64);

impl utoipa::PartialSchema for TimeoutSeconds {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(86_400))
            .description(Some("A duration in seconds: 1 to 86400."))
            .into()
    }
}

impl ToSchema for TimeoutSeconds {}

/// Sandbox limits; every field optional, an admin policy may narrow them.
/// Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = Limits)]
pub struct LimitsSchema {
    /// Wall-clock limit (1 s to 24 h). Default: `30m`.
    #[schema(example = "10m")]
    pub timeout: TimeoutSchema,
    /// CPU quota in cores (0.1 to 64). Default: 1.
    #[schema(minimum = 0.1, maximum = 64.0)]
    pub cpus: f64,
    /// Memory limit in bytes, no swap (32 MiB to 256 GiB). Default: 2 GiB.
    #[schema(minimum = 33554432_u64, maximum = 274877906944_u64)]
    pub memory_bytes: u64,
    /// Process and thread limit (16 to 65536). Default: 256.
    #[schema(minimum = 16, maximum = 65536)]
    pub pids: u32,
    /// Cap on the artifacts brought back, in bytes (at most 64 GiB). Default: 1 GiB.
    #[schema(minimum = 0, maximum = 68719476736_u64)]
    pub max_artifact_bytes: u64,
    /// Size of the workspace filesystem the agent works in, in bytes (64 MiB to
    /// 1 TiB); a write beyond it fails with "no space left", and an execution that
    /// ends with its workspace full fails with reason `disk_limit`. Default: 4 GiB.
    #[schema(minimum = 67108864_u64, maximum = 1099511627776_u64)]
    pub workspace_bytes: u64,
    /// Tokens the model may use in all, every kind counted by the gateway; reaching
    /// it ends the execution `budget_exceeded`. Default: none.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    /// Model requests allowed in all; the next one ends the execution
    /// `budget_exceeded`. Default: none.
    #[schema(minimum = 1)]
    pub max_requests: Option<u64>,
    /// Model requests per rolling minute; more are answered 429 with `retry-after`
    /// (the agent slows down, it is not stopped). Default: none.
    #[schema(format = Int64, minimum = 1, maximum = 4294967295_u64)]
    pub requests_per_minute: Option<u32>,
}

impl Default for LimitsSchema {
    /// The defaults the domain type applies, so the document shows them.
    fn default() -> Self {
        let limits = crate::execution::Limits::default();
        LimitsSchema {
            timeout: TimeoutSchema::Text(DurationText(
                humantime::format_duration(limits.timeout).to_string(),
            )),
            cpus: limits.cpus,
            memory_bytes: limits.memory_bytes,
            pids: limits.pids,
            max_artifact_bytes: limits.max_artifact_bytes,
            workspace_bytes: limits.workspace_bytes,
            max_tokens: limits.max_tokens,
            max_requests: limits.max_requests,
            requests_per_minute: limits.requests_per_minute,
        }
    }
}

/// Tokens (as the agent reported them, or as the gateway metered them).
#[derive(Serialize, ToSchema)]
#[schema(as = Usage)]
pub struct UsageSchema {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens served from the prompt cache.
    pub cache_read_input_tokens: u64,
}

/// A file the agent changed.
#[derive(Serialize, ToSchema)]
#[schema(as = ChangedFile)]
pub struct ChangedFileSchema {
    /// Path inside the repository.
    pub path: String,
    /// git's status letter: `A` added, `M` modified, `D` deleted, `T` type changed.
    pub change: String,
}

/// Where an execution is in its life cycle. `succeeded`, `failed`, `timed_out`,
/// `cancelled`, `out_of_memory` and `budget_exceeded` are final.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Status)]
pub enum StatusSchema {
    Queued,
    Preparing,
    Running,
    Collecting,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    OutOfMemory,
    BudgetExceeded,
}

/// How a delivery ended: `pushed`, `merged` (and merged into the
/// integration branch), `conflict` (pushed; the integration branch left as
/// it was), `rejected` (the remote's branch is someone else's work; nothing
/// overwritten), `auth_failed`, `unreachable` (after every retry), `failed`,
/// `skipped` (the execution did not succeed or changed nothing).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DeliveryStatus)]
pub enum DeliveryStatusSchema {
    Pushed,
    Merged,
    Conflict,
    Rejected,
    AuthFailed,
    Unreachable,
    Failed,
    Skipped,
}

/// Lines and files the delivered branch changes against its base.
#[derive(Serialize, ToSchema)]
#[schema(as = DiffStats)]
pub struct DiffStatsSchema {
    pub files_changed: u64,
    pub insertions: u64,
    pub deletions: u64,
}

/// What became of an execution's delivery to its remote.
#[derive(Serialize, ToSchema)]
#[schema(as = Delivery)]
pub struct DeliverySchema {
    /// How it ended.
    pub status: DeliveryStatusSchema,
    /// The remote (the repository's location, credential-free).
    pub remote: String,
    /// The branch pushed.
    pub branch: String,
    /// The branch's commit.
    pub commit: Option<String>,
    /// The commit the work started from.
    pub base_commit: Option<String>,
    /// What the branch changes against the base.
    pub stats: Option<DiffStatsSchema>,
    /// The integration branch merged into, when asked.
    pub merge_into: Option<String>,
    /// The integration branch's commit after the merge.
    pub merge_commit: Option<String>,
    /// Paths that conflicted with the integration branch.
    pub conflicts: Vec<String>,
    /// Why it did not land (never holds a credential).
    pub error: Option<String>,
    /// Attempts made (transient failures are retried with backoff).
    pub attempts: u32,
    /// When it ended.
    pub finished_at: chrono::DateTime<chrono::Utc>,
}

/// What agentd's gateway counted from the model's answers: authoritative,
/// independent of what the agent reports.
#[derive(Serialize, ToSchema)]
#[schema(as = GatewayUsage)]
pub struct GatewayUsageSchema {
    /// Model requests forwarded upstream.
    pub requests: u64,
    /// Tokens, summed over every answer.
    pub usage: UsageSchema,
    /// Cost from the price table (absent while no answer's model was priced).
    pub cost_usd: Option<f64>,
}

/// A file the agent changed that agentd did not bring back whole.
#[derive(Serialize, ToSchema)]
#[schema(as = LeftOut)]
pub struct LeftOutSchema {
    /// Path inside the repository.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// `too_large` (not collected: not in the branch, bundle or diff) or
    /// `too_large_for_diff` (in the branch and bundle, not shown in the diff).
    pub reason: String,
}

/// What the agent reported about itself at the end: a claim from inside the
/// sandbox, kept beside what agentd observed.
#[derive(Serialize, ToSchema)]
#[schema(as = AgentClaim)]
pub struct AgentClaimSchema {
    /// The agent's result subtype (`success`, `error_max_turns`, …).
    pub subtype: String,
    /// The agent's own error flag.
    pub is_error: bool,
    /// Turns, as the agent counted them.
    pub num_turns: u64,
    /// Tokens, as the agent counted them.
    pub usage: UsageSchema,
    /// Cost, as the agent computed it.
    pub cost_usd: Option<f64>,
    /// Tool calls its output showed.
    pub tool_calls: u64,
    /// Its final text.
    pub result: Option<String>,
}

/// What agentd's gateway saw of the conversation itself.
#[derive(Serialize, ToSchema)]
#[schema(as = Conversation)]
pub struct ConversationSchema {
    /// Complete model answers.
    pub answers: u64,
    /// Tool calls the model asked for, over all answers.
    pub tool_uses: u64,
    /// How the last complete answer ended (`end_turn`, `tool_use`, `max_tokens`, …).
    pub stop_reason: Option<String>,
    /// The last complete answer's text (capped at 64 KiB).
    pub text: Option<String>,
}

/// Who an event comes from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EventSource)]
pub enum EventSourceSchema {
    /// agentd itself (`status`, `progress`, `log`, `refused`, `warning`).
    Agentd,
    /// The agent, parsed by its adapter (`session_started`, `text`, `tool_call`,
    /// `tool_result`, `retry`, `usage`, `result`, `raw`, …).
    Agent,
}

/// One entry of an execution's event log, as sent in an SSE `data:` line. More
/// fields follow, depending on `source` and `type`.
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventSchema {
    /// Position in the log, from 1, without gaps; the SSE `id`.
    pub seq: u64,
    /// When agentd recorded it.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who it comes from.
    pub source: EventSourceSchema,
    /// What it is; the SSE `event` name.
    #[serde(rename = "type")]
    #[schema(example = "status")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    use super::*;

    #[test]
    fn duration_texts_are_read_exactly_as_documented() {
        use utoipa::OpenApi as _;
        let doc = serde_json::to_value(super::super::openapi::ApiDoc::openapi()).unwrap();
        let pattern = doc["components"]["schemas"]["DurationText"]["pattern"]
            .as_str()
            .unwrap()
            .to_string();
        let documented = regex_lite::Regex::new(&pattern).unwrap();
        for text in [
            "10m", "1h 30m", "1h30m", " 2h ", "1day", "1d", "3days", "1s", "90s", "999999s",
            "1h 0m", "0s", "0m", "00h", "500ms", "1.5h", "1 h", "1H", "h", "", " ", "1y",
            "1000000s", "1m -1s", "1 day",
        ] {
            assert_eq!(
                crate::execution::humantime_serde::is_duration_text(text),
                documented.is_match(text),
                "{text:?}"
            );
        }
    }
    use crate::execution::ChangedFile;
    use crate::execution::{AgentOptions, Usage};
    use crate::execution::{ExecutionRequest, Limits, Status};

    fn documented<T: PartialSchema>() -> BTreeSet<String> {
        match T::schema() {
            RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
            _ => panic!("not an object schema"),
        }
    }

    fn serialised(value: impl Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn schemas_list_exactly_the_domain_fields() {
        let request = ExecutionRequest {
            repo: "r".into(),
            git_ref: None,
            prompt: "p".into(),
            agent: AgentOptions::default(),
            context_file: None,
            limits: Limits::default(),
            record: false,
            replay: None,
            agent_id: None,
            task_id: None,
            branch_template: None,
            push: false,
            merge_into: None,
            hooks: Default::default(),
            retries: 1,
            streaming_input: true,
            sandbox: Default::default(),
        };
        assert_eq!(documented::<ExecutionRequestSchema>(), serialised(&request));
        let follow_up = crate::execution::FollowUpRequest {
            prompt: "p".into(),
            agent: Some(AgentOptions::default()),
            limits: Some(Limits::default()),
            context_file: Some("c".into()),
            hooks: Some(Default::default()),
            push: Some(true),
            merge_into: Some("m".into()),
            record: false,
            replay: Some("r".into()),
            streaming_input: false,
            retries: 0,
        };
        assert_eq!(
            documented::<FollowUpRequestSchema>(),
            serialised(&follow_up)
        );
        assert_eq!(
            documented::<GatewayUsageSchema>(),
            serialised(crate::execution::GatewayUsage::default())
        );
        assert_eq!(
            documented::<AgentOptionsSchema>(),
            serialised(AgentOptions::default())
        );
        assert_eq!(documented::<LimitsSchema>(), serialised(Limits::default()));
        assert_eq!(
            documented::<SandboxOptionsSchema>(),
            serialised(crate::execution::SandboxOptions {
                image: Some("i".into()),
                runtime: Some("r".into()),
            })
        );
        let rule = crate::execution::ToolRule {
            rule: "Read".into(),
            source: crate::execution::RuleSource::Policy,
        };
        let tools = crate::execution::ToolRules {
            allow: vec![rule.clone()],
            deny: vec![],
            only_allowed: true,
        };
        let clamp = crate::execution::Clamp {
            field: "limits.cpus".into(),
            asked: serde_json::json!(2),
            allowed: serde_json::json!(1),
        };
        assert_eq!(documented::<ToolRuleSchema>(), serialised(&rule));
        assert_eq!(documented::<ToolRulesSchema>(), serialised(&tools));
        assert_eq!(documented::<ClampSchema>(), serialised(&clamp));
        assert_eq!(
            documented::<AppliedPolicySchema>(),
            serialised(crate::execution::AppliedPolicy {
                clamped: vec![clamp],
                tools,
                daily_spend_usd: Some(1.0),
                conversation_budget: true,
                models: vec!["claude-*".into()],
                allow_private_hosts: false,
                operator: false,
                git_author_name: Some("Acme".into()),
                git_author_email: Some("a@acme.example".into()),
                commit_message: Some("{prompt}".into()),
            })
        );
        assert_eq!(documented::<UsageSchema>(), serialised(Usage::default()));
        assert_eq!(
            documented::<LeftOutSchema>(),
            serialised(crate::execution::LeftOut {
                path: "a".into(),
                size: 1,
                reason: "too_large".into()
            })
        );
        assert_eq!(
            documented::<AgentClaimSchema>(),
            serialised(crate::execution::AgentClaim {
                subtype: "success".into(),
                is_error: false,
                num_turns: 1,
                usage: Usage::default(),
                cost_usd: None,
                tool_calls: 0,
                result: None
            })
        );
        assert_eq!(
            documented::<ChangedFileSchema>(),
            serialised(ChangedFile {
                path: "a".into(),
                change: "M".into()
            })
        );
    }

    #[test]
    fn only_repo_and_prompt_are_required_and_nothing_is_nullable_that_refuses_null() {
        let request = serde_json::to_value(ExecutionRequestSchema::schema()).unwrap();
        assert_eq!(request["required"], serde_json::json!(["repo", "prompt"]));
        for schema in [
            serde_json::to_value(LimitsSchema::schema()).unwrap(),
            serde_json::to_value(AgentOptionsSchema::schema()).unwrap(),
        ] {
            assert!(schema.get("required").is_none(), "{schema}");
        }
        let limits = serde_json::to_value(LimitsSchema::schema()).unwrap();
        assert_eq!(limits["properties"]["cpus"]["type"], "number");
        assert_eq!(limits["properties"]["pids"]["default"], 256);
        // And the domain type indeed refuses null there.
        assert!(serde_json::from_str::<Limits>(r#"{"cpus":null}"#).is_err());
    }

    #[test]
    fn status_schema_lists_every_status() {
        let json = serde_json::to_value(StatusSchema::schema()).unwrap();
        let names: Vec<String> = serde_json::from_value(json["enum"].clone()).unwrap();
        let expected: Vec<String> = Status::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, expected);
    }
}
