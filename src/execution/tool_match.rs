//! Deciding one tool call by an execution's tool rules, in the CLI's rule
//! syntax: `Tool`, `Tool(*)`, `Bash(curl *)`, `Bash(npm run:*)`,
//! `Read(./.env)`, `Edit(//etc/**)`, `WebFetch(domain:example.com)`,
//! `mcp__server__tool`.
//!
//! Deny wins over allow; with `only_allowed` a call no allow rule matches is
//! denied. A Bash command is matched part by part (`a && b`, `a | b`,
//! `$(b)`…): a deny rule matching any part denies it, an allow rule must match
//! every part. A rule agentd cannot read the specifier of, or a call whose
//! input could not be read, is taken the careful way: it matches when it would
//! deny, never when it would allow.

use serde_json::Value;

use super::path_rule;
use super::policy::{Decision, RuleSource, ToolRule, ToolRules};
use super::shell_split;

/// The working directory of the agent, which relative path rules are read
/// against (`Read(./.env)` is `/workspace/repo/.env`).
pub const AGENT_CWD: &str = "/workspace/repo";

/// One tool call as the model asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall<'a> {
    /// The tool's name (`Bash`, `Read`, `mcp__github__create_issue`…).
    pub tool: &'a str,
    /// Its input; `None` when it could not be read whole.
    pub input: Option<&'a Value>,
}

/// What the rules made of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed or denied.
    pub decision: Decision,
    /// The rule that decided; `None` when none matched.
    pub rule: Option<String>,
    /// Who wrote it (for a call refused by `only_allowed`: the policy).
    pub source: Option<RuleSource>,
}

impl ToolRules {
    /// The decision on `call`: the first deny rule that matches, else the first
    /// allow rule that matches, else deny under `only_allowed`, else allow.
    pub fn decide(&self, call: &ToolCall<'_>) -> Verdict {
        let decided = |decision, rule: &ToolRule| Verdict {
            decision,
            rule: Some(rule.rule.clone()),
            source: Some(rule.source),
        };
        if let Some(rule) = self
            .deny
            .iter()
            .find(|r| matches(&r.rule, call, Side::Deny))
        {
            return decided(Decision::Deny, rule);
        }
        if let Some(rule) = self
            .allow
            .iter()
            .find(|r| matches(&r.rule, call, Side::Allow))
        {
            return decided(Decision::Allow, rule);
        }
        if self.only_allowed {
            return Verdict {
                decision: Decision::Deny,
                rule: None,
                source: Some(RuleSource::Policy),
            };
        }
        Verdict {
            decision: Decision::Allow,
            rule: None,
            source: None,
        }
    }
}

/// Which list a rule is in: what "the careful way" means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Allow,
    Deny,
}

impl Side {
    /// The answer when a rule or a call cannot be read.
    fn when_unsure(self) -> bool {
        self == Side::Deny
    }
}

/// A rule split into its tool and its specifier (`Bash(curl *)` →
/// `("Bash", Some("curl *"))`); `Tool(*)` and `Tool()` are the whole tool.
pub fn parse_rule(rule: &str) -> (&str, Option<&str>) {
    let rule = rule.trim();
    match (rule.find('('), rule.ends_with(')')) {
        (Some(open), true) => {
            let specifier = &rule[open + 1..rule.len() - 1];
            let tool = rule[..open].trim();
            match specifier.trim() {
                "" | "*" => (tool, None),
                _ => (tool, Some(specifier)),
            }
        }
        _ => (rule, None),
    }
}

fn matches(rule: &str, call: &ToolCall<'_>, side: Side) -> bool {
    let (tool, specifier) = parse_rule(rule);
    if !tool_matches(tool, call.tool) {
        return false;
    }
    let Some(specifier) = specifier else {
        return true;
    };
    let Some(input) = call.input else {
        return side.when_unsure();
    };
    let text = |field: &str| input.get(field).and_then(Value::as_str);
    match tool {
        "Bash" => match text("command") {
            Some(command) => bash_matches(specifier, command, side),
            None => side.when_unsure(),
        },
        "Read" | "Edit" | "Write" | "MultiEdit" | "NotebookEdit" | "Glob" | "Grep" => {
            let path = text("file_path")
                .or_else(|| text("notebook_path"))
                .or_else(|| text("path"));
            match path {
                Some(path) => path_rule::matches(specifier, path, AGENT_CWD),
                // Glob and Grep without a path search the working directory.
                None if matches!(call.tool, "Glob" | "Grep") => {
                    path_rule::matches(specifier, AGENT_CWD, AGENT_CWD)
                }
                None => side.when_unsure(),
            }
        }
        "WebFetch" => match (specifier.strip_prefix("domain:"), text("url")) {
            (Some(domain), Some(url)) => host_of(url).is_some_and(|host| {
                host.eq_ignore_ascii_case(domain)
                    || domain.strip_prefix("*.").is_some_and(|parent| {
                        host.to_ascii_lowercase()
                            .ends_with(&format!(".{}", parent.to_ascii_lowercase()))
                    })
            }),
            _ => side.when_unsure(),
        },
        "Task" | "Agent" => match text("subagent_type") {
            Some(kind) => kind == specifier.trim(),
            None => side.when_unsure(),
        },
        _ => side.when_unsure(),
    }
}

/// `Edit` rules cover every tool that edits a file, `Read` rules every tool
/// that reads one (as the CLI applies them); `mcp__server` and
/// `mcp__server__*` cover all of that server's tools.
fn tool_matches(rule_tool: &str, tool: &str) -> bool {
    if rule_tool == tool {
        return true;
    }
    match rule_tool {
        "Edit" => matches!(tool, "Write" | "MultiEdit" | "NotebookEdit"),
        "Read" => matches!(tool, "Glob" | "Grep"),
        _ => {
            let server = rule_tool.strip_suffix("__*").unwrap_or(rule_tool);
            server.starts_with("mcp__")
                && server.matches("__").count() == 1
                && tool.starts_with(server)
                && tool[server.len()..].starts_with("__")
        }
    }
}

/// A Bash specifier against a command: every part for an allow rule, any part
/// for a deny rule (and the whole command too, as written).
fn bash_matches(specifier: &str, command: &str, side: Side) -> bool {
    let Some(parts) = shell_split::commands(command) else {
        return side.when_unsure();
    };
    let one = |part: &shell_split::Part| {
        if part.opaque {
            side.when_unsure()
        } else {
            bash_pattern_matches(specifier, &part.text)
        }
    };
    match side {
        Side::Deny => bash_pattern_matches(specifier, command) || parts.iter().any(one),
        Side::Allow => !parts.is_empty() && parts.iter().all(one),
    }
}

/// `prefix:*` (the legacy prefix form), or a pattern where `*` is any text;
/// a trailing ` *` also matches the bare command (`curl *` matches `curl`).
pub fn bash_pattern_matches(pattern: &str, command: &str) -> bool {
    let command = command.trim();
    if let Some(prefix) = pattern.strip_suffix(":*") {
        return command == prefix
            || command
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(char::is_whitespace));
    }
    if let Some(bare) = pattern.strip_suffix(" *")
        && !bare.contains('*')
        && command == bare
    {
        return true;
    }
    glob(pattern, command)
}

/// `*` matches any text (spaces and slashes included); everything else is
/// literal. Also the wildcard of the admins' policy patterns.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The host of an `http(s)` URL, without user info or port.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
#[path = "tool_match_tests.rs"]
mod tests;
