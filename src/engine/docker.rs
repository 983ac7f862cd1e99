//! The one handle agentd holds on the Docker engine, and the container and
//! volume operations an execution needs.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    KillContainerOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::error::{EngineError, is_conflict, is_not_found};
use super::spec::HardenedSpec;

/// A connection to the local Docker engine with a negotiated API version.
///
/// Cheap to clone; every execution shares one.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitState {
    /// The main process's exit code (137 after SIGKILL).
    pub exit_code: i64,
    /// The kernel's OOM killer fired inside the container's memory cgroup.
    pub oom_killed: bool,
}

impl Engine {
    /// Connects to the engine the usual way (`DOCKER_HOST` or the local socket)
    /// and negotiates the API version down to what the engine speaks (Debian's
    /// Docker 20.10 speaks 1.41).
    pub async fn connect() -> Result<Engine, EngineError> {
        let docker = Docker::connect_with_local_defaults().map_err(EngineError::Connect)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(EngineError::Connect)?;
        Ok(Engine { docker })
    }

    /// A client for the engine the usual way, without contacting it yet (the API
    /// version is not negotiated: for code that may never call the engine).
    pub fn unconnected() -> Result<Engine, EngineError> {
        let docker = Docker::connect_with_local_defaults().map_err(EngineError::Connect)?;
        Ok(Engine { docker })
    }

    /// The underlying bollard client, for the engine's own files.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Creates a named local volume with labels.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), EngineError> {
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::CreateVolume {
                name: name.to_string(),
                source,
            })
    }

    /// Removes a volume; a volume that is already gone is not an error.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(source) => Err(EngineError::RemoveVolume {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Creates (does not start) a container from a hardened spec.
    pub async fn create_container(
        &self,
        name: &str,
        spec: &HardenedSpec,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), spec.to_create_body())
            .await
            .map(|response| response.id)
            .map_err(|source| EngineError::CreateContainer {
                name: name.to_string(),
                source,
            })
    }

    /// Attaches to the standard input of a created container whose spec
    /// opened it ([`HardenedSpec::streaming_input`]): what is written reaches
    /// the driver and the agent; shutting the writer down (or dropping it,
    /// or this process dying) closes the container's stdin for good.
    pub async fn attach_input(
        &self,
        name: &str,
    ) -> Result<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>, EngineError> {
        let options = bollard::query_parameters::AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stream(true)
            .build();
        let attached = self
            .docker
            .attach_container(name, Some(options))
            .await
            .map_err(|source| EngineError::AttachInput {
                name: name.to_string(),
                source,
            })?;
        // Nothing comes back on an input-only attachment but its end; read
        // it so the connection is never held up.
        let mut output = attached.output;
        tokio::spawn(async move { while output.next().await.is_some() {} });
        Ok(attached.input)
    }

    /// Starts a created container.
    pub async fn start(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(|source| EngineError::StartContainer {
                name: name.to_string(),
                source,
            })
    }

    /// Waits until the container is not running and returns its exit code.
    pub async fn wait(&self, name: &str) -> Result<i64, EngineError> {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = self.docker.wait_container(name, Some(options));
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(source)) => Err(EngineError::WaitContainer {
                name: name.to_string(),
                source,
            }),
            None => self.exit_state(name).await.map(|state| state.exit_code),
        }
    }

    /// Sends SIGKILL; a container that already stopped or is gone is not an error.
    pub async fn kill(&self, name: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        match self.docker.kill_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) || is_conflict(&error) => Ok(()),
            Err(source) => Err(EngineError::KillContainer {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Reads how a stopped container ended.
    pub async fn exit_state(&self, name: &str) -> Result<ExitState, EngineError> {
        let inspect = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(|source| EngineError::InspectContainer {
                name: name.to_string(),
                source,
            })?;
        let state = inspect.state.unwrap_or_default();
        Ok(ExitState {
            exit_code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed.unwrap_or(false),
        })
    }

    /// True when the container is currently running.
    pub async fn is_running(&self, name: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_container(name, None).await {
            Ok(inspect) => Ok(inspect
                .state
                .and_then(|state| state.running)
                .unwrap_or(false)),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(source) => Err(EngineError::InspectContainer {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Force-removes a container (killing it if needed); already gone is fine.
    /// Anonymous volumes go with it; named volumes are removed separately.
    pub async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            // "removal already in progress": the other remover will finish it.
            Err(error) if is_conflict(&error) => Ok(()),
            Err(source) => Err(EngineError::RemoveContainer {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Streams a path out of a container (running or stopped) as a tar archive
    /// whose entries are prefixed by the path's base name.
    pub fn download(
        &self,
        name: &str,
        path: &str,
    ) -> impl Stream<Item = Result<Bytes, EngineError>> + Send + 'static {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let container = name.to_string();
        let path = path.to_string();
        self.docker
            .download_from_container(name, Some(options))
            .map_err(move |source| EngineError::Download {
                name: container.clone(),
                path: path.clone(),
                source,
            })
    }
}
