//! An execution's tool rules in its sandbox: the CLI's managed settings and
//! the hook script, written to a folder mounted read-only over
//! `/etc/claude-code`, and the tool socket where agentd decides on each call
//! the gateway saw the model ask for.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::agent::claude::managed::{self, MANAGED_DIR, MANAGED_SETTINGS, TOOL_HOOK};
use crate::engine::Bind;
use crate::execution::ToolRules;

use super::driver::SOCKET_MOUNT;
use super::recorder::Recorder;
use super::run::RunError;
use super::sandbox::Sandbox;
use super::tool_calls::ToolCalls;
use super::tool_door::{TOOL_SOCKET_NAME, ToolDoor};

/// The folder of the policy files, inside the execution's socket folder.
const POLICY_DIR: &str = "policy";

/// Writes the managed settings and the hook for `rules` below `socket_dir`
/// and returns the read-only mount putting them at `/etc/claude-code`; `None`
/// when there are no rules (the CLI then runs as the repository configures it).
pub(crate) fn write_policy(rules: &ToolRules, socket_dir: &Path) -> Result<Option<Bind>, RunError> {
    if rules.is_empty() {
        return Ok(None);
    }
    let dir = socket_dir.join(POLICY_DIR);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(io(&dir))?;
    let settings =
        serde_json::to_vec_pretty(&managed::managed_settings(rules)).map_err(|e| RunError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other(e),
        })?;
    let socket = format!("{SOCKET_MOUNT}/{TOOL_SOCKET_NAME}");
    for (name, bytes) in [
        (MANAGED_SETTINGS, settings),
        (TOOL_HOOK, managed::tool_hook(&socket).into_bytes()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(io(&path))?;
    }
    Ok(Some(Bind {
        host: dir.display().to_string(),
        container: MANAGED_DIR.to_string(),
        read_only: true,
    }))
}

/// Opens the tool socket in `socket_dir` when the execution has rules (again,
/// after a restart: calls seen before it are unknown then, and denied), and
/// returns what the gateway tells about the model's tool calls.
pub(crate) fn open_tool_door(
    rules: &ToolRules,
    recorder: &Arc<Recorder>,
    socket_dir: &Path,
    sandbox: &mut Sandbox,
) -> Result<Option<Arc<ToolCalls>>, RunError> {
    if rules.is_empty() {
        return Ok(None);
    }
    let calls = Arc::new(ToolCalls::new(rules.clone(), recorder.clone()));
    let path: PathBuf = socket_dir.join(TOOL_SOCKET_NAME);
    let door = ToolDoor::open(&path, calls.clone()).map_err(|source| RunError::Io {
        path: path.display().to_string(),
        source,
    })?;
    sandbox.set_tool_door(door);
    Ok(Some(calls))
}
