//! `veil diff`: exactly the changed decisions, and users gaining and
//! losing access.

use std::collections::BTreeSet;

use veil_engine::Engine;

use super::ensure;
use crate::common::{Failed, runtime, sample};

#[test]
fn diff_reports_exactly_the_change() -> Result<(), Failed> {
    let old = sample();
    let new = crate::common::engine("sample-v2");
    let report = runtime().block_on(veil_engine::tools::diff::diff(&old, &new))?;
    // Its exact text is a golden file: `golden::diff::sample_to_sample_v2`.
    let pairs: BTreeSet<(String, String)> = report
        .changes
        .iter()
        .map(|c| (c.user.clone(), c.table.clone()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("ALICE", "ANALYTICS.HR.EMPLOYEES"),
        ("BOB", "ANALYTICS.HR.EMPLOYEES"),
        ("DANA", "ANALYTICS.PUBLIC.CUSTOMERS"),
        ("FRANK", "ANALYTICS.HR.EMPLOYEES"),
    ]
    .into_iter()
    .map(|(u, t)| (u.to_string(), t.to_string()))
    .collect();
    ensure(pairs == want, format!("changed pairs {pairs:?}"))?;
    let dana = report
        .changes
        .iter()
        .find(|c| c.user == "DANA")
        .ok_or("DANA")?;
    ensure(
        dana.columns.len() == 1
            && dana.columns[0].column == "EMAIL"
            && dana.columns[0].new == "raw"
            && dana.rows_gained == 0
            && dana.rows_lost == 0,
        format!("DANA: only EMAIL becomes raw: {dana:?}"),
    )?;
    let bob = report
        .changes
        .iter()
        .find(|c| c.user == "BOB")
        .ok_or("BOB")?;
    ensure(
        bob.rows_gained == 2 && bob.rows_lost == 0 && bob.columns.is_empty(),
        format!("BOB gains the two HR rows: {bob:?}"),
    )?;
    let json = report.json()?;
    ensure(
        json.contains("\"rows_gained\": 2") && json.contains("\"old_access\": \"subscribed\""),
        json,
    )
}

#[test]
fn diff_reports_users_gaining_and_losing_access() -> Result<(), Failed> {
    let old = sample();
    let mut ws = old.workspace();
    if let Some(charlie) = ws.users.iter_mut().find(|u| u.name == "CHARLIE") {
        charlie.groups.insert("Analysts".to_string());
    }
    let new = runtime().block_on(Engine::from_workspace(ws))?;
    let forward = runtime().block_on(veil_engine::tools::diff::diff(&old, &new))?;
    let gained: BTreeSet<&str> = forward
        .gained_access
        .iter()
        .map(|(u, _)| u.as_str())
        .collect();
    ensure(
        gained == BTreeSet::from(["CHARLIE"]) && forward.lost_access.is_empty(),
        forward.to_string(),
    )?;
    let charlie_customers = forward
        .changes
        .iter()
        .find(|c| c.user == "CHARLIE" && c.table.ends_with("CUSTOMERS"))
        .ok_or("CHARLIE × CUSTOMERS")?;
    ensure(
        charlie_customers.rows_gained == 4 && charlie_customers.old_rows == 0,
        format!("CHARLIE (Region US) gains the 4 US customers: {charlie_customers:?}"),
    )?;
    let backward = runtime().block_on(veil_engine::tools::diff::diff(&new, &old))?;
    ensure(
        backward.lost_access.len() == forward.gained_access.len()
            && backward.gained_access.is_empty(),
        backward.to_string(),
    )
}
