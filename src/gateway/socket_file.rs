//! A unix socket's file on the host, removed only while it is still the one
//! this process bound. After a takeover, the new holder of an execution binds
//! a fresh socket at the same path (the sandbox's bind mount names it); the
//! replica that lost the lease must not delete the new holder's file when it
//! closes its own listener.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

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
