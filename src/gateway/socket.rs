//! The unix socket one execution's sandbox reaches the model through.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::forward::{Route, forward};
use super::{Gateway, GatewayError};
use crate::engine::spec::AGENT_UID;

/// Longest path a unix socket address can hold on Linux (108 minus the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A listening per-execution socket. Closing it (or dropping it) stops the
/// listener, cuts open connections and removes the socket file.
#[derive(Debug)]
pub struct ExecutionSocket {
    path: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Binds `path` (its directory must exist), makes it usable by the sandbox's
    /// non-root user only, and serves it until closed.
    pub fn open(&self, path: &Path, route: Route) -> Result<ExecutionSocket, GatewayError> {
        let display = path.display().to_string();
        if display.len() > MAX_SOCKET_PATH {
            return Err(GatewayError::SocketPathTooLong { path: display });
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|source| GatewayError::Bind {
            path: display.clone(),
            source,
        })?;
        restrict_to_sandbox_user(path).map_err(|source| GatewayError::Bind {
            path: display,
            source,
        })?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            self.clone(),
            listener,
            Arc::new(route),
            shutdown.clone(),
        ));
        Ok(ExecutionSocket {
            path: path.to_path_buf(),
            shutdown,
            task: Some(task),
        })
    }
}

/// Owned by uid 10001 with mode 0600 when agentd can chown (it runs as root),
/// otherwise world-writable: the socket directory is what keeps other host
/// users out then (it is 0700 above the per-execution directory).
fn restrict_to_sandbox_user(path: &Path) -> std::io::Result<()> {
    match std::os::unix::fs::chown(path, Some(AGENT_UID), Some(AGENT_UID)) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)),
        Err(_) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)),
    }
}

async fn serve(
    gateway: Gateway,
    listener: UnixListener,
    route: Arc<Route>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "gateway accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let gateway = gateway.clone();
        let route = route.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let gateway = gateway.clone();
                let route = route.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        forward(&gateway.inner.client, &route, request).await,
                    )
                }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                result = connection => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "gateway connection ended with an error");
                    }
                }
            }
        });
    }
}

impl ExecutionSocket {
    /// The socket's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and removes the socket file.
    pub async fn close(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ExecutionSocket {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
