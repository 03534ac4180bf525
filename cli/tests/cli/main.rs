//! The `veil` binary's exit codes and output for the policy-as-code
//! commands (`test`, `lint`, `diff`, `query --audit/--admin`), and the
//! README's transcripts against the binary's real output. These run the
//! real binary, which only this package's integration tests can locate
//! (`CARGO_BIN_EXE_veil`); everything else is tested in `tests/`.
//!
//! One binary, one module per concern:

/// Running the binary and reading its output.
mod common;

/// The audit log from the command line.
mod audit;
/// `veil scheduler` and `veil executor` through scripts/cluster.sh.
mod cluster;
/// `veil test`, `veil lint` and `veil diff`.
mod policy_as_code;
/// `veil query` and `veil explain`.
mod query;
/// The README's transcripts against the binary.
mod readme;
/// `veil serve` started from the command line.
mod serve;
/// `veil shell` and `veil completions`.
mod shell;
