//! Veil: Snowflake- and Immuta-style data-access policies enforced locally on
//! Apache DataFusion.
//!
//! A workspace (tables over Parquet/CSV/NDJSON/Arrow files, roles, users,
//! policies) loads into an [`Engine`]; each user queries through a
//! [`Session`] and gets exactly the rows and masked values their policies
//! allow. Modules follow the pipeline: [`model`] (plain data) ← [`load`]
//! (files → model) → [`compile`] (policies → per-table enforcement plans and
//! their SQL) → [`rewrite`] (user SQL checks and the printable rewrite) →
//! [`session`] (DataFusion glue).
//!
//! ```no_run
//! # async fn demo() -> veil_engine::Result<()> {
//! let engine = veil_engine::Engine::load("testdata/sample").await?;
//! let alice = engine.session("alice")?;
//! let batches = alice.sql("SELECT email, region FROM customers").await?;
//! println!("{}", veil_engine::output::table(&batches)?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admin;
pub mod audit;
pub mod bench;
pub mod compile;
pub mod demo;
pub mod diff;
pub mod error;
pub mod explain;
pub mod export;
pub mod guard;
pub mod ident;
pub mod lint;
pub mod load;
pub mod model;
pub mod output;
pub mod policy_test;
pub mod profile;
pub mod rewrite;
pub mod session;
pub mod shell;
pub mod trace;

pub use error::{Result, VeilError};
pub use model::EnforcementMode;
pub use session::{Engine, PlanTimings, Session, SessionOptions};
