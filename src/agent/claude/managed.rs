//! The CLI's managed settings for one execution's tool rules: the policy file
//! Claude Code reads with the highest precedence
//! (`/etc/claude-code/managed-settings.json`), which no settings file of the
//! repository or the user, and no command-line flag, can override.
//!
//! Checked against Claude Code 2.1.330, running with
//! `--dangerously-skip-permissions` as agentd starts it:
//! - managed `permissions.deny` rules hold, even when the repository's
//!   `.claude/settings.json` allows the same call and its own hook approves it;
//! - `allowManagedPermissionRulesOnly` drops every other source's rules, and
//!   `allowManagedHooksOnly` every other source's hooks (a repository's
//!   `disableAllHooks` does not turn the managed hook off);
//! - the managed PreToolUse hook runs for every call, denied ones included,
//!   with `tool_use_id`, `tool_name` and `tool_input` on stdin, and its exit
//!   code 2 refuses the call; a hook that fails otherwise (killed, exit 1)
//!   does not, which is why the deny rules are written here as well;
//! - `permissions.defaultMode: dontAsk` with `disableBypassPermissionsMode`
//!   overrides the bypass flag: calls no allow rule matches are refused by
//!   the CLI itself (agentd's `only_allowed`).

use serde_json::{Value, json};

use crate::execution::ToolRules;

/// Where the CLI looks for its managed settings (a folder agentd mounts
/// read-only, holding only its two files).
pub const MANAGED_DIR: &str = "/etc/claude-code";
/// The managed settings' file name in [`MANAGED_DIR`].
pub const MANAGED_SETTINGS: &str = "managed-settings.json";
/// The hook's file name in [`MANAGED_DIR`].
pub const TOOL_HOOK: &str = "agentd-tool-hook";
/// Seconds the CLI gives the hook before giving up on it.
pub const HOOK_TIMEOUT_SECS: u64 = 60;

const HOOK_SCRIPT: &str = include_str!("tool_hook.sh");

/// The managed settings enforcing `rules`: their allow and deny rules, no
/// other source's rules or hooks, the bypass turned off under `only_allowed`,
/// and a PreToolUse hook for every tool running [`tool_hook`].
pub fn managed_settings(rules: &ToolRules) -> Value {
    let texts = |list: &[crate::execution::ToolRule]| {
        list.iter()
            .map(|r| r.rule.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>()
    };
    let mut permissions = json!({
        "allow": texts(&rules.allow),
        "deny": texts(&rules.deny),
    });
    if rules.only_allowed {
        permissions["defaultMode"] = json!("dontAsk");
        permissions["disableBypassPermissionsMode"] = json!("disable");
    }
    json!({
        "permissions": permissions,
        "allowManagedPermissionRulesOnly": true,
        "allowManagedHooksOnly": true,
        "hooks": {
            "PreToolUse": [{
                "matcher": "*",
                "hooks": [{
                    "type": "command",
                    "command": format!("/bin/bash {MANAGED_DIR}/{TOOL_HOOK}"),
                    "timeout": HOOK_TIMEOUT_SECS,
                }],
            }],
        },
    })
}

/// The hook script, asking agentd through the unix socket at `socket` (a path
/// inside the sandbox).
pub fn tool_hook(socket: &str) -> String {
    HOOK_SCRIPT.replace("@SOCKET@", socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{RuleSource, ToolRule};

    fn rule(text: &str) -> ToolRule {
        ToolRule {
            rule: text.into(),
            source: RuleSource::Policy,
        }
    }

    #[test]
    fn rules_and_the_hook_are_managed_and_nothing_else_counts() {
        let rules = ToolRules {
            allow: vec![rule("Read")],
            deny: vec![rule("Bash(curl *)"), rule(" ")],
            only_allowed: false,
        };
        let settings = managed_settings(&rules);
        assert_eq!(settings["permissions"]["deny"], json!(["Bash(curl *)"]));
        assert_eq!(settings["permissions"]["allow"], json!(["Read"]));
        assert!(settings["permissions"].get("defaultMode").is_none());
        assert_eq!(settings["allowManagedPermissionRulesOnly"], true);
        assert_eq!(settings["allowManagedHooksOnly"], true);
        let hook = &settings["hooks"]["PreToolUse"][0];
        assert_eq!(hook["matcher"], "*");
        assert_eq!(
            hook["hooks"][0]["command"],
            "/bin/bash /etc/claude-code/agentd-tool-hook"
        );
    }

    #[test]
    fn only_allowed_turns_the_bypass_off() {
        let rules = ToolRules {
            allow: vec![rule("Bash(echo *)")],
            deny: vec![],
            only_allowed: true,
        };
        let settings = managed_settings(&rules);
        assert_eq!(settings["permissions"]["defaultMode"], "dontAsk");
        assert_eq!(
            settings["permissions"]["disableBypassPermissionsMode"],
            "disable"
        );
    }

    #[test]
    fn the_hook_names_its_socket_and_denies_unless_told_allow() {
        let script = tool_hook("/run/agentd/tools.sock");
        assert!(script.contains("UNIX-CONNECT:/run/agentd/tools.sock"));
        assert!(!script.contains("@SOCKET@"));
        assert!(script.contains("allow) exit 0"));
    }
}
