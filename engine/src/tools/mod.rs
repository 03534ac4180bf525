//! What people run on a workspace, built on the enforcement core:
//! `explain` (which policy decided each table and column, and why), `diff`
//! (impact analysis between two workspaces), `lint` (policy and data
//! smells), `export` (the Snowflake DDL installing the policies), `admin`
//! (administrators' statements), `demo`, and `test_runner` (`veil test`:
//! policy tests in sqllogictest files). The session still reaches into
//! `explain` (`meets`, the audit's policy names) and `admin` (the
//! administrators' statement parser): the circle issue 15's `model/` and
//! `compile/` steps remove, after which nothing below `tools` imports it.

pub mod admin;
pub mod demo;
pub mod diff;
pub mod explain;
pub mod export;
pub mod lint;
pub mod lint_coverage;
pub mod test_runner;
