//! The base image: a Debian rootfs made offline with `mmdebstrap` from the machine's
//! own apt sources, imported into the engine (no registry needed).

use std::path::Path;

use crate::engine::Engine;
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::process::run_logged;
use super::{IMAGE_LABEL, ImageError};

/// The package list (images/base/packages), embedded so an installed agentd needs no
/// checkout of the repository.
pub const PACKAGE_LIST: &str = include_str!("../../images/base/packages");
/// mmdebstrap variant: only `Priority: required` packages, apt, and the list.
pub const VARIANT: &str = "minbase";
/// Repository part of the base tag.
pub const REPOSITORY: &str = "agentd-base";

/// The packages of a package list: one per line, `#` starts a comment, blank lines
/// are ignored.
pub fn parse_packages(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// The embedded package list, parsed.
pub fn packages() -> Vec<String> {
    parse_packages(PACKAGE_LIST)
}

/// `agentd-base:<suite>-<8 hex>`, the hex from what goes into the rootfs (suite,
/// variant, packages), so a changed list yields a new tag and a rebuild.
pub fn base_tag(suite: &str, packages: &[String]) -> String {
    let mut hash = Sha256::new();
    for part in ["base", suite, VARIANT, &packages.join("\n")] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!(
        "{REPOSITORY}:{}-{}",
        tag_safe(suite),
        hex::encode(&hash.finalize()[..4])
    )
}

/// `text` with every character a Docker tag does not allow replaced by `-`.
pub(crate) fn tag_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Makes the rootfs with mmdebstrap in `work_dir` and imports it as `tag`.
pub(crate) async fn build(
    engine: &Engine,
    suite: &str,
    tag: &str,
    work_dir: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    let rootfs = work_dir.join("base.tar");
    make_rootfs(suite, &packages(), &rootfs, progress).await?;
    let changes = vec![
        format!("LABEL {IMAGE_LABEL}=base"),
        format!("LABEL agentd.suite={}", tag_safe(suite)),
    ];
    import(engine, &rootfs, tag, changes, progress).await
}

/// Makes a minbase rootfs of `suite` with `packages` in `work_dir` and
/// imports it as `tag` with the Dockerfile-style `changes` (labels, an
/// entrypoint): the images of agentd's own deployment.
pub(crate) async fn build_rootfs_image(
    engine: &Engine,
    suite: &str,
    packages: &[String],
    tag: &str,
    changes: Vec<String>,
    work_dir: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    let rootfs = work_dir.join("rootfs.tar");
    make_rootfs(suite, packages, &rootfs, progress).await?;
    import(engine, &rootfs, tag, changes, progress).await
}

async fn make_rootfs(
    suite: &str,
    packages: &[String],
    rootfs: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    progress(&format!("making the {suite} rootfs with mmdebstrap"));
    let mut command = Command::new("mmdebstrap");
    command
        .arg(format!("--variant={VARIANT}"))
        .arg(format!("--include={}", packages.join(",")))
        .arg(suite)
        .arg(rootfs);
    let finished = match run_logged(command, "mmdebstrap", progress).await {
        Ok(finished) => finished,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::MmdebstrapMissing);
        }
        Err(error) => return Err(ImageError::io("running mmdebstrap")(error)),
    };
    if !finished.status.success() {
        return Err(ImageError::Mmdebstrap {
            status: finished.status.to_string(),
            output: finished.tail,
        });
    }
    Ok(())
}

async fn import(
    engine: &Engine,
    rootfs: &Path,
    tag: &str,
    changes: Vec<String>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    progress(&format!("importing the rootfs as {tag}"));
    engine.import_image(rootfs, tag, changes, progress).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_comments_and_blank_lines() {
        let text = "# heading\n\ngit\n  socat  # the bridge\n#tini\n\tca-certificates\n";
        assert_eq!(parse_packages(text), ["git", "socat", "ca-certificates"]);
    }

    #[test]
    fn embedded_list_has_what_the_sandbox_needs_and_valid_names() {
        let packages = packages();
        for needed in ["git", "ca-certificates", "socat", "tini"] {
            assert!(packages.iter().any(|p| p == needed), "{needed} missing");
        }
        for name in &packages {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c)),
                "not a Debian package name: {name:?}"
            );
        }
    }

    #[test]
    fn base_tag_is_deterministic_and_tracks_its_inputs() {
        let packages = packages();
        let tag = base_tag("bookworm", &packages);
        assert_eq!(tag, base_tag("bookworm", &packages));
        let (repository, rest) = tag.split_once(':').unwrap();
        assert_eq!(repository, REPOSITORY);
        let hex = rest.strip_prefix("bookworm-").unwrap();
        assert_eq!(hex.len(), 8);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(tag, base_tag("trixie", &packages));
        let mut more = packages.clone();
        more.push("curl".to_string());
        assert_ne!(tag, base_tag("bookworm", &more));
    }

    #[test]
    fn tag_safe_replaces_what_docker_refuses() {
        assert_eq!(tag_safe("bookworm"), "bookworm");
        assert_eq!(tag_safe("2.1.330 (x)/y"), "2.1.330--x--y");
    }
}
