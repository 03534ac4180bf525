//! The policy-as-code loop: `veil test` files, `veil diff`, `veil lint`,
//! the audit log, policy versions with rollback, and the decision cache —
//! including many sessions querying while versions are swapped.
//!
//! One file per part of the loop; this one holds the helpers they share.

mod audit;
mod diff;
mod lint;
mod test_runner;
mod versions;

use std::path::{Path, PathBuf};

use veil_engine::Engine;

use crate::common::{Failed, run, runtime, testdata};

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// A fresh engine (not the shared cache: these tests change versions and
/// set audit logs).
fn fresh(name: &str) -> Engine {
    runtime()
        .block_on(Engine::load(testdata(name)))
        .expect("workspace loads")
}

fn rows_of(engine: &Engine, user: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let session = engine.session(user).map_err(|e| e.to_string())?;
    run(&session, sql)
}

fn audit_path(dir: &Path) -> PathBuf {
    dir.join("audit.jsonl")
}
