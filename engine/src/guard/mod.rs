//! What one statement may cost before it reaches a parser or planner, and
//! what of a failure a user may see.
//!
//! A service embedding Veil must never go down on a user's SQL. Three kinds
//! of input would take it down or hold it for minutes, and each is bounded
//! here before it reaches sqlparser or DataFusion:
//! - deep nesting: sqlparser backtracks exponentially through some nested
//!   constructs (`CAST(CAST(...(1)))` without `AS`, `CASE(`, `POSITION(`),
//!   and unclosed parentheses; [`scan_tokens`] refuses unbalanced
//!   parentheses and bounds nesting on the tokens, before parsing;
//! - long chains: `a OR b OR ...` parses into a left-deep tree that
//!   DataFusion plans in quadratic time and recurses through;
//!   [`shape_statement`] rebalances `AND`/`OR` chains (the same operands in
//!   the same order, so the same result) and bounds expression depth,
//!   subquery nesting and CTE count with a complexity error;
//! - panics: [`on_planning_stack`] runs parsing and planning on a thread
//!   with a known, large stack and turns a panic into an error, and
//!   [`catch_panics`] does the same for execution.
//!
//! [`user_error`] is the one sanitizer between an error and a user: no plan
//! text, no policy internals, no file paths.
//!
//! Rooms: [`tokens`] (before parsing), [`shape`] (after parsing),
//! [`rebalance`] (optimizer rules), [`threads`] (planning threads, panics),
//! [`sanitize`] (errors users see).

mod rebalance;
mod sanitize;
mod shape;
mod threads;
mod tokens;

pub use rebalance::{RebalanceBooleanChains, RebalanceFilterPredicates};
pub use sanitize::{leaks, user_error};
pub use shape::shape_statement;
pub(crate) use threads::panicked;
pub use threads::{catch_panics, on_planning_stack, on_planning_thread};
pub use tokens::{is_statement_word, scan_tokens};

use crate::error::VeilError;

/// Deepest parenthesis nesting a statement may have.
pub const MAX_PAREN_DEPTH: usize = 40;
/// Deepest nesting of the constructs sqlparser backtracks through
/// (`CAST(`, `TRY_CAST(`, `CASE(`, `POSITION(`, `OVERLAY(`, ...): each
/// level doubles the parse time of a malformed input.
pub const MAX_BACKTRACKING_DEPTH: usize = 10;
/// Deepest expression tree (after `AND`/`OR` chains are rebalanced).
pub const MAX_EXPR_DEPTH: usize = 256;
/// Deepest nesting of subqueries inside expressions (DataFusion's
/// decorrelation is exponential in it).
pub const MAX_SUBQUERY_DEPTH: usize = 10;
/// Longest chain of set operations (`UNION ALL` branches).
pub const MAX_SET_BRANCHES: usize = 1000;
/// Most common table expressions in one statement.
pub const MAX_CTES: usize = 256;
/// Largest `LIMIT`/`OFFSET` kept as written; a larger one is dropped (no
/// table is that big, so the result is the same).
pub const MAX_LIMIT: u64 = 1 << 40;
/// Stack size of the thread user statements are parsed and planned on.
pub const PLANNING_STACK: usize = 256 * 1024 * 1024;

/// Words after which sqlparser tries one parse and, on failure, backtracks
/// and tries another over the same tokens.
pub(crate) const BACKTRACKING: &[&str] = &[
    "CAST",
    "TRY_CAST",
    "SAFE_CAST",
    "CASE",
    "POSITION",
    "OVERLAY",
    "CONVERT",
    "TRY_CONVERT",
];

pub(crate) fn too_complex(what: String) -> VeilError {
    VeilError::Refused(format!(
        "The statement is too complex for Veil: {what}; simplify it or split it into smaller queries."
    ))
}
