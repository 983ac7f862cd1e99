//! Finding agentd's resources on the engine by label, and removing them.
//!
//! In-process guards remove what an execution created on every normal path;
//! this is the safety net for the rest (a panic, `kill -9`, a crashed host):
//! everything carries `agentd.managed=true` plus its execution and supervisor,
//! so it can be found and removed later.

use std::collections::{BTreeSet, HashMap};

use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder};

use super::docker::Engine;
use super::error::EngineError;
use super::labels;

/// One labelled container or volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedResource {
    /// Container id or volume name.
    pub name: String,
    /// Its `agentd.execution` label.
    pub execution: Option<String>,
    /// Its `agentd.supervisor` label.
    pub supervisor: Option<String>,
    /// Its `agentd.host` label.
    pub host: Option<String>,
    /// Its `agentd.run-dir` label.
    pub run_dir: Option<String>,
}

/// Everything agentd-labelled on the engine (optionally narrowed to one execution).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagedResources {
    /// Containers, running or not.
    pub containers: Vec<ManagedResource>,
    /// Volumes.
    pub volumes: Vec<ManagedResource>,
}

impl ManagedResources {
    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.volumes.is_empty()
    }

    /// The supervisors that own at least one resource.
    pub fn supervisors(&self) -> BTreeSet<String> {
        self.containers
            .iter()
            .chain(&self.volumes)
            .filter_map(|resource| resource.supervisor.clone())
            .collect()
    }
}

fn resource(name: String, labels: Option<&HashMap<String, String>>) -> ManagedResource {
    ManagedResource {
        name,
        execution: labels.and_then(|l| l.get(labels::EXECUTION).cloned()),
        supervisor: labels.and_then(|l| l.get(labels::SUPERVISOR).cloned()),
        host: labels.and_then(|l| l.get(labels::HOST).cloned()),
        run_dir: labels.and_then(|l| l.get(labels::RUN_DIR).cloned()),
    }
}

impl Engine {
    /// Lists agentd's containers and volumes; with `execution`, only that one's.
    pub async fn list_managed(
        &self,
        execution: Option<&str>,
    ) -> Result<ManagedResources, EngineError> {
        let mut label_filters = vec![labels::managed_filter()];
        if let Some(execution) = execution {
            label_filters.push(labels::execution_filter(execution));
        }
        let filters = HashMap::from([("label".to_string(), label_filters)]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|source| EngineError::List {
                kind: "containers",
                source,
            })?
            .into_iter()
            .filter_map(|c| Some(resource(c.id?, c.labels.as_ref())))
            .collect();
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = self
            .docker()
            .list_volumes(Some(options))
            .await
            .map_err(|source| EngineError::List {
                kind: "volumes",
                source,
            })?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| resource(v.name, Some(&v.labels)))
            .collect();
        Ok(ManagedResources {
            containers,
            volumes,
        })
    }

    /// Removes the given resources: containers first (a volume in use cannot go),
    /// then volumes. Keeps going past failures and returns them all.
    pub async fn remove_all(&self, resources: &ManagedResources) -> Vec<EngineError> {
        let mut errors = Vec::new();
        for container in &resources.containers {
            if let Err(error) = self.remove_container(&container.name).await {
                errors.push(error);
            }
        }
        for volume in &resources.volumes {
            if let Err(error) = self.remove_volume(&volume.name).await {
                errors.push(error);
            }
        }
        errors
    }
}
