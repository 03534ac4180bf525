//! Veil: Snowflake- and Immuta-style data-access policies enforced locally on
//! Apache DataFusion.
//!
//! A workspace (tables over Parquet/CSV/NDJSON/Arrow files, roles, users,
//! policies) loads into an [`Engine`]; each user queries through a
//! [`Session`] and gets exactly the rows and masked values their policies
//! allow. Modules are layered, each using only those below it (checked by
//! `engine/tests/architecture.rs`; the README's Design section has the map):
//! [`error`], [`trace`], [`guard`] (what one statement may cost) ←
//! [`model`] (plain data) ← [`sql`] (the parser, identifier rule and
//! statement gate) ← [`load`] (files → model) ← [`compile`] (policies →
//! per-table decisions) ← [`render`] (decisions as SQL) ← [`enforce`]
//! (DataFusion glue: engine, sessions, catalog, policy relations, barrier,
//! scan check; with [`audit`], [`profile`], [`output`]) ← [`tools`]
//! (explain, diff, lint, export, admin, demo, the policy test runner) and
//! [`shell`]. A row rule is declared in `model/`, parsed in `load/`,
//! compiled in `compile/`, rendered in `render/` and enforced in `enforce/`.
//!
//! A service links `veil-engine` and runs every statement as a user, inside
//! a multi-threaded tokio runtime with the `time` driver (statements have a
//! timeout). The hashing secret is read from the environment variable named
//! by `settings.secret_env` in `veil.yaml` when the workspace loads:
//!
//! ```no_run
//! use futures::StreamExt;
//! use veil_engine::{Engine, RecordBatch, SessionOptions};
//!
//! #[tokio::main] // multi-thread runtime, timers enabled
//! async fn main() -> veil_engine::Result<()> {
//!     let engine = Engine::load("testdata/sample").await?;
//!     let bob = engine.session_with(SessionOptions {
//!         role: Some("ANALYST".into()),
//!         ..SessionOptions::user("bob")
//!     })?;
//!     // Collected: Arrow record batches, policies applied.
//!     let batches: Vec<RecordBatch> = bob.sql("SELECT email, region FROM customers").await?;
//!     println!("{}", veil_engine::output::table(&batches)?);
//!     // Streamed: the same check and policies; refused statements fail here.
//!     let mut stream = bob.sql_stream("SELECT name, ssn FROM customers").await?;
//!     while let Some(batch) = stream.next().await {
//!         println!("{} rows", batch?.num_rows());
//!     }
//!     Ok(())
//! }
//! ```
#![deny(missing_docs)]
// Module docs are the map of their private rooms and link them: read them
// with `cargo doc --document-private-items` (as `.ci/run` builds them).
#![allow(rustdoc::private_intra_doc_links)]

pub mod audit;
pub mod compile;
pub mod directory;
pub mod discover;
pub mod enforce;
pub mod error;
pub mod guard;
pub mod load;
pub mod model;
pub mod output;
pub mod profile;
pub mod render;
pub mod session;
pub mod shell;
pub mod sql;
pub mod tools;
pub mod trace;

pub use enforce::{Engine, PlanExecutor, PlanTimings, Session};
/// The identifier rule and the parser, at their old path: now
/// [`sql::ident`]. Kept while other branches move over.
pub use sql::ident;
/// The statement gate at its old path (`rewrite`): now [`sql::gate`], with
/// [`sql::snowflake`] and [`sql::admin`]. Kept while other branches move
/// over.
pub mod rewrite {
    pub use crate::sql::gate::*;
    pub use crate::sql::{admin, snowflake};
}
pub use error::{Result, VeilError};
pub use model::EnforcementMode;
pub use model::SessionOptions;

/// Arrow, as DataFusion re-exports it: the one arrow version Veil's results
/// are built with (`veil_engine::arrow::array`, `::datatypes`, ...).
pub use datafusion::arrow;
/// One batch of result rows.
pub use datafusion::arrow::record_batch::RecordBatch;
/// The stream [`Session::sql_stream`] returns: `Stream<Item =
/// datafusion::common::Result<RecordBatch>>` with its schema.
pub use datafusion::execution::SendableRecordBatchStream;
