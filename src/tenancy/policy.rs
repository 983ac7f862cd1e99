//! The admins' policy: a document set once for everyone (`global`) and, per
//! tenant, overrides on top of it. Every field is optional; an absent field
//! inherits (a tenant's from the global policy, the global one from agentd's
//! defaults: no caps, refuse what is over a cap, network sources only, the
//! server's own image and runtime, any model, no tool rules).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::execution::InvalidField;

/// One scope's policy document, as admins write it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The most an execution may ask for.
    #[serde(
        skip_serializing_if = "Caps::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub caps: Caps,
    /// What happens to a request above a cap: refused (422) or lowered to the
    /// cap (recorded with the execution). Default: refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_cap: Option<OverCap>,
    /// Executions of one tenant running at once; more wait in the queue.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub max_concurrent: Option<u32>,
    /// A tenant's model spend per UTC day, in US dollars, as the gateway
    /// meters it: submissions are refused once it is reached, and running
    /// executions are stopped `budget_exceeded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_spend_usd: Option<f64>,
    /// An execution's model limits (`agent.max_budget_usd`,
    /// `limits.max_tokens`, `limits.max_requests`) count its whole
    /// conversation: a follow-up gets what the earlier steps left of them.
    /// Default: false (each step has its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_budget: Option<bool>,
    /// Where repositories may come from.
    #[serde(
        skip_serializing_if = "Sources::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub sources: Sources,
    /// Agent images a request may name (`*` wildcards). Default: only the
    /// server's own image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Models a request may name, and the gateway forwards (`*` wildcards).
    /// Default: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// OCI runtimes a request may name. Default: only the server's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtimes: Option<Vec<String>>,
    /// The runtime every execution uses whatever it asks (e.g. `runsc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_runtime: Option<String>,
    /// Tool rules enforced in the sandbox.
    #[serde(
        skip_serializing_if = "ToolPolicy::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub tools: ToolPolicy,
    /// How the work is committed and delivered.
    #[serde(
        skip_serializing_if = "GitPolicy::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub git: GitPolicy,
    /// Lifecycle hooks every execution runs, and whether requests may add theirs.
    #[serde(
        skip_serializing_if = "HooksPolicy::is_empty",
        deserialize_with = "null_is_default"
    )]
    pub hooks: HooksPolicy,
}

/// A tenant's lifecycle hooks in the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksPolicy {
    /// Run before the request's own setup hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<Vec<crate::execution::SetupHook>>,
    /// Run after the request's own teardown hooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teardown: Option<Vec<crate::execution::TeardownHook>>,
    /// Whether a request may give hooks of its own. Default: yes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_hooks: Option<bool>,
}

impl HooksPolicy {
    fn is_empty(&self) -> bool {
        self == &HooksPolicy::default()
    }

    fn overlay(&self, over: &HooksPolicy) -> HooksPolicy {
        HooksPolicy {
            setup: over.setup.clone().or_else(|| self.setup.clone()),
            teardown: over.teardown.clone().or_else(|| self.teardown.clone()),
            request_hooks: over.request_hooks.or(self.request_hooks),
        }
    }

    /// The policy's hooks as a request's.
    pub fn as_hooks(&self) -> crate::execution::Hooks {
        crate::execution::Hooks {
            setup: self.setup.clone().unwrap_or_default(),
            teardown: self.teardown.clone().unwrap_or_default(),
        }
    }
}

/// How a tenant's work is committed and delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitPolicy {
    /// Push every succeeded execution's branch (requests that leave `push`
    /// off are pushed too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<bool>,
    /// The integration branch pushed branches are merged into when a request
    /// names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_into: Option<String>,
    /// The name the work's commits and merges are authored and committed as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    /// Their email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
    /// The commit message, a template: `{prompt}` (the prompt's first line,
    /// at most 72 characters), `{execution_id}`, `{branch}`, `{tenant}`,
    /// `{agent_id}`, `{task_id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
}

impl GitPolicy {
    fn is_empty(&self) -> bool {
        self == &GitPolicy::default()
    }

    fn overlay(&self, over: &GitPolicy) -> GitPolicy {
        GitPolicy {
            push: over.push.or(self.push),
            merge_into: over.merge_into.clone().or_else(|| self.merge_into.clone()),
            author_name: over
                .author_name
                .clone()
                .or_else(|| self.author_name.clone()),
            author_email: over
                .author_email
                .clone()
                .or_else(|| self.author_email.clone()),
            commit_message: over
                .commit_message
                .clone()
                .or_else(|| self.commit_message.clone()),
        }
    }
}

/// A name git writes as an author: 1 to 200 characters, no control
/// characters, no `<` or `>` (they delimit the email).
pub fn is_author_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=200).contains(&count) && !name.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

/// An email git writes: 1 to 254 printable ASCII characters without spaces,
/// `<` or `>`, with an `@`.
pub fn is_author_email(email: &str) -> bool {
    (1..=254).contains(&email.len())
        && email.contains('@')
        && email
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'<' && b != b'>')
}

/// Above a cap: refuse or lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverCap {
    /// Refuse the request (422 naming the field, the asked and the allowed value).
    Refuse,
    /// Lower the field to the cap and record it with the execution.
    Clamp,
}

/// Caps on what one execution may ask for (each optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Caps {
    /// `limits.cpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// `limits.memory_bytes`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub memory_bytes: Option<u64>,
    /// `limits.pids`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub pids: Option<u32>,
    /// `limits.timeout` (`10m`, or seconds).
    #[serde(skip_serializing_if = "Option::is_none", with = "optional_duration")]
    pub timeout: Option<Duration>,
    /// `agent.max_turns`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub max_turns: Option<u32>,
    /// `agent.max_budget_usd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_budget_usd: Option<f64>,
    /// `limits.max_tokens`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub max_tokens: Option<u64>,
    /// `limits.max_requests`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub max_requests: Option<u64>,
    /// `limits.max_artifact_bytes`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub max_artifact_bytes: Option<u64>,
    /// `limits.workspace_bytes`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::execution::whole::optional"
    )]
    pub workspace_bytes: Option<u64>,
}

/// Where repositories may come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sources {
    /// URL schemes allowed (`https`, `http`, `ssh`, `git`). Default: all four.
    /// Local paths and `file://` are governed by `local_paths` alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemes: Option<Vec<String>>,
    /// URL patterns (`*` wildcards) a URL must match, without credentials,
    /// e.g. `https://git.example.com/acme/*`. Default: any URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Host directories under which local repositories (paths or `file://`)
    /// are allowed. Default: none — tenants may not name host paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_paths: Option<Vec<String>>,
    /// Allow hosts that resolve to loopback, link-local or private addresses.
    /// Default: refused (agentd's fetch must not become a way into the
    /// operator's network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_hosts: Option<bool>,
}

/// Tool rules in the CLI's permission syntax.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolPolicy {
    /// Rules whose calls may run (e.g. `Bash(git *)`, `Read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Rules whose calls are refused, whatever allows them (`Bash(curl *)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<String>>,
    /// Refuse every call no allow rule matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_allowed: Option<bool>,
}

/// A section written `null` reads as absent (every field inherits).
fn null_is_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Midnight UTC of `now`'s day: daily spend limits count per UTC day.
pub fn day_start(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|midnight| midnight.and_utc())
        .unwrap_or(now)
}

/// A policy's scope: the global one, or one tenant's overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Everyone's defaults.
    Global,
    /// One tenant's overrides.
    Tenant(&'a str),
}

impl Scope<'_> {
    /// The key the store files the policy under (`global`, `tenant:<id>`;
    /// tenant names may be `global`, so they are prefixed).
    pub fn key(&self) -> String {
        match self {
            Scope::Global => "global".to_string(),
            Scope::Tenant(tenant) => format!("tenant:{tenant}"),
        }
    }
}

impl Caps {
    fn is_empty(&self) -> bool {
        self == &Caps::default()
    }

    fn overlay(&self, over: &Caps) -> Caps {
        Caps {
            cpus: over.cpus.or(self.cpus),
            memory_bytes: over.memory_bytes.or(self.memory_bytes),
            pids: over.pids.or(self.pids),
            timeout: over.timeout.or(self.timeout),
            max_turns: over.max_turns.or(self.max_turns),
            max_budget_usd: over.max_budget_usd.or(self.max_budget_usd),
            max_tokens: over.max_tokens.or(self.max_tokens),
            max_requests: over.max_requests.or(self.max_requests),
            max_artifact_bytes: over.max_artifact_bytes.or(self.max_artifact_bytes),
            workspace_bytes: over.workspace_bytes.or(self.workspace_bytes),
        }
    }
}

impl Sources {
    fn is_empty(&self) -> bool {
        self == &Sources::default()
    }

    fn overlay(&self, over: &Sources) -> Sources {
        Sources {
            schemes: over.schemes.clone().or_else(|| self.schemes.clone()),
            urls: over.urls.clone().or_else(|| self.urls.clone()),
            local_paths: over
                .local_paths
                .clone()
                .or_else(|| self.local_paths.clone()),
            private_hosts: over.private_hosts.or(self.private_hosts),
        }
    }
}

impl ToolPolicy {
    fn is_empty(&self) -> bool {
        self == &ToolPolicy::default()
    }

    fn overlay(&self, over: &ToolPolicy) -> ToolPolicy {
        ToolPolicy {
            allow: over.allow.clone().or_else(|| self.allow.clone()),
            deny: over.deny.clone().or_else(|| self.deny.clone()),
            only_allowed: over.only_allowed.or(self.only_allowed),
        }
    }
}

impl Policy {
    /// `over` on top of this one: each field `over` sets replaces this one's
    /// (lists are replaced whole, not merged).
    pub fn overlay(&self, over: &Policy) -> Policy {
        Policy {
            caps: self.caps.overlay(&over.caps),
            over_cap: over.over_cap.or(self.over_cap),
            max_concurrent: over.max_concurrent.or(self.max_concurrent),
            daily_spend_usd: over.daily_spend_usd.or(self.daily_spend_usd),
            conversation_budget: over.conversation_budget.or(self.conversation_budget),
            sources: self.sources.overlay(&over.sources),
            images: over.images.clone().or_else(|| self.images.clone()),
            models: over.models.clone().or_else(|| self.models.clone()),
            runtimes: over.runtimes.clone().or_else(|| self.runtimes.clone()),
            force_runtime: over
                .force_runtime
                .clone()
                .or_else(|| self.force_runtime.clone()),
            tools: self.tools.overlay(&over.tools),
            git: self.git.overlay(&over.git),
            hooks: self.hooks.overlay(&over.hooks),
        }
    }

    /// The policy a tenant runs under: its overrides on the global policy.
    pub fn effective(global: Option<&Policy>, tenant: Option<&Policy>) -> Policy {
        let base = global.cloned().unwrap_or_default();
        match tenant {
            Some(tenant) => base.overlay(tenant),
            None => base,
        }
    }

    /// Checks every value an admin wrote, naming the first field at fault.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let bad = |field: &'static str, rule: &str| InvalidField {
            field,
            rule: rule.to_string(),
        };
        let caps = &self.caps;
        if caps.cpus.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return Err(bad("caps.cpus", "must be a positive number"));
        }
        if caps
            .max_budget_usd
            .is_some_and(|c| !(c.is_finite() && c > 0.0))
        {
            return Err(bad("caps.max_budget_usd", "must be a positive number"));
        }
        let zero = [
            ("caps.memory_bytes", caps.memory_bytes == Some(0)),
            ("caps.pids", caps.pids == Some(0)),
            ("caps.timeout", caps.timeout == Some(Duration::ZERO)),
            ("caps.max_turns", caps.max_turns == Some(0)),
            ("caps.max_tokens", caps.max_tokens == Some(0)),
            ("caps.max_requests", caps.max_requests == Some(0)),
            ("caps.workspace_bytes", caps.workspace_bytes == Some(0)),
            ("max_concurrent", self.max_concurrent == Some(0)),
        ];
        if let Some((field, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(bad(field, "must be at least 1"));
        }
        // The cap on a limit lies within the limit's own range.
        if caps
            .timeout
            .is_some_and(|t| t < Duration::from_secs(1) || t > Duration::from_secs(24 * 3600))
        {
            return Err(bad("caps.timeout", "must be between 1s and 24h"));
        }
        if self
            .daily_spend_usd
            .is_some_and(|d| !(d.is_finite() && d >= 0.0))
        {
            return Err(bad(
                "daily_spend_usd",
                "must be a number of dollars, 0 or more",
            ));
        }
        // Leaving the list out allows any model; an empty one would be read
        // as "none" at admission and "any" by the gateway.
        if self.models.as_ref().is_some_and(Vec::is_empty) {
            return Err(bad(
                "models",
                "must list at least one model (leave it out to allow any)",
            ));
        }
        if let Some(schemes) = &self.sources.schemes
            && let Some(unknown) = schemes.iter().find(|s| !SCHEMES.contains(&s.as_str()))
        {
            return Err(InvalidField {
                field: "sources.schemes",
                rule: format!("`{unknown}` is not one of {}", SCHEMES.join(", ")),
            });
        }
        if let Some(prefixes) = &self.sources.local_paths
            && prefixes.iter().any(|p| !is_clean_absolute(p))
        {
            return Err(bad(
                "sources.local_paths",
                "must be absolute directories without `.` or `..` components",
            ));
        }
        let lists: [(&'static str, &Option<Vec<String>>); 7] = [
            ("sources.urls", &self.sources.urls),
            ("images", &self.images),
            ("models", &self.models),
            ("runtimes", &self.runtimes),
            ("tools.allow", &self.tools.allow),
            ("tools.deny", &self.tools.deny),
            ("sources.local_paths", &self.sources.local_paths),
        ];
        for (field, list) in lists {
            if let Some(list) = list
                && list.iter().any(|item| !is_plain_text(item))
            {
                return Err(bad(
                    field,
                    "entries must be non-empty text of at most 1024 bytes, without control characters",
                ));
            }
        }
        if let Some(runtime) = &self.force_runtime
            && !is_plain_text(runtime)
        {
            return Err(bad("force_runtime", "must be a runtime name"));
        }
        if let Err(invalid) = self.hooks.as_hooks().validate() {
            return Err(InvalidField {
                field: match invalid.field {
                    "hooks.setup" => "hooks.setup",
                    _ => "hooks.teardown",
                },
                rule: invalid.rule,
            });
        }
        let git = &self.git;
        if let Some(branch) = &git.merge_into
            && !crate::execution::branch::is_branch_name(branch)
        {
            return Err(bad("git.merge_into", "must be a valid branch name"));
        }
        if git
            .author_name
            .as_deref()
            .is_some_and(|n| !is_author_name(n))
        {
            return Err(bad(
                "git.author_name",
                "must be 1 to 200 characters without control characters, `<` or `>`",
            ));
        }
        if git
            .author_email
            .as_deref()
            .is_some_and(|e| !is_author_email(e))
        {
            return Err(bad(
                "git.author_email",
                "must be 1 to 254 printable ASCII characters with an `@`, without spaces, `<` or `>`",
            ));
        }
        if let Some(message) = &git.commit_message {
            let count = message.chars().count();
            if !(1..=4096).contains(&count) || message.contains('\0') {
                return Err(bad(
                    "git.commit_message",
                    "must be 1 to 4096 characters without NUL",
                ));
            }
        }
        Ok(())
    }
}

/// The URL schemes a source may have.
pub const SCHEMES: [&str; 4] = ["https", "http", "ssh", "git"];

fn is_plain_text(text: &str) -> bool {
    !text.trim().is_empty() && text.len() <= 1024 && !text.chars().any(char::is_control)
}

/// An absolute path without `.` or `..` components.
pub(super) fn is_clean_absolute(path: &str) -> bool {
    let path = std::path::Path::new(path);
    path.is_absolute()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

/// Serde for an optional duration written `10m` or as seconds.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => crate::execution::humantime_serde::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "crate::execution::humantime_serde")] Duration);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policy(value: serde_json::Value) -> Policy {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_tenant_override_replaces_only_what_it_sets() {
        let global = policy(json!({
            "caps": {"cpus": 2, "timeout": "30m"},
            "over_cap": "clamp",
            "models": ["claude-*"],
            "tools": {"deny": ["WebFetch"]}
        }));
        let tenant = policy(json!({
            "caps": {"cpus": 4},
            "max_concurrent": 3,
            "tools": {"deny": ["Bash(curl *)"]}
        }));
        let effective = Policy::effective(Some(&global), Some(&tenant));
        assert_eq!(effective.caps.cpus, Some(4.0));
        assert_eq!(effective.caps.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(effective.over_cap, Some(OverCap::Clamp));
        assert_eq!(effective.max_concurrent, Some(3));
        assert_eq!(effective.models, Some(vec!["claude-*".to_string()]));
        assert_eq!(effective.tools.deny, Some(vec!["Bash(curl *)".to_string()]));
        assert_eq!(Policy::effective(None, None), Policy::default());
    }

    #[test]
    fn documents_round_trip_and_refuse_unknown_fields() {
        let text = json!({"caps": {"timeout": "10m", "memory_bytes": 1073741824u64}, "daily_spend_usd": 5.0});
        let parsed = policy(text.clone());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), text);
        assert!(serde_json::from_value::<Policy>(json!({"capz": {}})).is_err());
        assert!(serde_json::from_value::<Policy>(json!({"caps": {"cpu": 1}})).is_err());
        assert_eq!(
            policy(json!({"caps": {"timeout": 90}})).caps.timeout,
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (doc, field) in [
            (json!({"caps": {"cpus": -1}}), "caps.cpus"),
            (json!({"caps": {"pids": 0}}), "caps.pids"),
            (json!({"max_concurrent": 0}), "max_concurrent"),
            (json!({"daily_spend_usd": -2}), "daily_spend_usd"),
            (json!({"sources": {"schemes": ["ftp"]}}), "sources.schemes"),
            (
                json!({"sources": {"local_paths": ["srv/repos"]}}),
                "sources.local_paths",
            ),
            (
                json!({"sources": {"local_paths": ["/srv/../etc"]}}),
                "sources.local_paths",
            ),
            (json!({"tools": {"deny": ["Bash(\u{0}x)"]}}), "tools.deny"),
            (json!({"images": [""]}), "images"),
        ] {
            assert_eq!(
                policy(doc.clone()).validate().unwrap_err().field,
                field,
                "{doc}"
            );
        }
        policy(json!({"caps": {"cpus": 0.5}, "daily_spend_usd": 0, "sources": {"local_paths": ["/srv/repos"]}}))
            .validate()
            .unwrap();
    }

    #[test]
    fn an_empty_model_list_is_refused_not_read_as_any() {
        // Admission reads `[]` as "no model may be named", the gateway's
        // rules as "any model": a request naming none would reach any model.
        let refused = policy(json!({"models": []})).validate().unwrap_err();
        assert_eq!(refused.field, "models");
        policy(json!({"models": ["claude-*"]})).validate().unwrap();
    }

    #[test]
    fn tenant_scopes_cannot_collide_with_the_global_one() {
        assert_ne!(Scope::Global.key(), Scope::Tenant("global").key());
    }
}
