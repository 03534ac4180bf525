//! Enforcement on DataFusion, one concern per file:
//! - [`engine`]: the [`Engine`], its policy versions and the decision cache;
//! - [`session`]: a user's [`Session`] ([`stream`]: its streamed results);
//! - [`bound`]: one session identity compiled against one version, and what
//!   a statement does with it (check, planning, SHOW/DESCRIBE, rewrite;
//!   [`statements`]: the statements an identity checked, by SQL text);
//! - [`identity`]: who a session is (user, roles, purpose, granted tables,
//!   entitlements), resolved from its options by pure functions;
//! - [`catalog`]: the per-user catalog of granted tables and views;
//! - [`policy_table`]: the policy relation each granted table resolves to,
//!   keeping the optimized plans of its recent scans when it reads no clock
//!   ([`profile_lookups`]: in profile-join mode, with the session's profile
//!   lookups folded in);
//! - [`pushdown`]: which user filters a policy relation takes below its
//!   barrier, and as what ([`rounded`]: comparisons with a rounded column,
//!   as ranges of the raw column);
//! - [`barrier`]: the execution node at the top of each policy relation;
//! - [`scan_check`]: the independent check that every scan is a policy
//!   relation;
//! - [`views`]: views planned with the owner's rights through the user's
//!   policies;
//! - [`system_tables`]: the profile table, the audit log and (`policy_catalog`)
//!   the policy catalog tables administrators read;
//! - [`state`]: the DataFusion session states Veil plans in;
//! - [`remote`]: where planned statements run (here, or a [`PlanExecutor`]
//!   such as a Ballista cluster).
//!
//! Enforcement design (see README "Design"):
//! - every table a user can name is a [`PolicyTable`]: a `TableProvider` that
//!   plans the table's policy SQL (row rules on raw values, then masks) in the
//!   session's *internal* state and wraps the result in a
//!   [`PolicyBarrierExec`]. User predicates stay above the barrier — logical
//!   filter pushdown is refused except for predicates that cannot fail on
//!   unmasked (or constant) columns and comparisons with a rounded column,
//!   which run as exactly equivalent ranges of the raw column — and the
//!   barrier stops physical filter, projection,
//!   limit and dynamic-filter pushdown — so no user expression ever runs on a
//!   hidden row or a raw masked value;
//! - a second line of defence, [`PolicyScanCheck`], is an analyzer rule that
//!   fails any user plan scanning something other than a policy relation;
//! - user SQL is planned with DDL, DML and statements disabled.

use std::sync::{Mutex, RwLock};

pub mod barrier;
pub(crate) mod bound;
pub(crate) mod capture;
pub(crate) mod catalog;
pub mod engine;
pub(crate) mod identity;
pub mod journal;
mod policy_catalog;
pub mod policy_table;
pub(crate) mod profile_lookups;
pub(crate) mod profile_table;
pub(crate) mod pushdown;
pub mod remote;
pub(crate) mod rounded;
pub mod scan_check;
pub mod session;
pub mod state;
pub(crate) mod statements;
pub(crate) mod stream;
pub mod system_tables;
pub(crate) mod views;

pub use crate::model::{DEFAULT_STATEMENT_TIMEOUT, SessionOptions};
pub use barrier::PolicyBarrierExec;
pub use engine::{DEFAULT_DECISION_TTL, Engine, EngineVersion};
pub use policy_table::PolicyTable;
pub use remote::PlanExecutor;
pub use scan_check::PolicyScanCheck;
pub use session::{PlanTimings, Session};
pub use state::SnowflakeTypePlanner;
pub use system_tables::profile_table_name;

/// Locks `m`, also after a panic elsewhere poisoned it (the data is still
/// consistent: every critical section is a single assignment or lookup).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Reads `m`, also after a panic elsewhere poisoned it.
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match m.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Writes `m`, also after a panic elsewhere poisoned it.
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match m.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
