//! Lifecycle hooks inside the sandbox: commands run before the agent
//! (setup: install dependencies, start a service) and after it (teardown:
//! format, generate), in the same hardened container as the agent, as the
//! agent's user, in the repository, each with its own time limit.

use serde::{Deserialize, Serialize};

use super::request::{InvalidField, invalid};

/// Most hooks per stage.
pub const MAX_HOOKS: usize = 8;
/// Longest command, in characters.
pub const MAX_HOOK_COMMAND_CHARS: usize = 4096;
/// Longest time limit of one hook: 1 h.
pub const MAX_HOOK_SECONDS: u32 = 3600;

/// The request's hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hooks {
    /// Run in order before the agent; the first that fails (or runs out of
    /// time) fails the execution, `setup_failed`, and the agent never starts.
    pub setup: Vec<SetupHook>,
    /// Run in order after the agent, before its work is collected (what they
    /// change is part of the work); a failure follows the hook's `on_failure`.
    pub teardown: Vec<TeardownHook>,
}

/// A command run before the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupHook {
    /// A bash command line, run in the repository as the agent's user.
    pub command: String,
    /// Its time limit in seconds (1 to 3600). Default: 300.
    #[serde(default = "default_seconds", deserialize_with = "super::whole::number")]
    pub timeout_seconds: u32,
}

/// A command run after the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownHook {
    /// A bash command line, run in the repository as the agent's user.
    pub command: String,
    /// Its time limit in seconds (1 to 3600). Default: 300.
    #[serde(default = "default_seconds", deserialize_with = "super::whole::number")]
    pub timeout_seconds: u32,
    /// What its failure does: `fail` the execution (`teardown_failed`), or
    /// `warn` and go on. Default: `fail`.
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// What a failing teardown hook does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The execution fails (`teardown_failed`); its work is still collected.
    #[default]
    Fail,
    /// A warning; the execution goes on.
    Warn,
}

fn default_seconds() -> u32 {
    300
}

/// Which side of the agent a hook runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStage {
    Setup,
    Teardown,
}

impl HookStage {
    /// The name shown.
    pub fn as_str(self) -> &'static str {
        match self {
            HookStage::Setup => "setup",
            HookStage::Teardown => "teardown",
        }
    }

    /// The request's field holding this stage's hooks.
    fn field(self) -> &'static str {
        match self {
            HookStage::Setup => "hooks.setup",
            HookStage::Teardown => "hooks.teardown",
        }
    }

    /// The stage a driver line names.
    pub fn parse(text: &str) -> Option<HookStage> {
        match text {
            "setup" => Some(HookStage::Setup),
            "teardown" => Some(HookStage::Teardown),
            _ => None,
        }
    }
}

impl Hooks {
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.setup.is_empty() && self.teardown.is_empty()
    }

    /// Every hook as (stage, index, command, seconds, warn only).
    pub fn each(&self) -> impl Iterator<Item = (HookStage, usize, &str, u32, bool)> {
        let setup = self.setup.iter().enumerate().map(|(i, h)| {
            (
                HookStage::Setup,
                i,
                h.command.as_str(),
                h.timeout_seconds,
                false,
            )
        });
        let teardown = self.teardown.iter().enumerate().map(|(i, h)| {
            (
                HookStage::Teardown,
                i,
                h.command.as_str(),
                h.timeout_seconds,
                h.on_failure == OnFailure::Warn,
            )
        });
        setup.chain(teardown)
    }

    /// Checks every hook, naming the first field at fault.
    pub fn validate(&self) -> Result<(), InvalidField> {
        for (stage, count) in [
            (HookStage::Setup, self.setup.len()),
            (HookStage::Teardown, self.teardown.len()),
        ] {
            if count > MAX_HOOKS {
                return Err(invalid(stage.field(), format!("at most {MAX_HOOKS} hooks")));
            }
        }
        for (stage, index, command, seconds, _) in self.each() {
            let chars = command.chars().count();
            if chars == 0 || chars > MAX_HOOK_COMMAND_CHARS || command.contains('\0') {
                return Err(invalid(
                    stage.field(),
                    format!(
                        "[{index}].command must be 1 to {MAX_HOOK_COMMAND_CHARS} characters \
                         without NUL"
                    ),
                ));
            }
            if !(1..=MAX_HOOK_SECONDS).contains(&seconds) {
                return Err(invalid(
                    stage.field(),
                    format!("[{index}].timeout_seconds must be between 1 and {MAX_HOOK_SECONDS}"),
                ));
            }
        }
        Ok(())
    }

    /// The hooks as the sandbox's driver reads them: one environment
    /// variable per hook, `AGENTD_HOOK_<n>` (in order from 0), each
    /// `stage index seconds fail|warn base64(command)` — one per variable, so
    /// none comes near the kernel's limit on one environment string.
    pub fn driver_env(&self) -> Vec<(String, String)> {
        use base64::Engine;
        self.each()
            .enumerate()
            .map(|(n, (stage, index, command, seconds, warn))| {
                (
                    format!("AGENTD_HOOK_{n}"),
                    format!(
                        "{} {index} {seconds} {} {}",
                        stage.as_str(),
                        if warn { "warn" } else { "fail" },
                        base64::engine::general_purpose::STANDARD.encode(command)
                    ),
                )
            })
            .collect()
    }
}
