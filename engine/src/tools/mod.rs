//! What people run on a workspace, built on the enforcement core:
//! `explain` (which policy decided each table and column, and why), `diff`
//! (impact analysis between two workspaces), `lint` (policy and data
//! smells), `export` (the Snowflake DDL installing the policies), `admin`
//! (administrators' statements), `demo`, and `test_runner` (`veil test`:
//! policy tests in sqllogictest files). Nothing below `tools` imports from
//! here.

pub mod admin;
pub mod demo;
pub mod diff;
pub mod explain;
pub mod export;
pub mod lint;
pub mod test_runner;
