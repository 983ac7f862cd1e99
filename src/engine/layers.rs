//! Layered workspaces: the repository an execution starts from, checked out
//! once per base commit into a read-only template, under the execution's own
//! writable layer.
//!
//! Checking a large repository out costs every execution a write of the
//! whole tree (20,000 files take half a second). A template is that checkout
//! made once, in a sandbox like any other, in an ext4 image of its own; an
//! execution on the same commit then sees it through an overlay whose
//! writable layer lives on the execution's size-limited workspace
//! filesystem. Nothing the agent does reaches the template: the overlay never
//! writes its lower layer, and the template is mounted read-only.
//!
//! The overlay is mounted by agentd with `CAP_SYS_RESOURCE` dropped, and the
//! workspace's reserved blocks belong to an uid no one runs as: the overlay
//! writes with its mounter's credentials, which must not reach the reserve
//! the collection needs on a full workspace.
//!
//! Next to the workspace image `<id>.img` (see `workspace`):
//! ```text
//! <id>.fs     the workspace filesystem, mounted on the host; its root-only
//!             `.layer/` holds the overlay's writable layer (upper, work)
//! <id>.base   the template, mounted read-only
//! <id>.repo   the overlay the sandbox sees at /workspace/repo
//! ```

use std::path::{Path, PathBuf};

use super::error::EngineError;
use super::workspace::{format, loops_backed_by, tool, workspace_error};
use crate::execution::AGENT_UID;

/// Where, inside a template's filesystem, the checked-out repository is (its
/// `.git` holds only the index; the sandbox adds the rest).
pub const TEMPLATE_REPO: &str = "tree/repo";

/// The overlay of the workspace whose image is `image`: bound into the
/// sandbox at `/workspace/repo`.
pub fn repo_mount(image: &Path) -> PathBuf {
    image.with_extension("repo")
}

fn fs_mount(image: &Path) -> PathBuf {
    image.with_extension("fs")
}

fn base_mount(image: &Path) -> PathBuf {
    image.with_extension("base")
}

/// True when the workspace of `image` has its repository layered over a
/// template (its overlay is mounted).
pub fn is_stacked(image: &Path) -> bool {
    is_mounted(&repo_mount(image))
}

/// Layers the workspace of `image` (attached as `device`) over the template
/// image `template`; returns the overlay's mount point. On failure nothing is
/// left mounted.
pub async fn stack(image: &Path, device: &str, template: &Path) -> Result<PathBuf, EngineError> {
    let stacked = stack_inner(image, device, template).await;
    if stacked.is_err() {
        let _ = unstack(image).await;
    }
    stacked
}

async fn stack_inner(image: &Path, device: &str, template: &Path) -> Result<PathBuf, EngineError> {
    let (fs, base, repo) = (fs_mount(image), base_mount(image), repo_mount(image));
    for dir in [&fs, &base, &repo] {
        make_dir(dir)?;
    }
    mount(&["-t", "ext4", "-o", "nosuid,nodev,noatime", device], &fs).await?;
    let layer = fs.join(".layer");
    let (upper, work) = (layer.join("upper"), layer.join("work"));
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let io = |e: std::io::Error| workspace_error("making the writable layer", e.to_string());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&layer)
            .map_err(io)?;
        std::fs::set_permissions(&layer, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        std::fs::create_dir(&work).map_err(io)?;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&upper)
            .map_err(io)?;
        std::os::unix::fs::chown(&upper, Some(AGENT_UID), Some(AGENT_UID)).map_err(io)?;
    }
    let template_arg = template.display().to_string();
    mount(
        &["-o", "ro,loop,nosuid,nodev,noatime", &template_arg],
        &base,
    )
    .await?;
    // Real folders only: the kernel follows links in `lowerdir`, and a
    // template whose tree were a link to `/` would lay the host below the
    // sandbox. (Mounted read-only: nothing changes them from here on.)
    let lower = base.join(TEMPLATE_REPO);
    let mut step = base.clone();
    for part in Path::new(TEMPLATE_REPO).components() {
        step.push(part);
        if !std::fs::symlink_metadata(&step).is_ok_and(|m| m.file_type().is_dir()) {
            return Err(workspace_error(
                "layering the workspace",
                format!(
                    "the template {} holds no checkout folder (or a link in its place)",
                    template.display()
                ),
            ));
        }
    }
    // redirect_dir: a folder of the template can be renamed (else EXDEV,
    // which `git mv` and most programs do not work around). Its redirects
    // are trusted.* attributes, which the agent cannot set.
    let options = format!(
        "nosuid,nodev,noatime,redirect_dir=on,lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    // Mounted without CAP_SYS_RESOURCE: the overlay's writes carry these
    // credentials, which must not reach the collection's reserve.
    let repo_arg = repo.display().to_string();
    tool(
        "setpriv",
        &[
            "--inh-caps=-sys_resource",
            "--bounding-set=-sys_resource",
            "--",
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            &options,
            &repo_arg,
        ],
    )
    .await?;
    Ok(repo)
}

/// Unmounts what [`stack`] mounted for `image` (the overlay first) and
/// removes the mount points. Nothing to do for a workspace that was never
/// layered.
pub async fn unstack(image: &Path) -> Result<(), EngineError> {
    for point in [repo_mount(image), base_mount(image), fs_mount(image)] {
        if is_mounted(&point) {
            unmount(&point).await?;
        }
        if point.is_dir() {
            std::fs::remove_dir(&point).map_err(|e| {
                workspace_error(
                    "removing a mount point",
                    format!("{}: {e}", point.display()),
                )
            })?;
        }
    }
    Ok(())
}

/// Makes a template's filesystem: a sparse ext4 image of `bytes` at `image`,
/// mounted read-write at `build` for the sandbox that checks the repository
/// out into it.
pub async fn make_template(image: &Path, bytes: u64, build: &Path) -> Result<(), EngineError> {
    let made = async {
        let io = |e: std::io::Error| workspace_error("making a checkout template", e.to_string());
        let file = std::fs::File::create(image).map_err(io)?;
        file.set_len(bytes.div_ceil(4096) * 4096).map_err(io)?;
        drop(file);
        format(image).await?;
        make_dir(build)?;
        let image_arg = image.display().to_string();
        mount(&["-o", "loop,nosuid,nodev,noatime", &image_arg], build).await
    }
    .await;
    if made.is_err() {
        let _ = seal_template(build).await;
        let _ = std::fs::remove_file(image);
    }
    made
}

/// Unmounts a template's build mount (its loop device goes with it); never
/// lazily: a template is only ready once nothing can write it.
pub async fn seal_template(build: &Path) -> Result<(), EngineError> {
    if is_mounted(build) {
        let build_arg = build.display().to_string();
        tool("umount", &[&build_arg]).await?;
    }
    if build.is_dir() {
        let _ = std::fs::remove_dir(build);
    }
    Ok(())
}

/// True when a loop device is backed by the template image `image` (a
/// workspace layered over it is live), or when that cannot be told.
pub async fn template_in_use(image: &Path) -> bool {
    loops_backed_by(image)
        .await
        .map_or(true, |loops| !loops.is_empty())
}

fn make_dir(dir: &Path) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| workspace_error("making a mount point", format!("{}: {e}", dir.display())))
}

async fn mount(args: &[&str], point: &Path) -> Result<(), EngineError> {
    let point_arg = point.display().to_string();
    let mut all = args.to_vec();
    all.push(&point_arg);
    tool("mount", &all).await.map(drop)
}

/// Unmounts `point`; lazily when it is still busy (a process of a removed
/// sandbox not yet reaped): nothing new can open it either way.
async fn unmount(point: &Path) -> Result<(), EngineError> {
    let point_arg = point.display().to_string();
    if tool("umount", &[&point_arg]).await.is_ok() {
        return Ok(());
    }
    tool("umount", &["--lazy", &point_arg]).await.map(drop)
}

/// True when `point` is a mount point of this process's mount namespace.
/// (The kernel lists mount points with links and `..` resolved.)
fn is_mounted(point: &Path) -> bool {
    let Ok(absolute) = std::fs::canonicalize(point) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|field| Path::new(&unescape(field)) == absolute)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_sit_next_to_the_image() {
        let image = Path::new("/data/workspaces/e1.img");
        assert_eq!(repo_mount(image), Path::new("/data/workspaces/e1.repo"));
        assert_eq!(fs_mount(image), Path::new("/data/workspaces/e1.fs"));
        assert_eq!(base_mount(image), Path::new("/data/workspaces/e1.base"));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b\011c"), "/a b\tc");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }

    #[test]
    fn the_root_is_mounted_and_a_folder_is_not() {
        assert!(is_mounted(Path::new("/")));
        assert!(!is_mounted(Path::new("/definitely/not/a/mount")));
        assert!(!is_mounted(Path::new("/proc/self")));
    }

    #[test]
    fn a_mount_point_named_through_a_link_or_dots_is_found() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/proc", dir.path().join("link")).unwrap();
        assert!(is_mounted(&dir.path().join("link")));
        assert!(is_mounted(Path::new("/proc/../proc")));
    }
}
