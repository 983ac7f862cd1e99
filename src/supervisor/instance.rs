//! The identity and liveness of one supervisor process, and clean-up after dead ones.
//!
//! Every resource agentd creates is labelled with the supervisor that created
//! it and the host it runs on. A live supervisor holds an exclusive lock on
//! `<run_dir>/<id>.lock` for its whole life; the kernel drops the lock when the
//! process dies, however it dies. So a resource whose supervisor ran on this
//! host and whose lock can be taken belongs to nobody and is removed.

use std::fs::{File, TryLockError};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use std::collections::{HashMap, HashSet};

use crate::engine::labels::Owner;
use crate::engine::{Engine, EngineError, ManagedResources};
use crate::runner::Identity;
use crate::runner::layout::RunDir;
use crate::store::Store;

/// A live supervisor: its id, and the lock that proves it is alive.
#[derive(Debug)]
pub struct SupervisorInstance {
    id: String,
    host: String,
    run_dir: RunDir,
    _lock: File,
}

/// What went wrong claiming a run directory.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The run directory or lock file could not be created or locked.
    #[error("run directory {path}: {source}")]
    RunDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Listing or removing orphans on the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store could not say which executions are live.
    #[error("store: {0}")]
    Store(String),
}

fn run_dir_error(path: &Path, source: std::io::Error) -> InstanceError {
    InstanceError::RunDir {
        path: path.display().to_string(),
        source,
    }
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The label value naming this host.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

impl SupervisorInstance {
    /// Claims a fresh identity under `run_dir` (created 0700) and locks it.
    pub fn acquire(run_dir: RunDir) -> Result<SupervisorInstance, InstanceError> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        SupervisorInstance::acquire_as(run_dir, id)
    }

    /// Claims the identity stored in `id_file` (made on first use), so a
    /// restarted `agentd serve` is the same supervisor and finds its executions'
    /// sockets where it left them. Fails if another live process holds it.
    pub fn acquire_persistent(
        run_dir: RunDir,
        id_file: &Path,
    ) -> Result<SupervisorInstance, InstanceError> {
        let id = match std::fs::read_to_string(id_file) {
            Ok(id) if is_valid_id(id.trim()) => id.trim().to_string(),
            _ => {
                let id = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..11]);
                if let Some(parent) = id_file.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| run_dir_error(parent, e))?;
                }
                std::fs::write(id_file, format!("{id}\n"))
                    .map_err(|e| run_dir_error(id_file, e))?;
                id
            }
        };
        SupervisorInstance::acquire_as(run_dir, id)
    }

    fn acquire_as(run_dir: RunDir, id: String) -> Result<SupervisorInstance, InstanceError> {
        let root = run_dir.root().to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| run_dir_error(&root, e))?;
        let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700));
        let root = std::fs::canonicalize(&root).map_err(|e| run_dir_error(&root, e))?;
        let run_dir = RunDir::new(root);
        let lock_path = run_dir.lock(&id);
        let lock = File::create(&lock_path).map_err(|e| run_dir_error(&lock_path, e))?;
        lock.try_lock().map_err(|e| {
            run_dir_error(
                &lock_path,
                match e {
                    TryLockError::Error(e) => e,
                    TryLockError::WouldBlock => std::io::Error::other(format!(
                        "supervisor {id} is already running (another agentd uses this data directory)"
                    )),
                },
            )
        })?;
        let sockets = run_dir.supervisor(&id);
        std::fs::create_dir_all(&sockets).map_err(|e| run_dir_error(&sockets, e))?;
        // Back: whatever it detached from is its own again.
        let _ = std::fs::remove_file(run_dir.detached(&id));
        Ok(SupervisorInstance {
            id,
            host: host_name(),
            run_dir,
            _lock: lock,
        })
    }

    /// This supervisor's id (the `agentd.supervisor` label).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The host it runs on (the `agentd.host` label).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Who this supervisor is, as resource labels record it.
    pub fn owner(&self) -> Owner {
        Owner {
            supervisor: self.id.clone(),
            host: self.host.clone(),
            run_dir: self.run_dir.root().display().to_string(),
        }
    }

    /// What a runner needs to know of this supervisor (the lock stays here).
    pub fn identity(&self) -> Identity {
        Identity {
            run_dir: self.run_dir.clone(),
            owner: self.owner(),
        }
    }

    /// The run directory.
    pub fn run_dir(&self) -> &RunDir {
        &self.run_dir
    }

    /// True when `supervisor` ran on this host and is no longer alive.
    pub fn is_dead(&self, supervisor: &str) -> bool {
        if supervisor == self.id || self.run_dir.detached(supervisor).exists() {
            return false;
        }
        match File::open(self.run_dir.lock(supervisor)) {
            Ok(file) => match file.try_lock() {
                Ok(()) => true,
                Err(TryLockError::WouldBlock) => false,
                Err(TryLockError::Error(_)) => false,
            },
            // No lock file: the run directory was wiped (a reboot); its owner is gone.
            Err(error) => error.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// Marks this supervisor as detached: it is leaving with executions still
    /// running in their containers and will re-attach them when it starts again,
    /// so nobody may clean up after it meanwhile.
    pub fn detach(&self) {
        if let Err(error) = std::fs::write(self.run_dir.detached(&self.id), b"") {
            tracing::warn!(%error, "cannot mark the supervisor as detached");
        }
    }

    /// Removes every labelled container and volume, and every socket folder,
    /// left by dead supervisors of this host — except those of executions the
    /// store holds live under another supervisor (taken over). Returns what was
    /// removed, and the executions still live for someone (whose other
    /// resources, such as workspace filesystems, must stay).
    pub async fn remove_orphans(
        &self,
        engine: &Engine,
        store: Option<&dyn Store>,
    ) -> Result<(ManagedResources, HashSet<String>), InstanceError> {
        let all = engine.list_managed(None).await?;
        // Executions the store holds live, with their owner: one taken over by
        // another supervisor is spared; one still owned by the dead supervisor
        // that made its resources is as orphaned as they are.
        let live: HashMap<String, Option<String>> = match store {
            Some(store) => store
                .live_executions()
                .await
                .map_err(|e| InstanceError::Store(e.to_string()))?
                .into_iter()
                .map(|record| (record.execution.id, record.owner))
                .collect(),
            None => HashMap::new(),
        };
        let owner = self.owner();
        let dead = |resource: &crate::engine::ManagedResource| {
            let taken_over = resource
                .execution
                .as_ref()
                .and_then(|id| live.get(id))
                .is_some_and(|owner| owner.as_deref() != resource.supervisor.as_deref());
            !taken_over
                && resource.host.as_deref() == Some(owner.host.as_str())
                && resource.run_dir.as_deref() == Some(owner.run_dir.as_str())
                && resource
                    .supervisor
                    .as_deref()
                    .is_some_and(|s| self.is_dead(s))
        };
        let orphans = ManagedResources {
            containers: all.containers.iter().filter(|r| dead(r)).cloned().collect(),
            volumes: all.volumes.iter().filter(|r| dead(r)).cloned().collect(),
        };
        for error in super::reconcile::remove_orphans(engine, &orphans).await {
            tracing::warn!(%error, "could not remove an orphaned resource");
        }
        let spared: HashSet<String> = live
            .keys()
            .filter(|id| {
                !orphans
                    .containers
                    .iter()
                    .chain(&orphans.volumes)
                    .any(|r| r.execution.as_deref() == Some(id.as_str()))
            })
            .cloned()
            .collect();
        self.remove_dead_socket_dirs(&spared);
        Ok((orphans, spared))
    }

    /// Removes the socket folders of dead supervisors, except those of
    /// executions still live in the store (taken over: their containers still
    /// bind-mount them), and the dead supervisor's lock once nothing is left.
    pub(crate) fn remove_dead_socket_dirs(&self, live: &HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(self.run_dir.root()) else {
            return;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(supervisor) = name.strip_suffix(".lock") else {
                continue;
            };
            if !self.is_dead(supervisor) {
                continue;
            }
            let dir = self.run_dir.supervisor(supervisor);
            for execution in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !live.contains(execution.file_name().to_string_lossy().as_ref())
                    && std::fs::remove_dir_all(execution.path()).is_ok()
                {
                    removed += 1;
                }
            }
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        crate::metrics::global().reconcile_removed(crate::metrics::Removal::Socket, removed);
    }
}

impl Drop for SupervisorInstance {
    /// Tidies up only if no execution still needs the run directory: socket
    /// folders of detached executions must survive (their containers bind-mount
    /// them, and a re-created folder would be a different one to the mount).
    fn drop(&mut self) {
        if std::fs::remove_dir(self.run_dir.supervisor(&self.id)).is_ok() {
            let _ = std::fs::remove_file(self.run_dir.lock(&self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_supervisor_is_not_dead_until_it_returns() {
        let tmp = tempfile::tempdir().unwrap();
        let run_dir = RunDir::new(tmp.path().join("run"));
        let ids = tmp.path().join("supervisor-id");
        let serve = SupervisorInstance::acquire_persistent(run_dir.clone(), &ids).unwrap();
        let id = serve.id().to_string();
        // A detached execution's socket folder keeps the supervisor's folder.
        std::fs::create_dir_all(run_dir.socket_dir(&id, "exec")).unwrap();
        serve.detach();
        drop(serve);
        let other = SupervisorInstance::acquire(run_dir.clone()).unwrap();
        assert!(
            !other.is_dead(&id),
            "detached: it will come back for its work"
        );
        let back = SupervisorInstance::acquire_persistent(run_dir.clone(), &ids).unwrap();
        assert_eq!(back.id(), id);
        assert!(!run_dir.detached(&id).exists());
        drop(back);
        assert!(other.is_dead(&id), "gone without detaching: dead");
    }

    #[test]
    fn a_live_instance_is_not_dead_and_a_dropped_one_is() {
        let tmp = tempfile::tempdir().unwrap();
        let run_dir = RunDir::new(tmp.path().join("run"));
        let first = SupervisorInstance::acquire(run_dir.clone()).unwrap();
        let second = SupervisorInstance::acquire(run_dir.clone()).unwrap();
        assert!(!second.is_dead(first.id()));
        assert!(!first.is_dead(first.id()));
        let first_id = first.id().to_string();
        let leftover = tmp.path().join("run").join(&first_id).join("exec");
        std::fs::create_dir_all(&leftover).unwrap();
        drop(first);
        assert!(second.is_dead(&first_id));
        // A socket folder still in use keeps the supervisor's folder.
        assert!(leftover.exists());
        std::fs::remove_dir(&leftover).unwrap();
        let third = SupervisorInstance::acquire(run_dir.clone()).unwrap();
        let third_id = third.id().to_string();
        drop(third);
        assert!(!tmp.path().join("run").join(&third_id).exists());
    }
}
