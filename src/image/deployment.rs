//! The images of agentd's own deployment (the helm chart): the supervisor
//! image (`agentd serve` as uid 10100, this very binary inside) and the
//! engine image (Debian's `docker.io` for the in-pod dockerd sidecar). Built
//! offline like the agent image: Debian roots made with mmdebstrap from the
//! machine's apt sources, imported; no registry is needed.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::base::{self, tag_safe};
use super::builder::scratch_dir;
use super::{IMAGE_LABEL, ImageError};
use crate::engine::{Engine, ImageBuild};

/// The supervisor image's Dockerfile.
pub const SUPERVISOR_DOCKERFILE: &str = include_str!("../../images/agentd/Dockerfile");
/// Debian packages of the supervisor image's root.
pub const SUPERVISOR_PACKAGES: &str = include_str!("../../images/agentd/packages");
/// Debian packages of the engine image.
pub const ENGINE_PACKAGES: &str = include_str!("../../images/engine/packages");
/// Repository of the supervisor image.
pub const SUPERVISOR_REPOSITORY: &str = "agentd";
/// Repository of the engine image.
pub const ENGINE_REPOSITORY: &str = "agentd-engine";
/// Repository of the supervisor image's Debian root.
const SUPERVISOR_BASE_REPOSITORY: &str = "agentd-supervisor-base";
/// Where the build context puts the binary.
const CONTEXT_BINARY: &str = "agentd";

/// Which deployment image to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentImage {
    /// agentd's own image, with the agentd executable at `binary`.
    Supervisor {
        /// The agentd executable to put inside (built for the suite's libc).
        binary: PathBuf,
    },
    /// The dockerd sidecar.
    Engine,
}

/// A deployment image found or built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentBuilt {
    /// Its tag.
    pub tag: String,
    /// False when it existed and nothing was built.
    pub built: bool,
}

/// `<repository>:<suite>-<8 hex>` for a rootfs of `packages`.
fn rootfs_tag(repository: &str, suite: &str, packages: &[String]) -> String {
    let mut hash = Sha256::new();
    for part in [repository, suite, base::VARIANT, &packages.join("\n")] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!(
        "{repository}:{}-{}",
        tag_safe(suite),
        hex::encode(&hash.finalize()[..4])
    )
}

/// `agentd:<version>-<8 hex>`, the hex from the Dockerfile, the base and the
/// binary's bytes: a rebuilt binary yields a new tag.
fn supervisor_tag(base: &str, binary_sha256: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [
        SUPERVISOR_DOCKERFILE.as_bytes(),
        base.as_bytes(),
        binary_sha256,
    ] {
        hash.update(part);
        hash.update([0]);
    }
    format!(
        "{SUPERVISOR_REPOSITORY}:{}-{}",
        tag_safe(env!("CARGO_PKG_VERSION")),
        hex::encode(&hash.finalize()[..4])
    )
}

/// The sha256 of the file at `path`.
fn file_sha256(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut hash = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hash)?;
    Ok(hash.finalize().to_vec())
}

/// Makes sure `image` exists on `engine` (rebuilt when `force`), for the
/// Debian `suite`, scratch files under `cache_dir`.
pub async fn ensure_deployment_image(
    engine: &Engine,
    image: &DeploymentImage,
    suite: &str,
    cache_dir: &Path,
    force: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<DeploymentBuilt, ImageError> {
    match image {
        DeploymentImage::Engine => {
            let packages = base::parse_packages(ENGINE_PACKAGES);
            let tag = rootfs_tag(ENGINE_REPOSITORY, suite, &packages);
            if !force && engine.find_image(&tag).await?.is_some() {
                return Ok(DeploymentBuilt { tag, built: false });
            }
            let scratch = scratch_dir(cache_dir).await?;
            let changes = vec![
                format!("LABEL {IMAGE_LABEL}=engine"),
                r#"ENTRYPOINT ["/usr/sbin/dockerd"]"#.to_string(),
            ];
            base::build_rootfs_image(
                engine,
                suite,
                &packages,
                &tag,
                changes,
                scratch.path(),
                progress,
            )
            .await?;
            Ok(DeploymentBuilt { tag, built: true })
        }
        DeploymentImage::Supervisor { binary } => {
            let digest = {
                let path = binary.clone();
                tokio::task::spawn_blocking(move || file_sha256(&path))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|read| read)
                    .map_err(ImageError::io(format!("reading {}", binary.display())))?
            };
            let packages = base::parse_packages(SUPERVISOR_PACKAGES);
            let base_tag = rootfs_tag(SUPERVISOR_BASE_REPOSITORY, suite, &packages);
            let tag = supervisor_tag(&base_tag, &digest);
            if !force && engine.find_image(&tag).await?.is_some() {
                return Ok(DeploymentBuilt { tag, built: false });
            }
            let scratch = scratch_dir(cache_dir).await?;
            if force || engine.find_image(&base_tag).await?.is_none() {
                let changes = vec![format!("LABEL {IMAGE_LABEL}=supervisor-base")];
                base::build_rootfs_image(
                    engine,
                    suite,
                    &packages,
                    &base_tag,
                    changes,
                    scratch.path(),
                    progress,
                )
                .await?;
            }
            progress("writing the build context");
            let context = scratch.path().join("context.tar");
            {
                let (context, binary) = (context.clone(), binary.clone());
                tokio::task::spawn_blocking(move || {
                    super::agent::write_context_with(
                        &context,
                        SUPERVISOR_DOCKERFILE,
                        CONTEXT_BINARY,
                        &binary,
                    )
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|written| written)
                .map_err(ImageError::io("writing the build context"))?;
            }
            progress(&format!("building {tag} from {base_tag}"));
            let request = ImageBuild {
                tag: &tag,
                args: HashMap::from([
                    ("BASE".to_string(), base_tag.clone()),
                    ("VERSION".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                ]),
                no_cache: force,
            };
            engine
                .build_image(&request, &context, progress)
                .await?
                .map_err(|failed| ImageError::Build {
                    tag: tag.clone(),
                    step: failed.step,
                    message: failed.message,
                })?;
            Ok(DeploymentBuilt { tag, built: true })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_track_their_inputs() {
        let packages = base::parse_packages(ENGINE_PACKAGES);
        assert!(packages.iter().any(|p| p == "docker.io"));
        let engine = rootfs_tag(ENGINE_REPOSITORY, "bookworm", &packages);
        assert!(engine.starts_with("agentd-engine:bookworm-"));
        assert_ne!(engine, rootfs_tag(ENGINE_REPOSITORY, "trixie", &packages));
        let a = supervisor_tag("base:1", b"one");
        assert!(a.starts_with(&format!("agentd:{}-", env!("CARGO_PKG_VERSION"))));
        assert_ne!(a, supervisor_tag("base:1", b"two"));
        assert_ne!(a, supervisor_tag("base:2", b"one"));
        assert_eq!(a, supervisor_tag("base:1", b"one"));
    }

    #[test]
    fn the_supervisor_runs_as_its_own_user_not_the_sandboxs() {
        assert!(SUPERVISOR_DOCKERFILE.contains("USER 10100:10100"));
        assert!(!SUPERVISOR_DOCKERFILE.contains("10001"));
        let packages = base::parse_packages(SUPERVISOR_PACKAGES);
        for needed in ["git", "openssh-client", "tini", "ca-certificates"] {
            assert!(packages.iter().any(|p| p == needed), "{needed} missing");
        }
    }
}
