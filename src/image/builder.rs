//! [`ImageBuilder`]: makes sure the agent image exists, building only what is missing.

use crate::engine::{Engine, ImageFacts};

use super::agent::{self, AgentBuild};
use super::{CLAUDE_VERSION_LABEL, ImageConfig, ImageError, base, claude_binary};

/// The agent image [`ImageBuilder::ensure`] found or built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Its tag, [`ImageBuilder::agent_tag`]; what containers are created from.
    pub tag: String,
    /// The engine's image id (`sha256:…`).
    pub id: String,
    /// The Claude Code version inside (its `agentd.claude-version` label).
    pub claude_version: String,
    /// False when the image already existed and nothing was built.
    pub built: bool,
}

/// Builds the agent image described by an [`ImageConfig`] on one Docker engine.
pub struct ImageBuilder<'a> {
    engine: &'a Engine,
    config: ImageConfig,
}

impl<'a> ImageBuilder<'a> {
    /// A builder for `config` on `engine`; nothing is contacted until [`Self::ensure`].
    pub fn new(engine: &'a Engine, config: ImageConfig) -> Self {
        Self { engine, config }
    }

    /// The configuration this builder builds.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The tag of the mmdebstrap base, `agentd-base:<suite>-<8 hex>` (the hex from
    /// suite, variant and package list). Computed without I/O.
    pub fn base_tag(&self) -> String {
        base::base_tag(&self.config.suite, &base::packages())
    }

    /// The tag of the agent image, `agentd-agent:<claude version>-<8 hex>` (the hex
    /// from the Dockerfile, the base tag or base image, the Claude version and the
    /// package list). Computed without I/O, so it is the same in every process.
    pub fn agent_tag(&self) -> String {
        agent::agent_tag(
            &self.config.claude_version,
            &self.base_reference(),
            &base::packages(),
        )
    }

    fn base_reference(&self) -> String {
        self.config
            .base_image
            .clone()
            .unwrap_or_else(|| self.base_tag())
    }

    /// Returns the agent image, building first whatever is missing (the base, the
    /// cached CLI, the agent image), or everything when `force` is set. When the
    /// agent tag exists this is one Docker API call. `progress` receives one line
    /// per step and the tools' output. Concurrent calls are safe: the cached CLI is
    /// written under a lock and atomically; the last build to finish owns the tag.
    pub async fn ensure(
        &self,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<BuiltImage, ImageError> {
        let tag = self.agent_tag();
        if !self.config.force
            && let Some(found) = self.engine.find_image(&tag).await?
        {
            return Ok(self.existing_image(tag, found));
        }
        progress(&format!("building the agent image {tag}"));
        let claude = claude_binary::resolve(&self.config, progress).await?;

        let scratch = scratch_dir(&self.config.cache_dir).await?;

        let base = self.ensure_base(scratch.path(), progress).await?;

        progress("writing the build context");
        let context = scratch.path().join("context.tar");
        let (context_path, claude_path) = (context.clone(), claude.path.clone());
        tokio::task::spawn_blocking(move || agent::write_context(&context_path, &claude_path))
            .await
            .map_err(std::io::Error::other)
            .and_then(|written| written)
            .map_err(ImageError::io("writing the build context"))?;

        let packages = base::packages();
        let build = AgentBuild {
            tag: &tag,
            base: &base,
            packages: &packages,
            claude_version: &claude.version,
            no_cache: self.config.force,
        };
        let reported = agent::build(self.engine, build, &context, progress).await?;
        drop(scratch);

        // The id this build made, not whatever a concurrent build tagged since.
        let id = match reported {
            Some(id) => id,
            None => self
                .engine
                .find_image(&tag)
                .await?
                .map(|found| found.id)
                .ok_or_else(|| ImageError::Build {
                    tag: tag.clone(),
                    step: "the end".to_string(),
                    message: "the engine reported success but has no such image".to_string(),
                })?,
        };
        progress(&format!("built {tag} ({id})"));
        Ok(BuiltImage {
            tag,
            id,
            claude_version: claude.version,
            built: true,
        })
    }

    /// The base to build `FROM`: the configured base image (pulled if absent), or
    /// the mmdebstrap base, made if absent or forced.
    async fn ensure_base(
        &self,
        work_dir: &std::path::Path,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<String, ImageError> {
        if let Some(image) = &self.config.base_image {
            if self.engine.find_image(image).await?.is_none() {
                self.engine
                    .pull_image(&with_default_tag(image), progress)
                    .await?;
                progress(&format!("pulled the base image {image}"));
            }
            return Ok(image.clone());
        }
        let tag = self.base_tag();
        if self.config.force || self.engine.find_image(&tag).await?.is_none() {
            base::build(self.engine, &self.config.suite, &tag, work_dir, progress).await?;
        } else {
            progress(&format!("using the base image {tag}"));
        }
        Ok(tag)
    }

    fn existing_image(&self, tag: String, mut found: ImageFacts) -> BuiltImage {
        let claude_version = found
            .labels
            .remove(CLAUDE_VERSION_LABEL)
            .unwrap_or_else(|| self.config.claude_version.clone());
        BuiltImage {
            tag,
            id: found.id,
            claude_version,
            built: false,
        }
    }
}

/// A scratch folder for one build under `cache_dir` (made if missing),
/// removed when dropped.
pub(crate) async fn scratch_dir(
    cache_dir: &std::path::Path,
) -> Result<tempfile::TempDir, ImageError> {
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(ImageError::io(format!("creating {}", cache_dir.display())))?;
    tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(cache_dir)
        .map_err(ImageError::io(format!(
            "creating a scratch dir in {}",
            cache_dir.display()
        )))
}

/// `image` with `:latest` added when it names neither a tag nor a digest; a bare
/// name would make the engine pull every tag.
fn with_default_tag(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || name.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(engine: &Engine, config: ImageConfig) -> ImageBuilder<'_> {
        ImageBuilder::new(engine, config)
    }

    #[test]
    fn tags_depend_on_the_config_only() {
        let engine = Engine::unconnected().unwrap();
        let default = builder(&engine, ImageConfig::default());
        let same = builder(
            &engine,
            ImageConfig {
                cache_dir: "/elsewhere".into(),
                claude_binary: Some("/usr/bin/claude".into()),
                force: true,
                ..ImageConfig::default()
            },
        );
        assert_eq!(default.agent_tag(), same.agent_tag());
        assert_eq!(default.base_tag(), same.base_tag());
        assert!(default.agent_tag().starts_with("agentd-agent:2.1.330-"));
        assert!(default.base_tag().starts_with("agentd-base:bookworm-"));

        let registry = builder(
            &engine,
            ImageConfig {
                base_image: Some("debian:bookworm-slim".into()),
                ..ImageConfig::default()
            },
        );
        assert_ne!(default.agent_tag(), registry.agent_tag());
        let trixie = builder(
            &engine,
            ImageConfig {
                suite: "trixie".into(),
                ..ImageConfig::default()
            },
        );
        assert_ne!(default.base_tag(), trixie.base_tag());
        assert_ne!(default.agent_tag(), trixie.agent_tag());
    }

    #[test]
    fn pulls_name_one_tag() {
        assert_eq!(with_default_tag("debian"), "debian:latest");
        assert_eq!(
            with_default_tag("debian:bookworm-slim"),
            "debian:bookworm-slim"
        );
        assert_eq!(
            with_default_tag("registry:5000/debian"),
            "registry:5000/debian:latest"
        );
        assert_eq!(
            with_default_tag("registry:5000/debian:12"),
            "registry:5000/debian:12"
        );
        assert_eq!(with_default_tag("debian@sha256:00"), "debian@sha256:00");
    }
}
