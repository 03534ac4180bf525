//! The Snowflake-native layer: workspace DDL scripts and Snowflake's rules
//! for masking and row access policies, one test per rule with its error
//! text, and the DDL-only workspace's per-role golden tests in both modes.
//!
//! The tests live in one file per concern; this one holds the helpers
//! they share.

mod ddl_rules;
mod exempt;
mod grants_and_roles;
mod views;

use veil_engine::EnforcementMode;
use veil_engine::tools::test_runner as policy_test;

use crate::common::{Failed, load, run, runtime, temp_workspace, testdata};

fn manifest(extra: &str) -> String {
    let data = testdata("sample").join("data/customers.csv");
    format!(
        "settings: {{default_database: DB, default_schema: S, secret_env: VEIL_SAMPLE_SECRET, access: snowflake}}
tables:
  - name: DB.S.C
    location: {}
    columns:
      - {{name: ID,      type: NUMBER(10,0)}}
      - {{name: NAME,    type: VARCHAR(20)}}
      - {{name: EMAIL,   type: VARCHAR(30)}}
      - {{name: SSN,     type: VARCHAR(11)}}
      - {{name: REGION,  type: VARCHAR(8)}}
      - {{name: BALANCE, type: NUMBER(3,0)}}
users:
  - {{name: U}}
{extra}",
        data.display()
    )
}

const BASE: &str = "CREATE ROLE r; CREATE ROLE r2; GRANT ROLE r2 TO ROLE r;
GRANT SELECT ON TABLE c TO ROLE r; GRANT ROLE r TO USER u;";

/// Loads a workspace with the base script and `script` (as `10_test.sql`)
/// and runs `sql` as U; errors (load or query) come back as text.
fn query(script: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    query_with(&manifest(""), script, sql)
}

fn query_with(manifest: &str, script: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    query_as(manifest, script, "u", sql)
}

fn query_as(
    manifest: &str,
    script: &str,
    user: &str,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let engine = load_with(manifest, script)?;
    let session = engine.session(user).map_err(|e| e.to_string())?;
    run(&session, sql)
}

/// Loads a workspace with the base script and `script` (as `10_test.sql`).
fn load_with(manifest: &str, script: &str) -> Result<veil_engine::Engine, String> {
    let dir = temp_workspace(manifest, &[("00_base.sql", BASE), ("10_test.sql", script)]);
    load(dir.path())
}

fn expect_load_error(manifest: &str, script: &str, text: &str) -> Result<(), Failed> {
    match load_with(manifest, script) {
        Err(e) if e.contains(text) => Ok(()),
        Err(e) => Err(format!("expected an error containing\n  {text}\ngot {e}").into()),
        Ok(_) => Err(format!("expected an error containing\n  {text}\nbut it loaded").into()),
    }
}

fn rows(want: &[&[&str]]) -> Vec<Vec<String>> {
    want.iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

fn expect_rows(script: &str, sql: &str, want: &[&[&str]]) -> Result<(), Failed> {
    let got = query(script, sql).map_err(Failed::from)?;
    if got == rows(want) {
        Ok(())
    } else {
        Err(format!("{sql}\n  want {want:?}\n  got  {got:?}").into())
    }
}

fn expect_error(script: &str, sql: &str, text: &str) -> Result<(), Failed> {
    match query(script, sql) {
        Err(e) if e.contains(text) => Ok(()),
        other => Err(format!("expected an error containing\n  {text}\ngot {other:?}").into()),
    }
}

const EMAILS_OF_1_2: &str = "SELECT email FROM c WHERE id IN (1, 2) ORDER BY id";
