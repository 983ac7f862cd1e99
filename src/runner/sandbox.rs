//! The resources one execution creates, recorded in the store as they are made,
//! and their guaranteed removal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::gateway::{ExecutionSocket, ReplayModel};
use crate::store::{ResourceKind, ResourceRecord, Store};

/// Everything created for one execution, in creation order. [`Sandbox::release`]
/// removes all of it and then double-checks the engine by label.
pub struct Sandbox {
    execution: String,
    store: Arc<dyn Store>,
    containers: Vec<String>,
    volume: Option<String>,
    socket: Option<ExecutionSocket>,
    tool_door: Option<super::tool_door::ToolDoor>,
    socket_dir: Option<PathBuf>,
    replay: Option<ReplayModel>,
    disk: Option<PathBuf>,
}

impl Sandbox {
    /// A sandbox record for `execution`, with nothing created yet.
    pub fn new(execution: &str, store: Arc<dyn Store>) -> Self {
        Sandbox {
            execution: execution.to_string(),
            store,
            containers: Vec::new(),
            volume: None,
            socket: None,
            tool_door: None,
            socket_dir: None,
            replay: None,
            disk: None,
        }
    }

    /// The sandbox a previous supervisor left, from the store's resource records
    /// (those not yet removed).
    pub fn from_records(
        execution: &str,
        store: Arc<dyn Store>,
        records: &[ResourceRecord],
    ) -> Self {
        let mut sandbox = Sandbox::new(execution, store);
        for record in records.iter().filter(|r| r.removed_at.is_none()) {
            match record.kind {
                ResourceKind::Container => sandbox.containers.push(record.name.clone()),
                ResourceKind::Volume => sandbox.volume = Some(record.name.clone()),
                ResourceKind::Socket => sandbox.socket_dir = Some(PathBuf::from(&record.name)),
            }
        }
        sandbox
    }

    async fn note(&self, kind: ResourceKind, name: &str) {
        if let Err(error) = self
            .store
            .resource_created(&self.execution, kind, name)
            .await
        {
            tracing::warn!(%error, "cannot record a created resource");
        }
    }

    async fn gone(&self, kind: ResourceKind, name: &str) {
        if let Err(error) = self.store.resource_removed(kind, name).await {
            tracing::warn!(%error, "cannot record a removed resource");
        }
    }

    /// Records the socket folder (before anything is created in it).
    pub async fn add_socket_dir(&mut self, dir: PathBuf) {
        self.note(ResourceKind::Socket, &dir.display().to_string())
            .await;
        self.socket_dir = Some(dir);
    }

    /// Keeps the listening tool socket, to be closed on release.
    pub(crate) fn set_tool_door(&mut self, door: super::tool_door::ToolDoor) {
        self.tool_door = Some(door);
    }

    /// Keeps the listening socket, to be closed on release.
    pub fn set_socket(&mut self, socket: ExecutionSocket) {
        self.socket = Some(socket);
    }

    /// Keeps the replay server playing the model's side, stopped on release.
    pub fn set_replay(&mut self, replay: ReplayModel) {
        self.replay = Some(replay);
    }

    /// The replay server's address, when the model's side is replayed.
    pub fn replay_url(&self) -> Option<String> {
        self.replay.as_ref().map(ReplayModel::base_url)
    }

    /// The socket folder, if one was made.
    pub fn socket_dir(&self) -> Option<&PathBuf> {
        self.socket_dir.as_ref()
    }

    /// Records the workspace volume (before creating it, so a crash in between
    /// still leaves a trace).
    pub async fn add_volume(&mut self, name: &str) {
        self.note(ResourceKind::Volume, name).await;
        self.volume = Some(name.to_string());
    }

    /// Keeps the workspace's filesystem image, released after its volume.
    pub fn set_disk(&mut self, image: PathBuf) {
        self.disk = Some(image);
    }

    /// Records a container (before creating it).
    pub async fn add_container(&mut self, name: &str) {
        self.note(ResourceKind::Container, name).await;
        self.containers.push(name.to_string());
    }

    /// The containers recorded, in creation order.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }

    /// Lets go of what this process holds (listening sockets, the replay
    /// server) and removes nothing on the engine or on disk: the sandbox now
    /// belongs to the replica that took the execution over.
    pub async fn leave(&mut self) {
        self.stop_serving().await;
        self.containers.clear();
        self.volume = None;
        self.disk = None;
        self.socket_dir = None;
    }

    /// Stops what this process serves the sandbox: the model and tool
    /// sockets, the replay server.
    async fn stop_serving(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.close().await;
        }
        if let Some(door) = self.tool_door.take() {
            door.close().await;
        }
        if let Some(replay) = self.replay.take() {
            replay.shutdown().await;
        }
    }

    /// Removes everything. Never fails: what cannot be removed now is logged and
    /// left for the label sweep (`agentd gc`, the next start-up, the reconcile timer).
    pub async fn release(&mut self, engine: &Engine) {
        for container in std::mem::take(&mut self.containers) {
            let mut removed = engine.remove_container(&container).await;
            if let Err(error) = &removed {
                tracing::warn!(%error, "removing container, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                removed = engine.remove_container(&container).await;
            }
            match removed {
                Ok(()) => self.gone(ResourceKind::Container, &container).await,
                Err(error) => tracing::error!(%error, "container left behind"),
            }
        }
        if let Some(volume) = self.volume.take() {
            let mut attempt = 0;
            loop {
                match engine.remove_volume(&volume).await {
                    Ok(()) => {
                        self.gone(ResourceKind::Volume, &volume).await;
                        break;
                    }
                    Err(error) => {
                        attempt += 1;
                        if attempt >= 5 {
                            tracing::error!(%error, "volume left behind");
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    }
                }
            }
        }
        if let Some(image) = self.disk.take()
            && let Err(error) = crate::engine::workspace::release_disk(&image).await
        {
            tracing::error!(%error, "workspace filesystem left behind");
        }
        self.stop_serving().await;
        if let Some(dir) = self.socket_dir.take() {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            self.gone(ResourceKind::Socket, &dir.display().to_string())
                .await;
        }
        match engine.list_managed(Some(&self.execution)).await {
            Ok(leftovers) if !leftovers.is_empty() => {
                tracing::warn!(?leftovers, "removing leftovers found by label");
                for error in engine.remove_all(&leftovers).await {
                    tracing::error!(%error, "resource left behind");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot check for leftovers"),
        }
    }
}

/// Releases the workspace filesystems a dead agentd left under `data_dir`: those
/// of executions not in `live` whose volume is gone (and the build mounts of
/// checkout templates whose builder died). Returns their ids.
pub async fn sweep_workspaces(
    engine: &Engine,
    data_dir: &crate::runner::layout::DataDir,
    live: &std::collections::HashSet<String>,
) -> Vec<String> {
    super::template::sweep_builds(&data_dir.templates()).await;
    crate::engine::workspace::sweep_workspaces(
        engine,
        &data_dir.workspaces(),
        live,
        crate::execution::volume_name,
    )
    .await
}
