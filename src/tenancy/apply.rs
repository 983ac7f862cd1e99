//! A tenant's effective policy applied to one request: caps refuse or lower
//! what is asked, allow-lists refuse what is not on them, and what the sandbox
//! must enforce is written down for the execution to carry.
//!
//! Checks here read only the request's text. Whether a local path exists or
//! where a host name points are questions for the host (the supervisor asks
//! them after these pass), and their answers must not reach the tenant.

use serde_json::{Value, json};

use super::location::{Location, locate};
use super::pattern::any_matches;
use super::policy::{OverCap, Policy, SCHEMES};
use crate::execution::{
    AppliedPolicy, Clamp, ExecutionRequest, Limits, RuleSource, ToolRule, ToolRules,
};

/// What the server uses when a request does not choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSandbox {
    /// The server's agent image.
    pub image: String,
    /// The server's OCI runtime (`None`: the engine's default).
    pub runtime: Option<String>,
}

/// A request the policy does not admit. The message says what the tenant may
/// know: the rule and the values it wrote, never what agentd's host holds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyRefusal {
    /// The request field at fault, as a JSON path.
    pub field: &'static str,
    /// The policy rule that refused it (`caps.cpus`, `sources.local_paths`…),
    /// for the audit log and the metrics.
    pub rule: &'static str,
    /// In words.
    pub message: String,
    /// What was asked, for a cap.
    pub asked: Option<Value>,
    /// What the policy allows, for a cap.
    pub allowed: Option<Value>,
}

impl PolicyRefusal {
    fn new(field: &'static str, rule: &'static str, message: impl Into<String>) -> PolicyRefusal {
        PolicyRefusal {
            field,
            rule,
            message: message.into(),
            asked: None,
            allowed: None,
        }
    }

    /// The one answer for a repository source the tenant may not use, whatever
    /// the reason: the same words for a path that exists and one that does
    /// not, for a host that is private and one that does not resolve.
    pub fn source(rule: &'static str) -> PolicyRefusal {
        PolicyRefusal::new(
            "repo",
            rule,
            "is not a repository source this tenant may use (see GET /v1/policy)",
        )
    }
}

/// Where the request's repository is, as far as its text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceCheck {
    /// A URL with a host the host's resolver must vet (unless the policy
    /// allows private hosts): agentd's fetch will connect to it.
    Network {
        /// The host as written.
        host: String,
        /// The port, or the scheme's default.
        port: u16,
    },
    /// A host directory under an allowed prefix; the host must check that the
    /// real path (symbolic links followed) stays under `prefixes`.
    Local {
        /// The path as written (for `file://`, the URL's path).
        path: String,
        /// The prefixes the policy allows.
        prefixes: Vec<String>,
    },
}

/// The outcome: what the execution carries, and what the host must still check.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// For the execution's record.
    pub policy: AppliedPolicy,
    /// The host's part of the source check.
    pub source: SourceCheck,
}

/// Applies `policy` to `request` (lowering fields where it clamps, filling
/// the forced runtime), for a tenant. `location` is the request's repository
/// without credentials.
pub fn apply(
    policy: &Policy,
    request: &mut ExecutionRequest,
    location: &str,
    server: &ServerSandbox,
) -> Result<Applied, PolicyRefusal> {
    let source = check_source(policy, location)?;
    check_sandbox(policy, request, server)?;
    if let (Some(models), Some(model)) = (&policy.models, &request.agent.model)
        && !any_matches(models, model)
    {
        return Err(PolicyRefusal::new(
            "agent.model",
            "models",
            format!("`{model}` is not a model this tenant may use (see GET /v1/policy)"),
        ));
    }
    let clamped = apply_caps(policy, request)?;
    apply_hooks(policy, request)?;
    let git = &policy.git;
    if git.push == Some(true) {
        request.push = true;
    }
    if request.push && request.merge_into.is_none() {
        request.merge_into.clone_from(&git.merge_into);
    }
    Ok(Applied {
        policy: AppliedPolicy {
            clamped,
            tools: tool_rules(policy, request),
            daily_spend_usd: policy.daily_spend_usd,
            conversation_budget: policy.conversation_budget.unwrap_or(false),
            models: policy.models.clone().unwrap_or_default(),
            allow_private_hosts: policy.sources.private_hosts.unwrap_or(false),
            operator: false,
            git_author_name: git.author_name.clone(),
            git_author_email: git.author_email.clone(),
            commit_message: git.commit_message.clone(),
        },
        source,
    })
}

/// The tenant's hooks around the request's: its setup hooks first, its
/// teardown hooks last; a request's own hooks refused when the policy says so.
fn apply_hooks(policy: &Policy, request: &mut ExecutionRequest) -> Result<(), PolicyRefusal> {
    let hooks = &policy.hooks;
    if hooks.request_hooks == Some(false) && !request.hooks.is_empty() {
        return Err(PolicyRefusal::new(
            "hooks",
            "hooks.request_hooks",
            "this tenant's executions run only the hooks its policy sets (see GET /v1/policy)",
        ));
    }
    let tenant = hooks.as_hooks();
    if tenant.is_empty() {
        return Ok(());
    }
    let mut merged = tenant.clone();
    merged.setup.extend(request.hooks.setup.iter().cloned());
    merged.teardown = request.hooks.teardown.clone();
    merged.teardown.extend(tenant.teardown.iter().cloned());
    if merged.validate().is_err() {
        return Err(PolicyRefusal::new(
            "hooks",
            "hooks",
            format!(
                "with the policy's own hooks this makes more than {} hooks in a stage",
                crate::execution::MAX_HOOKS
            ),
        ));
    }
    request.hooks = merged;
    Ok(())
}

fn check_source(policy: &Policy, location: &str) -> Result<SourceCheck, PolicyRefusal> {
    let sources = &policy.sources;
    let local = |path: &str| match &sources.local_paths {
        Some(prefixes) if lexically_under(path, prefixes) => Ok(SourceCheck::Local {
            path: path.to_string(),
            prefixes: prefixes.clone(),
        }),
        _ => Err(PolicyRefusal::source("sources.local_paths")),
    };
    let (scheme, host, port) = match locate(location) {
        Location::Local(path) => return local(&path),
        Location::Network { scheme, host, port } => (scheme, host, port),
    };
    let schemes = sources
        .schemes
        .clone()
        .unwrap_or_else(|| SCHEMES.iter().map(|s| s.to_string()).collect());
    if !schemes.contains(&scheme) {
        return Err(PolicyRefusal::source("sources.schemes"));
    }
    if let Some(urls) = &sources.urls
        && !any_matches(urls, location)
    {
        return Err(PolicyRefusal::source("sources.urls"));
    }
    if host.is_empty() {
        return Err(PolicyRefusal::source("sources.urls"));
    }
    Ok(SourceCheck::Network { host, port })
}

/// `path` (absolute, no `.`/`..` components) is one of `prefixes` or below one.
pub fn lexically_under(path: &str, prefixes: &[String]) -> bool {
    super::policy::is_clean_absolute(path)
        && prefixes
            .iter()
            .any(|prefix| std::path::Path::new(path).starts_with(prefix))
}

fn check_sandbox(
    policy: &Policy,
    request: &mut ExecutionRequest,
    server: &ServerSandbox,
) -> Result<(), PolicyRefusal> {
    let sandbox = &mut request.sandbox;
    if let Some(image) = &sandbox.image {
        let allowed = match &policy.images {
            Some(images) => any_matches(images, image),
            None => image == &server.image,
        };
        if !allowed {
            return Err(PolicyRefusal::new(
                "sandbox.image",
                "images",
                format!("`{image}` is not an image this tenant may use (see GET /v1/policy)"),
            ));
        }
    }
    if let Some(forced) = &policy.force_runtime {
        if let Some(asked) = &sandbox.runtime
            && asked != forced
        {
            return Err(PolicyRefusal::new(
                "sandbox.runtime",
                "force_runtime",
                format!("this tenant's executions run under `{forced}`"),
            ));
        }
        sandbox.runtime = Some(forced.clone());
        return Ok(());
    }
    if let Some(runtime) = &sandbox.runtime {
        let allowed = match &policy.runtimes {
            Some(runtimes) => runtimes.contains(runtime),
            None => server.runtime.as_ref() == Some(runtime),
        };
        if !allowed {
            return Err(PolicyRefusal::new(
                "sandbox.runtime",
                "runtimes",
                format!("`{runtime}` is not a runtime this tenant may use (see GET /v1/policy)"),
            ));
        }
    }
    Ok(())
}

/// One capped field: how to read it, and how to lower it.
struct Capped<'a> {
    field: &'static str,
    rule: &'static str,
    asked: Option<f64>,
    default: Option<f64>,
    cap: Option<f64>,
    show: &'a dyn Fn(f64) -> Value,
    set: &'a mut dyn FnMut(f64),
}

fn apply_caps(
    policy: &Policy,
    request: &mut ExecutionRequest,
) -> Result<Vec<Clamp>, PolicyRefusal> {
    let caps = &policy.caps;
    let clamp_over = policy.over_cap == Some(OverCap::Clamp);
    let defaults = Limits::default();
    let number = |v: f64| json!(v);
    let whole = |v: f64| json!(v as u64);
    let duration = |v: f64| {
        json!(humantime::format_duration(std::time::Duration::from_secs_f64(v)).to_string())
    };
    let limits = &mut request.limits;
    let agent = &mut request.agent;
    let mut clamped = Vec::new();
    let fields = [
        Capped {
            field: "limits.cpus",
            rule: "caps.cpus",
            asked: Some(limits.cpus),
            default: Some(defaults.cpus),
            cap: caps.cpus,
            show: &number,
            set: &mut |v| limits.cpus = v,
        },
        Capped {
            field: "limits.memory_bytes",
            rule: "caps.memory_bytes",
            asked: Some(limits.memory_bytes as f64),
            default: Some(defaults.memory_bytes as f64),
            cap: caps.memory_bytes.map(|c| c as f64),
            show: &whole,
            set: &mut |v| limits.memory_bytes = v as u64,
        },
        Capped {
            field: "limits.pids",
            rule: "caps.pids",
            asked: Some(limits.pids as f64),
            default: Some(defaults.pids as f64),
            cap: caps.pids.map(|c| c as f64),
            show: &whole,
            set: &mut |v| limits.pids = v as u32,
        },
        Capped {
            field: "limits.timeout",
            rule: "caps.timeout",
            asked: Some(limits.timeout.as_secs_f64()),
            default: Some(defaults.timeout.as_secs_f64()),
            cap: caps.timeout.map(|c| c.as_secs_f64()),
            show: &duration,
            set: &mut |v| limits.timeout = std::time::Duration::from_secs_f64(v),
        },
        Capped {
            field: "limits.max_artifact_bytes",
            rule: "caps.max_artifact_bytes",
            asked: Some(limits.max_artifact_bytes as f64),
            default: Some(defaults.max_artifact_bytes as f64),
            cap: caps.max_artifact_bytes.map(|c| c as f64),
            show: &whole,
            set: &mut |v| limits.max_artifact_bytes = v as u64,
        },
        Capped {
            field: "limits.workspace_bytes",
            rule: "caps.workspace_bytes",
            asked: Some(limits.workspace_bytes as f64),
            default: Some(defaults.workspace_bytes as f64),
            cap: caps.workspace_bytes.map(|c| c as f64),
            show: &whole,
            set: &mut |v| limits.workspace_bytes = v as u64,
        },
        Capped {
            field: "limits.max_tokens",
            rule: "caps.max_tokens",
            asked: limits.max_tokens.map(|v| v as f64),
            default: None,
            cap: caps.max_tokens.map(|c| c as f64),
            show: &whole,
            set: &mut |v| limits.max_tokens = Some(v as u64),
        },
        Capped {
            field: "limits.max_requests",
            rule: "caps.max_requests",
            asked: limits.max_requests.map(|v| v as f64),
            default: None,
            cap: caps.max_requests.map(|c| c as f64),
            show: &whole,
            set: &mut |v| limits.max_requests = Some(v as u64),
        },
        Capped {
            field: "agent.max_turns",
            rule: "caps.max_turns",
            asked: agent.max_turns.map(|v| v as f64),
            default: None,
            cap: caps.max_turns.map(|c| c as f64),
            show: &whole,
            set: &mut |v| agent.max_turns = Some(v as u32),
        },
        Capped {
            field: "agent.max_budget_usd",
            rule: "caps.max_budget_usd",
            asked: agent.max_budget_usd,
            default: None,
            cap: caps.max_budget_usd,
            show: &number,
            set: &mut |v| agent.max_budget_usd = Some(v),
        },
    ];
    for capped in fields {
        let Some(cap) = capped.cap else { continue };
        match capped.asked {
            // Nothing asked where "nothing" means unlimited: the cap applies.
            None => (capped.set)(cap),
            Some(asked) if asked <= cap => {}
            // agentd's default is not something the tenant asked for: it is
            // lowered to the cap whatever the policy says about asking more.
            Some(asked) if clamp_over || capped.default == Some(asked) => {
                (capped.set)(cap);
                clamped.push(Clamp {
                    field: capped.field.to_string(),
                    asked: (capped.show)(asked),
                    allowed: (capped.show)(cap),
                });
            }
            Some(asked) => {
                return Err(PolicyRefusal {
                    field: capped.field,
                    rule: capped.rule,
                    message: format!(
                        "asks for {} but this tenant's policy allows at most {}",
                        (capped.show)(asked),
                        (capped.show)(cap)
                    ),
                    asked: Some((capped.show)(asked)),
                    allowed: Some((capped.show)(cap)),
                });
            }
        }
    }
    Ok(clamped)
}

/// The policy's rules, then the request's own (a request may add rules, and
/// its allow rules never outweigh a deny).
fn tool_rules(policy: &Policy, request: &ExecutionRequest) -> ToolRules {
    let rules = |texts: &[String], source| {
        texts
            .iter()
            .map(|rule| ToolRule {
                rule: rule.clone(),
                source,
            })
            .collect::<Vec<_>>()
    };
    let tools = &policy.tools;
    let mut allow = rules(
        tools.allow.as_deref().unwrap_or_default(),
        RuleSource::Policy,
    );
    let mut deny = rules(
        tools.deny.as_deref().unwrap_or_default(),
        RuleSource::Policy,
    );
    deny.extend(rules(&request.agent.disallowed_tools, RuleSource::Request));
    // Under an allow-list the request cannot widen it.
    let only_allowed = tools.only_allowed.unwrap_or(false);
    if !only_allowed {
        allow.extend(rules(&request.agent.allowed_tools, RuleSource::Request));
    }
    ToolRules {
        allow,
        deny,
        only_allowed,
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
