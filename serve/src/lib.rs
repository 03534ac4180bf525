//! Veil's servers (`veil serve`): the ways people log in to Veil like a
//! database. Every connection is a [`veil_engine::Session`] bound to the
//! authenticated login, never to anything the client sends later; all
//! protocols share one [`veil_engine::Engine`], its policy versions and its
//! audit log.
//!
//! Rooms: [`credentials`] (the `veil passwd` verifiers both protocols
//! check), [`options`] and [`server`] (what every server shares: the engine
//! handle, the connection limit, the listener loop), [`pg`] (the PostgreSQL
//! wire protocol); `snowflake/` (the HTTP API `snowflake-connector-python`
//! speaks) and the server life cycle (reload, metrics, shutdown) plug into
//! [`server::ServerState`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use veil_serve::options::{Authentication, ServeOptions};
//! use veil_serve::{Credentials, pg::PgServer, server::ServerState};
//!
//! # async fn demo() -> veil_serve::Result<()> {
//! let engine = veil_engine::Engine::load("testdata/sample").await?;
//! let credentials = Credentials::load("creds".as_ref())?;
//! let options = ServeOptions::new(Authentication::Credentials(Arc::new(credentials)));
//! let server = PgServer::bind(ServerState::new(engine, options)).await?;
//! server.serve(std::future::pending()).await; // psql -h 127.0.0.1 -p 5433 -U alice
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admin;
pub mod credentials;
pub mod error;
pub mod metrics;
pub mod ops;
pub mod options;
pub mod pg;
pub mod reload;
pub mod server;
pub mod shutdown;
pub mod snowflake;
pub mod tls;
pub mod track;

pub use credentials::{Credentials, ScramVerifier, passwd_line};
pub use error::{Result, ServeError};
