//! A unix socket served on the host for a sandbox: its serving task, stopped
//! on close or drop, and its file, removed only while it is still the one
//! this process bound. After a takeover, the new holder of an execution binds
//! a fresh socket at the same path (the sandbox's bind mount names it); the
//! replica that lost the lease must not delete the new holder's file when it
//! closes its own listener.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A socket being served: closing (or dropping) it stops the task and
/// removes the file if it is still this one's.
#[derive(Debug)]
pub struct ServedSocket {
    file: SocketFile,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServedSocket {
    /// Serves `file` with `task`, which ends when `shutdown` is cancelled.
    pub fn new(file: SocketFile, shutdown: CancellationToken, task: JoinHandle<()>) -> Self {
        ServedSocket {
            file,
            shutdown,
            task: Some(task),
        }
    }

    /// The socket's path on the host.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Stops serving (letting the task end) and removes the file.
    pub async fn close(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.file.remove();
    }
}

impl Drop for ServedSocket {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.file.remove();
    }
}

/// The socket file a listener was bound to: its path and identity.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    /// Binds `path`, replacing whatever file is there (a stale socket).
    pub fn bind(path: &Path) -> std::io::Result<(UnixListener, SocketFile)> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let identity = std::fs::symlink_metadata(path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()));
        Ok((
            listener,
            SocketFile {
                path: path.to_path_buf(),
                identity,
            },
        ))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the one bound here; another process's
    /// socket at the same path is left alone.
    pub fn remove(&self) {
        let current = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|meta| (meta.dev(), meta.ino()));
        if current.is_some() && current == self.identity {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_newer_socket_at_the_same_path_survives_the_older_ones_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.sock");
        let (_old_listener, old) = SocketFile::bind(&path).unwrap();
        let (_new_listener, new) = SocketFile::bind(&path).unwrap();
        old.remove();
        assert!(
            path.exists(),
            "the newer socket was removed by the older owner"
        );
        new.remove();
        assert!(!path.exists());
    }
}
