//! Veil's servers (`veil serve`): the ways people log in to Veil like a
//! database. Every connection is a [`veil_engine::Session`] bound to the
//! authenticated login, never to anything the client sends later; all
//! protocols share one [`veil_engine::Engine`], its policy versions and its
//! audit log.
//!
//! Rooms, as they land: [`credentials`] (the `veil passwd` verifiers both
//! protocols check), `pg/` (the PostgreSQL wire protocol), `snowflake/`
//! (the HTTP API `snowflake-connector-python` speaks), and the shared
//! server life cycle (reload, metrics, shutdown).
#![deny(missing_docs)]

pub mod admin;
pub mod credentials;
pub mod error;
pub mod metrics;
pub mod ops;
pub mod reload;
pub mod shutdown;
pub mod snowflake;
pub mod tls;
pub mod track;

pub use credentials::{Credentials, ScramVerifier, passwd_line};
pub use error::{Result, ServeError};
