//! A loopback HTTP server on its own task, for the simulated models (the
//! scripted model and the cassette replay): bind, serve, stop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long answers in flight may take to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A running server. Stops serving when dropped.
#[derive(Debug)]
pub struct BackgroundServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl BackgroundServer {
    /// Binds `addr` (port 0 picks a free port) and serves `router` until stopped.
    /// `stop` is also handed to the handlers so long answers end with the server.
    pub async fn start(
        addr: SocketAddr,
        router: Router,
        stop: CancellationToken,
        name: &'static str,
    ) -> std::io::Result<BackgroundServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let until = stop.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(until.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, server = name, "server stopped");
            }
        });
        tracing::debug!(%addr, server = name, "listening");
        Ok(BackgroundServer {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets answers in flight finish (a few seconds at most).
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
