//! Snowflake's connector protocol (`veil serve --snowflake-listen`): the
//! HTTP API `snowflake-connector-python` and the tools built on it
//! (pandas, dbt-snowflake, SQLAlchemy) speak with `protocol='http'`.
//!
//! A login is a workspace user, checked against the same credentials as the
//! PostgreSQL server; it gets a random session token bound to one
//! [`veil_engine::Session`] for that user and role, never to anything the
//! client sends later. Every statement runs through Veil's own path
//! ([`veil_engine::Session::sql_stream`]), so policies apply exactly as in
//! the library; the session statements Snowflake clients send (`USE ROLE`,
//! `SHOW`, `ALTER SESSION SET`) are answered here.
//!
//! Rooms: [`routes`] (the endpoints, request bodies, tokens), [`session`]
//! (logins and their state), [`query`] (statements and bindings),
//! [`result`] (Arrow with Snowflake's metadata, JSON rowsets, chunks),
//! [`error`] (Snowflake's error codes and shape).

pub mod error;
pub mod query;
pub mod result;
pub mod routes;
pub mod session;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use veil_engine::Engine;

pub use error::SfError;

/// Checks a login's password; the PostgreSQL server's credentials file
/// implements it, so both protocols accept the same passwords.
pub trait PasswordCheck: Send + Sync {
    /// Whether `password` is `user`'s password (false for unknown users).
    fn verify_password(&self, user: &str, password: &str) -> bool;
}

/// How logins are authenticated.
#[derive(Clone)]
pub enum Authentication {
    /// No passwords: any active workspace user may log in (loopback
    /// listeners only; the command line enforces that).
    Trust,
    /// Passwords checked against verifiers.
    Passwords(Arc<dyn PasswordCheck>),
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Trust => f.write_str("Trust"),
            Self::Passwords(_) => f.write_str("Passwords"),
        }
    }
}

/// Limits of the Snowflake listener.
#[derive(Debug, Clone)]
pub struct SnowflakeLimits {
    /// Largest request body accepted, after gzip decompression.
    pub max_body_bytes: usize,
    /// Largest result one statement may hold in memory while its chunks
    /// are downloaded (Arrow bytes).
    pub max_result_bytes: usize,
    /// Target size of one result chunk (Arrow bytes before encoding).
    pub chunk_bytes: usize,
    /// Rows in the first chunk, sent inline with the response.
    pub first_chunk_rows: usize,
    /// How many statements' chunks a session keeps for download.
    pub kept_results: usize,
    /// Statement timeout of every session (`None`: the engine's default).
    pub statement_timeout: Option<Duration>,
    /// Most sessions open at once.
    pub max_sessions: usize,
}

impl Default for SnowflakeLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_result_bytes: 2 * 1024 * 1024 * 1024,
            chunk_bytes: 16 * 1024 * 1024,
            first_chunk_rows: 4096,
            kept_results: 8,
            statement_timeout: None,
            max_sessions: 10_000,
        }
    }
}

/// The Snowflake listener over one engine.
#[derive(Debug, Clone)]
pub struct SnowflakeServer {
    shared: Arc<routes::Shared>,
}

impl SnowflakeServer {
    /// A server over `engine`, authenticating with `auth`.
    pub fn new(engine: Engine, auth: Authentication) -> Self {
        Self::with_limits(engine, auth, SnowflakeLimits::default())
    }

    /// A server with explicit limits.
    pub fn with_limits(engine: Engine, auth: Authentication, limits: SnowflakeLimits) -> Self {
        Self {
            shared: Arc::new(routes::Shared::new(engine, auth, limits)),
        }
    }

    /// The axum router serving Snowflake's endpoints.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.shared))
    }

    /// How many sessions are open.
    pub fn open_sessions(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Serves connections from `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

impl PasswordCheck for crate::Credentials {
    fn verify_password(&self, user: &str, password: &str) -> bool {
        crate::Credentials::verify_password(self, user, password)
    }
}
