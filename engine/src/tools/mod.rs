//! What people run on a workspace, built on the enforcement core:
//! `explain` (which policy decided each table and column, and why), `diff`
//! (impact analysis between two workspaces), `lint` (policy and data
//! smells), `export` (the Snowflake DDL installing the policies), `admin`
//! (administrators' statements), `demo`, and `test_runner` (`veil test`:
//! policy tests in sqllogictest files), `tags` (`veil tags`, tag export and
//! import), `access` (`veil access list`). The top layer of the engine: it may
//! use every module below it, and nothing below imports it (checked by
//! `engine/tests/architecture.rs`). What the enforcement core needs of these
//! lives below: `meets` and applicability in `model/`, the audit's policy
//! names in `compile/decisions.rs`, the administrators' statement gate in
//! `sql/admin.rs`, the policy catalog tables in `enforce/`.

pub mod access;
pub mod admin;
pub mod demo;
pub mod diff;
pub mod explain;
pub mod export;
pub mod lint;
pub mod lint_coverage;
mod lint_journal;
pub mod tags;
pub mod test_runner;
