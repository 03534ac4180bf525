//! Enforcement on DataFusion, one concern per file. So far: the barrier at
//! the top of each policy relation and the independent scan check; the
//! session, catalog, policy relation, views and engine versions still live
//! in [`crate::session`] and move here next (issue 15).

pub mod barrier;
pub mod journal;
pub mod scan_check;

pub use barrier::PolicyBarrierExec;
pub use scan_check::PolicyScanCheck;
