//! Veil's integration tests, in one binary (each test binary links all of
//! DataFusion, so one binary builds and links once): plain `#[test]`
//! functions in one module per concern. The golden files have their own
//! binary, `golden/`.
//!
//! Run them all with `cargo test -p veil-tests --test integration`, or a
//! part by its path: `... --test integration security::` or
//! `... --test integration ops::lint::`.
//!
//! Conventions:
//! - a test returns `Result<(), common::Failed>`, so `?` works on any error
//!   and the failure prints as written;
//! - a test that plans a user's query runs it in both enforcement modes
//!   (`common::MODES`, or `common::both_modes(|mode| ...)`, which runs each
//!   mode to its end and names the mode that failed);
//! - the sample workspace's engine is loaded once (`common::sample()`); a
//!   test that changes an engine loads its own (`ops::fresh`, a
//!   `common::temp_workspace`);
//! - tests run on the harness's threads (2 MiB of stack, as a tokio worker
//!   embedding Veil has) and block on one shared runtime
//!   (`common::runtime()`); the fuzz tests start their own 2 MiB thread.
//!
//! A new concern is a new file (or folder) here and a `mod` line below.

/// `allow: approval` subscriptions: requests, approvals, denials.
mod access;
/// Lineage captured from administrators' CREATE TABLE AS / INSERT SELECT.
mod capture;
/// Veil on a loopback Ballista cluster: same answers, no secret in plans.
mod cluster;
/// Shared helpers: the failure type, both modes, the runtime, cached
/// engines, results as strings, temporary workspaces.
mod common;
/// Bad data files: every query of a bad table fails naming table, file,
/// line, column and kind; lint finds the same.
mod data;
/// Embedding Veil as a library: `Session::sql_stream` and the re-exports.
mod embed;
/// `veil export` to Snowflake DDL and back, and the secret.
mod export;
/// `veil export` of the newer masks: `mask ... where`, and the refusals.
mod export_masks;
/// Snowflake functions in user SQL.
mod functions;
/// Property-based fuzzing of `Session::sql`: no panic, timeout or leak.
mod fuzz;
/// Statements too deep or too large, timeouts, panics and error texts.
mod hardening;
/// Tags that follow the data: the catalog journal and lineage propagation.
mod lineage;
/// Reversible and format-preserving masks, `VEIL_UNMASK`, and their leaks.
mod masks;
/// The policy-as-code loop: `veil test`, diff, lint, audit, versions.
mod ops;
/// Property tests: untouched users see unenforced results; modes agree.
mod props;
/// The security suite: attacks and what must not come back.
mod security;
/// Semantics: sessions, fail-closed policies, load errors, explain.
mod semantics;
/// The Snowflake-native layer: DDL scripts, policy rules, grants, views.
mod snowflake;
/// Users from a table (CSV or Parquet) beside YAML users.
mod users_table;
