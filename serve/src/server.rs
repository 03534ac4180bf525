//! What every server shares: the engine handle, the options, the
//! connection limit, and the listener loop each protocol plugs into.
//! Operations (reload, metrics, graceful shutdown) build on [`ServerState`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use veil_engine::{Engine, Session, SessionOptions};

use crate::error::{Result, ServeError};
use crate::options::{Authentication, ServeOptions};

/// The state all connections of all protocols share.
#[derive(Debug)]
pub struct ServerState {
    engine: Engine,
    options: ServeOptions,
    connections: Arc<Semaphore>,
    operations: crate::ops::Operations,
}

impl ServerState {
    /// State for serving `engine` with `options`.
    pub fn new(engine: Engine, options: ServeOptions) -> Arc<Self> {
        Self::with_operations(engine, options, crate::ops::Operations::default())
    }

    /// State with the operators' side attached: metrics, the shutdown
    /// sequence, TLS.
    pub fn with_operations(
        engine: Engine,
        options: ServeOptions,
        operations: crate::ops::Operations,
    ) -> Arc<Self> {
        let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
        operations.metrics.attach(&engine);
        Arc::new(Self {
            engine,
            options,
            connections,
            operations,
        })
    }

    /// Metrics, shutdown and TLS.
    pub fn operations(&self) -> &crate::ops::Operations {
        &self.operations
    }

    /// The engine every session runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The options.
    pub fn options(&self) -> &ServeOptions {
        &self.options
    }

    /// How logins authenticate.
    pub fn authentication(&self) -> &Authentication {
        &self.options.authentication
    }

    /// A connection slot, or `None` when `--max-connections` are open. The
    /// slot is free again when the permit drops.
    pub fn try_connection(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.connections).try_acquire_owned().ok()
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.options
            .max_connections
            .saturating_sub(self.connections.available_permits())
    }

    /// Opens the session of an authenticated login: unknown, staged and
    /// disabled users are refused here (SPEC rule 9), with the server's
    /// statement timeout.
    pub fn open_session(&self, login: &str) -> veil_engine::Result<Session> {
        self.engine.session_with(SessionOptions {
            statement_timeout: Some(self.options.statement_timeout),
            ..SessionOptions::user(login)
        })
    }
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Accepts connections on `listener` and hands each to `handle` in its own
/// task until `shutdown` completes. Accept errors (too many open files, a
/// connection reset before accept) are logged and the loop goes on.
pub async fn accept_loop<H, F>(listener: TcpListener, handle: H, shutdown: impl Future<Output = ()>)
where
    H: Fn(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    tokio::spawn(handle(socket, peer));
                }
                Err(e) => {
                    eprintln!("warning: accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
