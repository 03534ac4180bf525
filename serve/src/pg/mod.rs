//! The PostgreSQL wire protocol (`veil serve --listen`), on pgwire: every
//! connection authenticates as a workspace user and gets its own
//! [`veil_engine::Session`], bound at login and never changed by anything
//! the client sends later.
//!
//! Files by concern: `auth` (startup, SCRAM-SHA-256, the connection limit,
//! audit of logins), `query` (the simple protocol and the routing of one
//! statement: Veil's statement path, client settings, catalog queries),
//! `extended` (parse/bind/describe/execute), `catalog` (`pg_catalog` and
//! `information_schema` built from what the login may see), `errors`
//! (SQLSTATEs), `encoding` (Arrow → rows), `cancel` (cancel requests).

use futures::FutureExt;
use std::net::SocketAddr;
use std::sync::Arc;

use pgwire::api::PgWireServerHandlers;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use veil_engine::Session;

use crate::server::ServerState;

mod auth;
mod cancel;
mod catalog;
mod encoding;
mod errors;
mod extended;
mod functions;
mod names;
mod query;
mod rewrite;
mod settings;
mod subquery;

/// One logged-in connection: its session and what goes with it. Stored in
/// pgwire's per-connection extensions; dropped (freeing its connection slot
/// and its cancel key) when the connection ends.
pub(crate) struct Conn {
    /// The session, bound to the authenticated login.
    pub(crate) session: Session,
    /// Fires when a cancel request names this connection.
    pub(crate) cancel: Arc<cancel::CancelSignal>,
    /// The connection's catalog (`pg_catalog`, `information_schema`),
    /// rebuilt when the policy version changes.
    pub(crate) catalog: catalog::CatalogCache,
    /// `SET VEIL.ADMIN = ON|OFF` of an administrator (see [`crate::admin`]).
    pub(crate) admin: crate::admin::AdminMode,
    _slot: OwnedSemaphorePermit,
    _cancel_key: cancel::Registration,
}

/// The handlers of one server: shared by all its connections.
pub(crate) struct Handlers {
    state: Arc<ServerState>,
    startup: Arc<auth::Startup>,
    cancels: Arc<cancel::Registry>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        Arc::new(query::Queries::new(Arc::clone(&self.state)))
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::new(extended::Extended::new(Arc::clone(&self.state)))
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.cancels)
    }
}

/// A bound PostgreSQL listener, ready to serve.
pub struct PgServer {
    listener: TcpListener,
    handlers: Arc<Handlers>,
}

impl PgServer {
    /// Binds `state.options().pg_listen`.
    pub async fn bind(state: Arc<ServerState>) -> crate::Result<Self> {
        let addr = state.options().pg_listen;
        Self::bind_to(state, addr).await
    }

    /// Binds `addr` (tests bind `127.0.0.1:0`).
    pub async fn bind_to(state: Arc<ServerState>, addr: SocketAddr) -> crate::Result<Self> {
        let listener = crate::server::bind(addr).await?;
        let cancels = Arc::new(cancel::Registry::default());
        let startup = Arc::new(auth::Startup::new(Arc::clone(&state), Arc::clone(&cancels)));
        Ok(Self {
            listener,
            handlers: Arc::new(Handlers {
                state,
                startup,
                cancels,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until `shutdown` completes or the server's
    /// shutdown sequence begins; connections already open keep running in
    /// their tasks until the sequence closes them (after their running
    /// statements). Each connection is counted in the metrics, and its
    /// audit records carry the client's address and application name.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        let handlers = self.handlers;
        let ops = handlers.state.operations().clone();
        let stopping = ops.shutdown.clone();
        crate::server::accept_loop(
            self.listener,
            move |socket: TcpStream, peer: SocketAddr| {
                let handlers = Arc::clone(&handlers);
                let ops = ops.clone();
                async move {
                    let _open = ops.metrics.connection(crate::metrics::Protocol::Postgres);
                    let client = veil_engine::audit::ClientInfo::new(peer.to_string());
                    let connection = veil_engine::audit::with_client(
                        client,
                        pgwire::tokio::process_socket(socket, ops.tls.clone(), handlers),
                    );
                    // pgwire 0.42.1's decoders panic on some truncated
                    // `Parse`/`Bind`/`Execute` bodies: that ends this
                    // connection only, and is logged.
                    let connection = std::panic::AssertUnwindSafe(connection).catch_unwind();
                    tokio::select! {
                        // A connection's I/O error ends that connection only.
                        done = connection => {
                            if done.is_err() {
                                eprintln!(
                                    "veil serve: closed the connection from {peer}: a malformed protocol message"
                                );
                            }
                        }
                        _ = ops.shutdown.closing() => {}
                    }
                }
            },
            async move {
                tokio::select! {
                    _ = shutdown => {}
                    _ = stopping.stopping() => {}
                }
            },
        )
        .await;
    }
}
