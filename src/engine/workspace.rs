//! The workspace a sandbox writes to, with a size the filesystem enforces.
//!
//! Docker's local volumes have no size limit (and this engine's storage driver
//! has no per-container quota), so an agent could fill the host's disk. Each
//! workspace is instead its own ext4 filesystem in a sparse image file under
//! agentd's data directory, attached to a loop device and handed to Docker as a
//! volume of that device: the kernel refuses writes beyond the size, and the
//! host loses at most the image's size. This needs, on the Docker host, what
//! agentd runs as: root (or CAP_SYS_ADMIN) and `/dev/loop-control`, and the
//! Debian packages `e2fsprogs` (mkfs.ext4, tune2fs) and `mount` (losetup).
//!
//! A slice of the filesystem (5%, 32 MiB to 1 GiB) is reserved for the group
//! agentd's collection step runs with, so the agent's work can still be
//! committed when it filled the disk; the agent itself cannot use it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::VolumeCreateRequest;
use tokio::process::Command;

use super::docker::Engine;
use super::error::EngineError;
use crate::execution::{AGENT_UID, COLLECT_GID};

/// How each execution's workspace is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkspaceKind {
    /// A filesystem of the execution's `workspace_bytes` (default): the host
    /// never loses more than that.
    #[default]
    Limited,
    /// A plain Docker volume without a size limit, for hosts where agentd cannot
    /// make loop devices (not root). The agent can fill the host's disk.
    Unlimited,
}

/// Block size of the workspace filesystems.
const BLOCK: u64 = 4096;
/// How long one of the host tools may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// The reserve kept for collection on a workspace of `bytes`.
pub fn reserve_bytes(bytes: u64) -> u64 {
    (bytes / 20).clamp(32 << 20, 1 << 30)
}

/// The image file of execution `id`'s workspace under `dir`.
pub fn image_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.img"))
}

impl Engine {
    /// Creates the workspace volume `name` for execution `id`: a plain volume,
    /// or (limited) a `bytes`-sized filesystem in `dir/<id>.img` on a loop device.
    pub async fn create_workspace(
        &self,
        kind: WorkspaceKind,
        name: &str,
        labels: HashMap<String, String>,
        dir: &Path,
        id: &str,
        bytes: u64,
    ) -> Result<Option<String>, EngineError> {
        let mut request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        let mut device = None;
        if kind == WorkspaceKind::Limited {
            let made = make_disk(dir, id, bytes).await?;
            device = Some(made.clone());
            request.driver = Some("local".into());
            request.driver_opts = Some(HashMap::from([
                ("type".to_string(), "ext4".to_string()),
                ("device".to_string(), made),
                ("o".to_string(), "nosuid,nodev,noatime".to_string()),
            ]));
        }
        let created = self.docker().create_volume(request).await;
        if let Err(source) = created {
            if kind == WorkspaceKind::Limited {
                let _ = release_disk(&image_path(dir, id)).await;
            }
            return Err(EngineError::CreateVolume {
                name: name.to_string(),
                source,
            });
        }
        Ok(device)
    }
}

/// Makes the image, formats it and attaches it; returns the loop device.
async fn make_disk(dir: &Path, id: &str, bytes: u64) -> Result<String, EngineError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| workspace_error("creating the workspaces folder", e.to_string()))?;
    let image = image_path(dir, id);
    let reserve = reserve_bytes(bytes);
    let size = (bytes + reserve).div_ceil(BLOCK) * BLOCK;
    let file = std::fs::File::create(&image)
        .map_err(|e| workspace_error("creating the workspace image", e.to_string()))?;
    file.set_len(size)
        .map_err(|e| workspace_error("sizing the workspace image", e.to_string()))?;
    drop(file);
    let made = async {
        let image_arg = image.display().to_string();
        format(&image).await?;
        // The reserve is the collect group's alone: its user is an uid no
        // one runs as, so not even root (the mounter of a layered workspace,
        // whose writes carry the mounter's credentials) reaches it.
        tool(
            "tune2fs",
            &[
                "-r",
                &(reserve / BLOCK).to_string(),
                "-g",
                &COLLECT_GID.to_string(),
                "-u",
                &COLLECT_GID.to_string(),
                &image_arg,
            ],
        )
        .await?;
        let device = tool("losetup", &["--find", "--show", "--nooverlap", &image_arg]).await?;
        let device = device.trim().to_string();
        if !device.starts_with("/dev/loop") {
            return Err(workspace_error(
                "losetup",
                format!("unexpected answer `{device}`"),
            ));
        }
        Ok(device)
    }
    .await;
    if made.is_err() {
        let _ = release_disk(&image).await;
    }
    made
}

/// Makes an ext4 filesystem in the image file `image`, owned by the agent: no
/// journal (nothing outlives the execution), no blocks reserved for root.
pub(super) async fn format(image: &Path) -> Result<(), EngineError> {
    let image_arg = image.display().to_string();
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-b",
            &BLOCK.to_string(),
            "-O",
            "^has_journal",
            "-m",
            "0",
            "-E",
            &format!("root_owner={AGENT_UID}:{AGENT_UID},lazy_itable_init=1,nodiscard"),
            "-L",
            "agentd",
            &image_arg,
        ],
    )
    .await?;
    Ok(())
}

/// Detaches every loop device backed by `image` and deletes it. Nothing to do
/// for an image that is not there.
pub async fn release_disk(image: &Path) -> Result<(), EngineError> {
    super::layers::unstack(image).await?;
    if tokio::fs::symlink_metadata(image).await.is_err() {
        return Ok(());
    }
    for device in loops_backed_by(image).await.unwrap_or_default() {
        tool("losetup", &["-d", &device]).await?;
    }
    tokio::fs::remove_file(image)
        .await
        .map_err(|e| workspace_error("removing the workspace image", e.to_string()))
}

/// The loop devices backed by the image file `image`.
pub(super) async fn loops_backed_by(image: &Path) -> Result<Vec<String>, EngineError> {
    let image_arg = image.display().to_string();
    let attached = tool(
        "losetup",
        &["--noheadings", "--output", "NAME", "-j", &image_arg],
    )
    .await?;
    Ok(attached
        .lines()
        .map(str::trim)
        .filter(|d| d.starts_with("/dev/loop"))
        .map(str::to_string)
        .collect())
}

/// Releases the workspace images under `dir` that no live execution (`live`)
/// and no existing volume needs: what a crashed agentd left. Returns the ids.
pub async fn sweep_workspaces(
    engine: &Engine,
    dir: &Path,
    live: &HashSet<String>,
    volume_name: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut released = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return released;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".img") else {
            continue;
        };
        if live.contains(id) || engine.volume_exists(&volume_name(id)).await {
            continue;
        }
        match release_disk(&entry.path()).await {
            Ok(()) => released.push(id.to_string()),
            Err(error) => {
                tracing::warn!(%error, image = %entry.path().display(), "cannot release a workspace")
            }
        }
    }
    released
}

impl Engine {
    /// True when a volume of that name exists (or the engine cannot say).
    pub async fn volume_exists(&self, name: &str) -> bool {
        match self.docker().inspect_volume(name).await {
            Ok(_) => true,
            Err(error) => !super::error::is_not_found(&error),
        }
    }
}

/// Runs a host tool; its stdout, or an error quoting its stderr.
pub(super) async fn tool(program: &'static str, args: &[&str]) -> Result<String, EngineError> {
    let mut command = Command::new(program);
    command.args(args).kill_on_drop(true);
    let output = tokio::time::timeout(TOOL_TIMEOUT, command.output())
        .await
        .map_err(|_| workspace_error(program, "timed out".into()))?
        .map_err(|e| {
            workspace_error(
                program,
                format!("{e} (the workspace size limit needs {program}: Debian's e2fsprogs and mount packages)"),
            )
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let hint = if stderr.contains("ermission denied") || stderr.contains("not permitted") {
        " (loop devices need root or CAP_SYS_ADMIN; without them use --workspace-limit none)"
    } else {
        ""
    };
    Err(workspace_error(program, format!("{stderr}{hint}")))
}

pub(super) fn workspace_error(step: &'static str, message: String) -> EngineError {
    EngineError::Workspace { step, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_bounded_slice() {
        assert_eq!(reserve_bytes(64 << 20), 32 << 20);
        assert_eq!(reserve_bytes(4 << 30), (4u64 << 30) / 20);
        assert_eq!(reserve_bytes(1 << 40), 1 << 30);
    }
}
