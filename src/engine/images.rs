//! Images on the engine: finding one, pulling one, importing a root filesystem
//! tarball as one, and building one from a context tarball — each streamed
//! from a file, with the engine's progress handed to a callback line by line.

use std::collections::HashMap;
use std::path::Path;

use bollard::query_parameters::{BuildImageOptions, CreateImageOptionsBuilder};
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::docker::Engine;
use super::error::{EngineError, is_not_found};

/// Bytes read from a tarball per frame sent to the engine: 1 MiB.
const FRAME_BYTES: usize = 1 << 20;

/// An image the engine has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageFacts {
    /// Its id (`sha256:…`).
    pub id: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

/// A build of an image from a context tarball.
#[derive(Debug, Clone)]
pub struct ImageBuild<'a> {
    /// The tag to give the result.
    pub tag: &'a str,
    /// The Dockerfile's build arguments.
    pub args: HashMap<String, String>,
    /// Build every step again.
    pub no_cache: bool,
}

/// Where a build stopped, when a Dockerfile step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// The step (`Step 3/9 : RUN …`), or `the start`.
    pub step: String,
    /// What the engine said.
    pub message: String,
}

impl Engine {
    /// The image named `name`, or `None` when the engine has no such image.
    pub async fn find_image(&self, name: &str) -> Result<Option<ImageFacts>, EngineError> {
        match self.docker().inspect_image(name).await {
            Ok(found) => Ok(Some(ImageFacts {
                id: found.id.unwrap_or_default(),
                labels: found.config.and_then(|c| c.labels).unwrap_or_default(),
            })),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(source) => Err(EngineError::InspectImage {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Pulls `image` from its registry.
    pub async fn pull_image(
        &self,
        image: &str,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), EngineError> {
        let options = CreateImageOptionsBuilder::new().from_image(image).build();
        let mut replies = self.docker().create_image(Some(options), None, None);
        while let Some(reply) = replies.next().await {
            let reply = reply.map_err(|source| EngineError::PullImage {
                name: image.to_string(),
                source,
            })?;
            if let (Some(status), None) = (reply.status, reply.progress_detail) {
                progress(&format!("pull: {status}"));
            }
        }
        Ok(())
    }

    /// Imports the root filesystem tarball at `rootfs` as `tag`, with Dockerfile
    /// `changes` (e.g. `LABEL …`) applied.
    pub async fn import_image(
        &self,
        rootfs: &Path,
        tag: &str,
        changes: Vec<String>,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), EngineError> {
        let (repository, tag_part) = tag.split_once(':').unwrap_or((tag, "latest"));
        let body = bollard::body_try_stream(ReaderStream::with_capacity(
            open_tarball(rootfs).await?,
            FRAME_BYTES,
        ));
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repository)
            .tag(tag_part)
            .changes(changes)
            .build();
        let mut replies = self.docker().create_image(Some(options), Some(body), None);
        while let Some(reply) = replies.next().await {
            let reply = reply.map_err(|source| EngineError::ImportImage {
                name: tag.to_string(),
                source,
            })?;
            if let Some(status) = reply.status {
                progress(&format!("import: {status}"));
            }
        }
        Ok(())
    }

    /// Builds `build.tag` from the context tarball at `context`; returns the id
    /// of the image this build made when the engine reports it, or where a
    /// Dockerfile step failed.
    pub async fn build_image(
        &self,
        build: &ImageBuild<'_>,
        context: &Path,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Result<Option<String>, FailedStep>, EngineError> {
        let body = bollard::body_try_stream(ReaderStream::with_capacity(
            open_tarball(context).await?,
            FRAME_BYTES,
        ));
        let options = BuildImageOptions {
            t: Some(build.tag.to_string()),
            rm: true,
            forcerm: true,
            nocache: build.no_cache,
            buildargs: Some(build.args.clone()),
            ..Default::default()
        };
        let mut replies = self.docker().build_image(options, None, Some(body));
        let mut step = String::from("the start");
        let mut built = None;
        while let Some(reply) = replies.next().await {
            let reply = match reply {
                Ok(reply) => reply,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Ok(Err(FailedStep {
                        step,
                        message: error.trim().to_string(),
                    }));
                }
                Err(source) => {
                    return Err(EngineError::BuildImage {
                        name: build.tag.to_string(),
                        source,
                    });
                }
            };
            if let Some(id) = reply.aux.and_then(|aux| aux.id) {
                built = Some(id);
            }
            let text = reply.stream.or(reply.status).unwrap_or_default();
            for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                if line.starts_with("Step ") {
                    step = format!(
                        "`{}`",
                        line.split_whitespace().collect::<Vec<_>>().join(" ")
                    );
                }
                progress(&format!("build: {line}"));
            }
        }
        Ok(Ok(built))
    }
}

/// A tarball on disk, to stream to the engine.
async fn open_tarball(path: &Path) -> Result<tokio::fs::File, EngineError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|source| EngineError::ReadTarball {
            path: path.display().to_string(),
            source,
        })
}
