//! OpenAPI schemas of the admins' policy document (`crate::tenancy::Policy`),
//! which the API carries but does not own. A test checks each lists exactly
//! the fields of its domain type. Every field is optional; unknown fields are
//! refused.

use utoipa::ToSchema;

/// A policy document: global defaults, or one tenant's overrides (an absent
/// field inherits).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Policy)]
#[allow(dead_code)]
pub struct PolicySchema {
    /// The most an execution may ask for.
    pub caps: Option<CapsSchema>,
    /// Above a cap: `refuse` (422, the default) or `clamp` (lowered, recorded
    /// with the execution and in its events).
    #[schema(example = "refuse")]
    pub over_cap: Option<OverCapSchema>,
    /// Executions of one tenant running at once; more wait in the queue.
    #[schema(format = Int64, minimum = 1, maximum = 4294967295_u64)]
    pub max_concurrent: Option<u32>,
    /// A tenant's model spend per UTC day, in US dollars.
    #[schema(minimum = 0.0)]
    pub daily_spend_usd: Option<f64>,
    /// An execution's model limits (`agent.max_budget_usd`,
    /// `limits.max_tokens`, `limits.max_requests`) count its whole
    /// conversation: a follow-up gets what the earlier steps left of them.
    /// Default: false.
    pub conversation_budget: Option<bool>,
    /// Where repositories may come from.
    pub sources: Option<SourcesSchema>,
    /// Agent images a request may name (`*` wildcards). Default: the server's.
    pub images: Option<Vec<PolicyEntry>>,
    /// Models a request may name and the gateway forwards (`*` wildcards).
    #[schema(example = json!(["claude-sonnet-*"]), min_items = 1)]
    pub models: Option<Vec<PolicyEntry>>,
    /// OCI runtimes a request may name. Default: the server's.
    pub runtimes: Option<Vec<PolicyEntry>>,
    /// The runtime every execution uses (e.g. `runsc`).
    pub force_runtime: Option<PolicyEntry>,
    /// Tool rules enforced in the sandbox.
    pub tools: Option<ToolPolicySchema>,
    /// How the work is committed and delivered.
    pub git: Option<GitPolicySchema>,
    /// Lifecycle hooks every execution runs, and whether requests may add theirs.
    pub hooks: Option<HooksPolicySchema>,
}

/// A tenant's lifecycle hooks: its setup hooks run before a request's own,
/// its teardown hooks after (at most 8 per stage in all).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HooksPolicy)]
#[allow(dead_code)]
pub struct HooksPolicySchema {
    #[schema(max_items = 8)]
    pub setup: Option<Vec<super::schemas::SetupHookSchema>>,
    #[schema(max_items = 8)]
    pub teardown: Option<Vec<super::schemas::TeardownHookSchema>>,
    /// Whether a request may give hooks of its own (refused with 422
    /// otherwise). Default: yes.
    pub request_hooks: Option<bool>,
}

/// How a tenant's work is committed and delivered.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GitPolicy)]
#[allow(dead_code)]
pub struct GitPolicySchema {
    /// Push every succeeded execution's branch (requests that leave `push`
    /// off are pushed too).
    pub push: Option<bool>,
    /// The integration branch pushed branches are merged into when a request
    /// names none (a valid branch name).
    #[schema(example = "integration", max_length = 255)]
    pub merge_into: Option<String>,
    /// The name commits and merges are authored and committed as.
    #[schema(example = "Acme Agents", pattern = r"^[^\x00-\x1f\x7f-\x9f<>]{1,200}$")]
    pub author_name: Option<String>,
    /// Their email.
    #[schema(
        example = "agents@acme.example",
        max_length = 254,
        pattern = r"^[!-;=?-~]*@[!-;=?-~]*$"
    )]
    pub author_email: Option<String>,
    /// The commit message, a template: `{prompt}` (the prompt's first line,
    /// at most 72 characters), `{execution_id}`, `{branch}`, `{tenant}`,
    /// `{agent_id}`, `{task_id}`.
    #[schema(
        example = "{prompt}\n\nAgent-Execution: {execution_id}",
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00]+$"
    )]
    pub commit_message: Option<String>,
}

/// Above a cap: refuse or lower.
#[derive(ToSchema)]
#[schema(as = OverCap)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OverCapSchema {
    /// 422 naming the field, the asked and the allowed value.
    Refuse,
    /// Lowered to the cap and recorded.
    Clamp,
}

/// Caps on one execution's request.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Caps)]
#[allow(dead_code)]
pub struct CapsSchema {
    /// `limits.cpus`.
    #[schema(exclusive_minimum = 0.0)]
    pub cpus: Option<f64>,
    /// `limits.memory_bytes`.
    #[schema(minimum = 1)]
    pub memory_bytes: Option<u64>,
    /// `limits.pids`.
    #[schema(format = Int64, minimum = 1, maximum = 4294967295_u64)]
    pub pids: Option<u32>,
    /// `limits.timeout`: `10m`, `1h30m`, or seconds (1 s to 24 h).
    #[schema(value_type = Option<super::schemas::TimeoutSchema>, example = "30m")]
    pub timeout: Option<String>,
    /// `agent.max_turns`.
    #[schema(format = Int64, minimum = 1, maximum = 4294967295_u64)]
    pub max_turns: Option<u32>,
    /// `agent.max_budget_usd`.
    #[schema(exclusive_minimum = 0.0)]
    pub max_budget_usd: Option<f64>,
    /// `limits.max_tokens`.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    /// `limits.max_requests`.
    #[schema(minimum = 1)]
    pub max_requests: Option<u64>,
    /// `limits.max_artifact_bytes`.
    pub max_artifact_bytes: Option<u64>,
    /// `limits.workspace_bytes`.
    #[schema(minimum = 1)]
    pub workspace_bytes: Option<u64>,
}

/// Where repositories may come from.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Sources)]
#[allow(dead_code)]
pub struct SourcesSchema {
    /// URL schemes allowed (`https`, `http`, `ssh`, `git`). Default: all four.
    pub schemes: Option<Vec<SchemeSchema>>,
    /// URL patterns (`*` wildcards) a repository URL must match.
    #[schema(example = json!(["https://git.example.com/acme/*"]))]
    pub urls: Option<Vec<PolicyEntry>>,
    /// Host directories under which local paths and `file://` URLs are
    /// allowed. Default: none.
    pub local_paths: Option<Vec<HostPrefix>>,
    /// Allow hosts resolving to loopback, private or link-local addresses.
    /// Default: false.
    pub private_hosts: Option<bool>,
}

/// Tool rules in the CLI's permission syntax.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ToolPolicy)]
#[allow(dead_code)]
pub struct ToolPolicySchema {
    /// Calls that may run (`Bash(git *)`, `Read`).
    pub allow: Option<Vec<PolicyEntry>>,
    /// Calls refused whatever allows them (`Bash(curl *)`, `Read(./.env)`).
    pub deny: Option<Vec<PolicyEntry>>,
    /// Refuse every call no allow rule matches.
    pub only_allowed: Option<bool>,
}

/// One entry of a policy list: non-empty text without control characters
/// (at most 1024 bytes).
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f]{1,1024}$")]
#[allow(dead_code)]
pub struct PolicyEntry(String);

/// A host directory: absolute, without `.` or `..` components.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    pattern = r"^(?!.*/\.{1,2}(/|$))/[^\x00-\x1f\x7f-\x9f]{0,1023}$"
)]
#[allow(dead_code)]
pub struct HostPrefix(String);

/// A URL scheme a repository may use.
#[derive(ToSchema)]
#[schema(as = Scheme)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SchemeSchema {
    /// `https://`
    Https,
    /// `http://`
    Http,
    /// `ssh://` and `user@host:path`
    Ssh,
    /// `git://`
    Git,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    use super::*;
    use crate::tenancy::{Caps, GitPolicy, HooksPolicy, OverCap, Policy, Sources, ToolPolicy};

    fn documented<T: PartialSchema>() -> BTreeSet<String> {
        match T::schema() {
            RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
            _ => panic!("not an object schema"),
        }
    }

    fn serialised(value: impl serde::Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn policy_schemas_list_exactly_the_domain_fields() {
        let list = || Some(vec!["x".to_string()]);
        let caps = Caps {
            cpus: Some(1.0),
            memory_bytes: Some(1),
            pids: Some(1),
            timeout: Some(Duration::from_secs(60)),
            max_turns: Some(1),
            max_budget_usd: Some(1.0),
            max_tokens: Some(1),
            max_requests: Some(1),
            max_artifact_bytes: Some(1),
            workspace_bytes: Some(1),
        };
        let sources = Sources {
            schemes: list(),
            urls: list(),
            local_paths: list(),
            private_hosts: Some(true),
        };
        let tools = ToolPolicy {
            allow: list(),
            deny: list(),
            only_allowed: Some(true),
        };
        assert_eq!(documented::<CapsSchema>(), serialised(&caps));
        assert_eq!(documented::<SourcesSchema>(), serialised(&sources));
        assert_eq!(documented::<ToolPolicySchema>(), serialised(&tools));
        let git = GitPolicy {
            push: Some(true),
            merge_into: Some("integration".into()),
            author_name: Some("Acme".into()),
            author_email: Some("a@acme.example".into()),
            commit_message: Some("{prompt}".into()),
        };
        assert_eq!(documented::<GitPolicySchema>(), serialised(&git));
        let hooks = HooksPolicy {
            setup: Some(vec![crate::execution::SetupHook {
                command: "true".into(),
                timeout_seconds: 5,
            }]),
            teardown: Some(Vec::new()),
            request_hooks: Some(false),
        };
        assert_eq!(documented::<HooksPolicySchema>(), serialised(&hooks));
        let policy = Policy {
            caps,
            over_cap: Some(OverCap::Clamp),
            max_concurrent: Some(2),
            daily_spend_usd: Some(5.0),
            conversation_budget: Some(true),
            sources,
            images: list(),
            models: list(),
            runtimes: list(),
            force_runtime: Some("runsc".into()),
            tools,
            git,
            hooks,
        };
        assert_eq!(documented::<PolicySchema>(), serialised(&policy));
    }
}
