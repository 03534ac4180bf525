//! Veil's servers driven by real clients, in one test binary: the
//! PostgreSQL wire protocol (`psql`, `tokio-postgres`) and Snowflake's
//! connector protocol (`snowflake-connector-python` from the environment
//! `scripts/test` creates), with the shared leak battery through both.
//! Every server listens on 127.0.0.1 on a port the system picks and stops
//! with its test.

#[path = "../../../tests/shared/leak_battery.rs"]
mod leak_battery;

/// DBeaver's, Metabase's and pgjdbc's discovery statements.
mod bi;
/// Helpers the wire tests share.
mod common;
/// Malformed PostgreSQL protocol input.
mod fuzz;
/// 64 connections while the policies change (ignored: a measurement).
mod load;
/// TLS logins; administrators' versions and rollback.
mod ops;
/// The PostgreSQL wire protocol.
mod pg;
/// The leak battery over the PostgreSQL wire.
mod pg_leaks;
/// Snowflake's connector protocol.
mod snowflake;
