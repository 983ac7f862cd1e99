//! The unix socket one execution's sandbox reaches the model through.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::body::BodyBudget;
use super::forward::{Route, forward};
use super::limits::{AcceptBackoff, MAX_HEAD_BYTES, MAX_HEADER_LINES};
use super::socket_file::{ServedSocket, SocketFile};
use super::stall::StallGuard;
use super::{Gateway, GatewayError};
use crate::execution::AGENT_UID;

/// Longest path a unix socket address can hold on Linux (108 minus the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A listening per-execution socket. Closing it (or dropping it) stops the
/// listener, cuts open connections and removes the socket file.
///
/// It holds at most [`GatewayLimits::max_connections`](super::GatewayLimits)
/// connections: at the cap it stops accepting until one closes, so a flood
/// waits in the listen backlog instead of taking agentd's descriptors.
#[derive(Debug)]
pub struct ExecutionSocket {
    served: ServedSocket,
    slots: Arc<Semaphore>,
    max_connections: usize,
}

/// What one execution's connections share.
struct Door {
    gateway: Gateway,
    route: Route,
    /// Request-body bytes this execution may hold.
    bodies: BodyBudget,
}

impl Gateway {
    /// Binds `path` (its directory must exist), makes it usable by the sandbox's
    /// non-root user only, and serves it until closed.
    pub fn open(&self, path: &Path, route: Route) -> Result<ExecutionSocket, GatewayError> {
        let display = path.display().to_string();
        if display.len() > MAX_SOCKET_PATH {
            return Err(GatewayError::SocketPathTooLong { path: display });
        }
        let (listener, file) = SocketFile::bind(path).map_err(|source| GatewayError::Bind {
            path: display.clone(),
            source,
        })?;
        restrict_to_sandbox_user(path).map_err(|source| GatewayError::Bind {
            path: display,
            source,
        })?;
        let shutdown = CancellationToken::new();
        let limits = self.limits();
        let max_connections = limits.max_connections.max(1);
        let slots = Arc::new(Semaphore::new(max_connections));
        let door = Arc::new(Door {
            gateway: self.clone(),
            route,
            bodies: BodyBudget::new(limits.execution_body_budget),
        });
        let task = tokio::spawn(serve(door, listener, slots.clone(), shutdown.clone()));
        Ok(ExecutionSocket {
            served: ServedSocket::new(file, shutdown, task),
            slots,
            max_connections,
        })
    }
}

/// Owned by uid 10001 with mode 0600 when agentd can chown (it runs as root),
/// otherwise world-writable: the socket directory is what keeps other host
/// users out then (it is 0700 above the per-execution directory).
pub fn restrict_to_sandbox_user(path: &Path) -> std::io::Result<()> {
    match std::os::unix::fs::chown(path, Some(AGENT_UID), Some(AGENT_UID)) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)),
        Err(_) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)),
    }
}

async fn serve(
    door: Arc<Door>,
    listener: UnixListener,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        // Wait for a free slot before accepting: at the cap, new connections
        // stay in the kernel's backlog.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.succeeded();
                    stream
                }
                Err(error) => {
                    let pause = backoff.failed();
                    tracing::warn!(%error, pause_ms = pause.as_millis() as u64, "gateway accept failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        let door = door.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let limits = door.gateway.limits();
            let service_door = door.clone();
            let service = service_fn(move |request| {
                let door = service_door.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        forward(&door.gateway, &door.route, &door.bodies, request).await,
                    )
                }
            });
            let io = StallGuard::new(stream, limits.write_stall_timeout);
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_header_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADER_LINES)
                .keep_alive(true)
                .serve_connection(TokioIo::new(io), service);
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
        self.served.path()
    }

    /// Connections accepted and not yet closed (at most the configured cap).
    pub fn open_connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.slots.available_permits())
    }

    /// Stops serving and removes the socket file.
    pub async fn close(self) {
        self.served.close().await;
    }
}
