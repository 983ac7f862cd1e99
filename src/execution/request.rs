//! What a client asks for: a repository, a prompt, agent options and limits.

use std::time::Duration;

use super::names::is_ref_name;
use serde::{Deserialize, Serialize};

use crate::execution::AgentOptions;

/// One execution as asked for. Records embed it whole, so it does not refuse
/// unknown fields itself: the API does, for any field of a request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRequest {
    /// A git URL or a local path on the supervisor's host.
    pub repo: String,
    /// Branch, tag or commit to start from. Default: the repository's default branch.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// The task for the agent.
    pub prompt: String,
    /// Options for the agent CLI.
    #[serde(default)]
    pub agent: AgentOptions,
    /// Text given to the agent as a `CLAUDE.md` memory file (project instructions),
    /// without adding a file to the repository.
    #[serde(default)]
    pub context_file: Option<String>,
    /// Resource limits of the sandbox and of its model use.
    #[serde(default)]
    pub limits: Limits,
    /// Which image and OCI runtime the sandbox uses (the server's own by default;
    /// an admin's policy says which a tenant may choose, and may force one).
    #[serde(default)]
    pub sandbox: SandboxOptions,
    /// Record every model exchange into a cassette stored with the results
    /// (secrets redacted), to replay later.
    #[serde(default)]
    pub record: bool,
    /// Play the model's side from a recorded cassette instead of calling the
    /// model: the id of an execution recorded with `record` (the CLI also takes a
    /// cassette file path).
    #[serde(default)]
    pub replay: Option<String>,
    /// The caller's name for the agent doing the work, for branch names
    /// (`{agent_id}`).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// The caller's name for the task, for branch names (`{task_id}`).
    #[serde(default)]
    pub task_id: Option<String>,
    /// The template the work's branch is named from (see
    /// [`super::branch`]). Default: `agent/{execution_id}`.
    #[serde(default)]
    pub branch_template: Option<String>,
    /// Push the work's branch to the repository's remote when the execution
    /// succeeds, with the tenant's stored credential (from the host; the
    /// credential never enters the sandbox).
    #[serde(default)]
    pub push: bool,
    /// Also merge the branch into this integration branch on the remote
    /// (needs `push`).
    #[serde(default)]
    pub merge_into: Option<String>,
    /// Commands run in the sandbox before and after the agent.
    #[serde(default)]
    pub hooks: super::Hooks,
    /// How many times the execution may be queued again when the engine
    /// running it is lost (its replica's pod or node vanished without
    /// draining). 0 (the default): it ends `failed` with reason `engine_lost`.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "super::whole::number"
    )]
    pub retries: u32,
    /// Start the agent in streaming-input mode: its prompt, and any message
    /// sent while it runs (`POST /v1/executions/{id}/messages`), reach it on
    /// its standard input; agentd closes the input once the agent reported
    /// its result with no message pending. Default: false (the prompt is an
    /// argument and nothing can be said to the agent while it runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub streaming_input: bool,
}

/// The most `retries` a request may ask for.
pub const MAX_RETRIES: u32 = 3;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ExecutionRequest {
    /// The branch this request's execution `id` of `tenant` works on.
    pub fn branch_for(&self, id: &str, tenant: &str) -> String {
        let naming = super::branch::Naming {
            execution_id: id,
            tenant,
            agent_id: self.agent_id.as_deref(),
            task_id: self.task_id.as_deref(),
        };
        let template = self
            .branch_template
            .as_deref()
            .unwrap_or(super::branch::DEFAULT_BRANCH_TEMPLATE);
        // Validation refused any template that cannot render; a record
        // read back from an older agentd has none.
        super::branch::render(template, &naming).unwrap_or_else(|_| super::names::branch_name(id))
    }
}

/// The sandbox's image and runtime, when the request chooses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxOptions {
    /// The agent image (`name:tag`, present on the engine). Default: the
    /// server's agent image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The OCI runtime (`runc`, `runsc`). Default: the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

/// Sandbox limits. Every field has a default; an admin policy may narrow them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock limit from the start of the execution until the agent exits
    /// (collecting results afterwards has its own bound). Default: 30 min.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// CPU quota in cores. Default: 1.
    pub cpus: f64,
    /// Memory limit in bytes, with no swap. Default: 2 GiB.
    #[serde(deserialize_with = "super::whole::number")]
    pub memory_bytes: u64,
    /// Process and thread limit. Default: 256.
    #[serde(deserialize_with = "super::whole::number")]
    pub pids: u32,
    /// Cap on the artifacts brought back, in bytes. Default: 1 GiB.
    #[serde(deserialize_with = "super::whole::number")]
    pub max_artifact_bytes: u64,
    /// Size of the workspace filesystem the agent works in, in bytes; writes
    /// beyond it fail with "no space left on device". Default: 4 GiB.
    #[serde(deserialize_with = "super::whole::number")]
    pub workspace_bytes: u64,
    /// Tokens the model may use in all (input, output, cache writes and reads,
    /// as counted by the gateway); reaching it ends the execution
    /// `budget_exceeded`. Default: none.
    #[serde(deserialize_with = "super::whole::optional")]
    pub max_tokens: Option<u64>,
    /// Model requests allowed in all; the next one ends the execution
    /// `budget_exceeded`. Default: none.
    #[serde(deserialize_with = "super::whole::optional")]
    pub max_requests: Option<u64>,
    /// Model requests allowed per rolling minute; more are answered 429 with a
    /// `retry-after`, so the agent slows down rather than stops. Default: none.
    #[serde(deserialize_with = "super::whole::optional")]
    pub requests_per_minute: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            cpus: DEFAULT_CPUS,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            pids: DEFAULT_PIDS,
            max_artifact_bytes: 1 << 30,
            workspace_bytes: DEFAULT_WORKSPACE_BYTES,
            max_tokens: None,
            max_requests: None,
            requests_per_minute: None,
        }
    }
}

/// Default CPU quota: one core.
pub const DEFAULT_CPUS: f64 = 1.0;
/// Default memory limit: 2 GiB, with no swap on top.
pub const DEFAULT_MEMORY_BYTES: u64 = 2 << 30;
/// Default process and thread limit: enough for the CLI, git and a test run,
/// not a fork bomb.
pub const DEFAULT_PIDS: u32 = 256;
/// Default workspace size: 4 GiB.
pub const DEFAULT_WORKSPACE_BYTES: u64 = 4 << 30;

/// Default execution time limit: 30 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest prompt accepted: 100 KiB (it travels as one argument, and Linux caps
/// a single argument at 128 KiB).
pub const MAX_PROMPT_BYTES: usize = 100 * 1024;

/// A request field that breaks a rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InvalidField {
    /// The field, as a JSON path (`limits.memory_bytes`).
    pub field: &'static str,
    /// The rule it breaks, in words.
    pub rule: String,
}

pub(super) fn invalid(field: &'static str, rule: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        rule: rule.into(),
    }
}

impl ExecutionRequest {
    /// Checks every field and returns the first rule broken.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.repo.trim().is_empty() {
            return Err(invalid("repo", "must not be empty"));
        }
        if self.prompt.trim().is_empty() {
            return Err(invalid("prompt", "must not be empty"));
        }
        if self.prompt.len() > MAX_PROMPT_BYTES {
            return Err(invalid(
                "prompt",
                format!("must be at most {MAX_PROMPT_BYTES} bytes"),
            ));
        }
        if self.prompt.contains('\0') {
            return Err(invalid("prompt", "must not contain NUL characters"));
        }
        if let Some(git_ref) = &self.git_ref
            && !is_ref_name(git_ref)
        {
            return Err(invalid(
                "ref",
                "must be a branch, tag or commit name (no spaces, control characters, `..` or ~^:?*[\\)",
            ));
        }
        for (field, label) in [("agent_id", &self.agent_id), ("task_id", &self.task_id)] {
            if let Some(label) = label
                && !super::branch::is_label(label)
            {
                return Err(invalid(
                    field,
                    "must be 1 to 64 letters, digits, `_` and `-`, not starting with `-`",
                ));
            }
        }
        self.hooks.validate()?;
        if self.retries > MAX_RETRIES {
            return Err(invalid(
                "retries",
                format!("must be between 0 and {MAX_RETRIES}"),
            ));
        }
        if let Some(target) = &self.merge_into {
            if !self.push {
                return Err(invalid("merge_into", "needs `push`: true"));
            }
            if !super::branch::is_branch_name(target) {
                return Err(invalid(
                    "merge_into",
                    "must be a valid branch name (git check-ref-format rules)",
                ));
            }
        }
        if let Some(template) = &self.branch_template {
            super::branch::check_template(
                template,
                self.agent_id.as_deref(),
                self.task_id.as_deref(),
            )
            .map_err(|error| invalid("branch_template", error.to_string()))?;
        }
        if let Some(context) = &self.context_file
            && (context.len() > MAX_PROMPT_BYTES || context.contains('\0'))
        {
            return Err(invalid(
                "context_file",
                format!("must be at most {MAX_PROMPT_BYTES} bytes of text"),
            ));
        }
        if let Some(replay) = &self.replay
            && (replay.trim().is_empty() || replay.len() > 4096 || replay.contains('\0'))
        {
            return Err(invalid("replay", "must name a recorded execution"));
        }
        let agent = &self.agent;
        if agent.max_turns == Some(0) {
            return Err(invalid("agent.max_turns", "must be at least 1"));
        }
        if let Some(budget) = agent.max_budget_usd
            && !(budget.is_finite() && budget > 0.0)
        {
            return Err(invalid("agent.max_budget_usd", "must be a positive number"));
        }
        if let Some(model) = &agent.model
            && (model.is_empty()
                || model.len() > 200
                || model.starts_with('-')
                || model.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(invalid("agent.model", "must be a model name"));
        }
        if let Some(prompt) = &agent.append_system_prompt
            && (prompt.len() > MAX_PROMPT_BYTES || prompt.contains('\0'))
        {
            return Err(invalid(
                "agent.append_system_prompt",
                format!("must be at most {MAX_PROMPT_BYTES} bytes of text without NUL"),
            ));
        }
        for rule in agent.allowed_tools.iter().chain(&agent.disallowed_tools) {
            if rule.trim().is_empty() || rule.starts_with('-') || rule.contains('\0') {
                return Err(invalid(
                    "agent.allowed_tools",
                    format!("`{rule}` is not a tool rule"),
                ));
            }
        }
        self.limits.validate()
    }
}

impl Limits {
    /// Checks each limit against its sane range.
    pub fn validate(&self) -> Result<(), InvalidField> {
        if self.timeout < Duration::from_secs(1) || self.timeout > Duration::from_secs(24 * 3600) {
            return Err(invalid("limits.timeout", "must be between 1s and 24h"));
        }
        if !(self.cpus.is_finite() && (0.1..=64.0).contains(&self.cpus)) {
            return Err(invalid("limits.cpus", "must be between 0.1 and 64"));
        }
        if !(32 << 20..=256 << 30).contains(&self.memory_bytes) {
            return Err(invalid(
                "limits.memory_bytes",
                "must be between 32 MiB and 256 GiB",
            ));
        }
        if !(16..=65_536).contains(&self.pids) {
            return Err(invalid("limits.pids", "must be between 16 and 65536"));
        }
        if self.max_artifact_bytes > 64 << 30 {
            return Err(invalid(
                "limits.max_artifact_bytes",
                "must be at most 64 GiB",
            ));
        }
        if !(64 << 20..=1 << 40).contains(&self.workspace_bytes) {
            return Err(invalid(
                "limits.workspace_bytes",
                "must be between 64 MiB and 1 TiB",
            ));
        }
        if self.max_tokens == Some(0) {
            return Err(invalid("limits.max_tokens", "must be at least 1"));
        }
        if self.max_requests == Some(0) {
            return Err(invalid("limits.max_requests", "must be at least 1"));
        }
        if self.requests_per_minute == Some(0) {
            return Err(invalid("limits.requests_per_minute", "must be at least 1"));
        }
        Ok(())
    }
}

/// Parses a size such as `2g`, `512m`, `64MiB`, `1048576` into bytes
/// (binary multiples: k = 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 2g, 512m)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("unknown size unit `{other}` (use k, m, g, t)")),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Serde support for durations written like `10m`, `90s`, `1h30m` (or seconds as a number).
pub(crate) mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(serde_json::Number),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => super::super::whole::seconds(seconds).map(Duration::from_secs),
            Raw::Text(text) if is_duration_text(&text) => {
                humantime::parse_duration(&text).map_err(serde::de::Error::custom)
            }
            Raw::Text(text) => Err(serde::de::Error::custom(format!(
                "`{text}` is not a duration: whole numbers with s, m, h or d, the first not 0 \
                 (`10m`, `1h 30m`), or a number of seconds"
            ))),
        }
    }

    /// The duration texts the API documents (`DurationText`'s pattern):
    /// one or more whole numbers of up to six digits, each with a unit of
    /// `s`, `m`, `h`, `d`, `day` or `days`, spaces allowed between; the first
    /// number not 0, so a text is never under a second.
    pub fn is_duration_text(text: &str) -> bool {
        let mut rest = text.trim();
        let mut first = true;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=6).contains(&digits) || (first && rest.starts_with('0')) {
                return false;
            }
            rest = rest[digits..].trim_start();
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            if !matches!(&rest[..letters], "s" | "m" | "h" | "d" | "day" | "days") {
                return false;
            }
            rest = rest[letters..].trim_start();
            first = false;
        }
        !first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ExecutionRequest {
        ExecutionRequest {
            repo: "https://example.com/r.git".into(),
            git_ref: None,
            prompt: "fix it".into(),
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
            retries: 0,
            streaming_input: false,
            sandbox: SandboxOptions::default(),
        }
    }

    #[test]
    fn defaults_are_valid() {
        request().validate().unwrap();
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        type Breaker = Box<dyn Fn(&mut ExecutionRequest)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("repo", Box::new(|r| r.repo = " ".into())),
            ("prompt", Box::new(|r| r.prompt = String::new())),
            (
                "merge_into",
                Box::new(|r| r.merge_into = Some("integration".into())),
            ),
            (
                "merge_into",
                Box::new(|r| {
                    r.push = true;
                    r.merge_into = Some("bad..name".into());
                }),
            ),
            (
                "prompt",
                Box::new(|r| r.prompt = "x".repeat(MAX_PROMPT_BYTES + 1)),
            ),
            ("ref", Box::new(|r| r.git_ref = Some("--exec".into()))),
            ("agent.max_turns", Box::new(|r| r.agent.max_turns = Some(0))),
            (
                "agent.max_budget_usd",
                Box::new(|r| r.agent.max_budget_usd = Some(f64::NAN)),
            ),
            (
                "limits.timeout",
                Box::new(|r| r.limits.timeout = Duration::ZERO),
            ),
            ("limits.cpus", Box::new(|r| r.limits.cpus = 0.0)),
            (
                "limits.memory_bytes",
                Box::new(|r| r.limits.memory_bytes = 1),
            ),
            ("limits.pids", Box::new(|r| r.limits.pids = 1)),
            (
                "limits.workspace_bytes",
                Box::new(|r| r.limits.workspace_bytes = 1 << 20),
            ),
            (
                "limits.max_tokens",
                Box::new(|r| r.limits.max_tokens = Some(0)),
            ),
            (
                "limits.max_requests",
                Box::new(|r| r.limits.max_requests = Some(0)),
            ),
            (
                "limits.requests_per_minute",
                Box::new(|r| r.limits.requests_per_minute = Some(0)),
            ),
            ("replay", Box::new(|r| r.replay = Some(" ".into()))),
            // A NUL anywhere is refused at submission, never after a container started.
            ("ref", Box::new(|r| r.git_ref = Some("main\0x".into()))),
            (
                "agent.model",
                Box::new(|r| r.agent.model = Some("claude\0".into())),
            ),
            (
                "agent.append_system_prompt",
                Box::new(|r| r.agent.append_system_prompt = Some("be\0nice".into())),
            ),
            (
                "agent.allowed_tools",
                Box::new(|r| r.agent.allowed_tools = vec!["Bash\0".into()]),
            ),
            (
                "context_file",
                Box::new(|r| r.context_file = Some("\0".into())),
            ),
            ("replay", Box::new(|r| r.replay = Some("a\0".into()))),
        ];
        for (field, break_it) in cases {
            let mut r = request();
            break_it(&mut r);
            assert_eq!(r.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("2g").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3x").is_err());
    }

    #[test]
    fn json_form_with_human_durations() {
        let r: ExecutionRequest = serde_json::from_str(
            r#"{"repo":"r","ref":"main","prompt":"p","limits":{"timeout":"10m","cpus":2}}"#,
        )
        .unwrap();
        assert_eq!(r.git_ref.as_deref(), Some("main"));
        assert_eq!(r.limits.timeout, Duration::from_secs(600));
        assert_eq!(r.limits.cpus, 2.0);
        assert_eq!(r.limits.pids, 256);
        // Unknown nested fields are refused here; unknown top-level fields by
        // the API's body parser (api::extract), which sees the whole document.
        let err = serde_json::from_str::<ExecutionRequest>(
            r#"{"repo":"r","prompt":"p","limits":{"bogus":1}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }
}
