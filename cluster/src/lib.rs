//! Veil on Apache Ballista (SPEC §10). A statement is parsed, checked and
//! planned where the session is — policy relations resolved under their
//! barriers, the identity folded to literals — and its physical plan goes
//! to a Ballista scheduler, which splits it into stages for `veil
//! executor`s. What crosses the wire is the plan: file paths, the user's
//! profile row and mapping tables inlined as memory scans, Veil's functions
//! by name with their non-secret state ([`functions`]). The hashing and
//! encryption secret never does: each executor reads its own, and refuses a
//! plan planned with another.
//!
//! - [`client`]: the [`ClusterClient`] an engine hands its plans to
//!   ([`veil_engine::Engine::set_plan_executor`]);
//! - [`codec`]: Ballista's plan codec plus Veil's barrier and functions;
//! - [`functions`]: Veil's functions on the wire;
//! - [`processes`]: `veil scheduler` and `veil executor`;
//! - `subqueries`: uncorrelated scalar subqueries answered before a plan
//!   leaves (their values travel as literals);
//! - [`local`]: a scheduler and executors in this process, on loopback
//!   (tests, `veil bench --cluster local`).

pub mod client;
pub mod codec;
pub mod functions;
pub mod local;
pub mod processes;
mod subqueries;

pub use client::ClusterClient;
pub use local::LocalCluster;
pub use processes::{ExecutorOptions, run_executor, run_scheduler};

/// Why a cluster process or client could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A scheduler address that is not `df://HOST:PORT`.
    #[error("scheduler address {0:?} is not df://HOST:PORT")]
    Address(String),
    /// The scheduler did not answer in time.
    #[error("the scheduler at {0} does not answer: {1}")]
    Unreachable(String, std::io::Error),
    /// A socket could not be bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Ballista refused to start.
    #[error("{0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    /// DataFusion refused a function registration.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}
