//! The audit log: allowed and denied queries are recorded, and
//! administrators read them through the audit table.

use veil_engine::audit::read_log;

use super::{audit_path, ensure, fresh};
use crate::common::{Failed, rows, run, runtime};

#[test]
fn audit_records_allowed_and_denied_queries() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let bob = engine.session("bob")?;
    let erin = engine.session("erin")?;
    run(&bob, "SELECT id, email FROM customers").map_err(Failed::from)?;
    let denied = run(&erin, "SELECT * FROM customers");
    ensure(denied.is_err(), "ERIN is not granted CUSTOMERS")?;
    let (records, torn) = read_log(&audit_path(dir.path()))?;
    ensure(torn == 0 && records.len() == 2, format!("{records:?}"))?;
    let ok = &records[0];
    ensure(
        ok.action == "QUERY"
            && ok.action_status == "SUCCESS"
            && ok.actor.name == "BOB"
            && ok.actor.role.as_deref() == Some("ANALYST")
            && ok.rows_returned == Some(3)
            && ok.targets == vec!["ANALYTICS.PUBLIC.CUSTOMERS".to_string()]
            && ok.policies_applied.contains(&"rows-by-region".to_string())
            && ok
                .policies_applied
                .contains(&"email-domain-only".to_string())
            && !ok.policies_applied.contains(&"order-month".to_string())
            && ok.policy_version == 1
            && ok.duration_ms.is_some(),
        format!("{ok:?}"),
    )?;
    let no = &records[1];
    ensure(
        no.action_status == "FAILURE"
            && no.actor.name == "ERIN"
            && no.rows_returned.is_none()
            && no.action_status_reason.as_deref()
                == Some("Object 'ANALYTICS.PUBLIC.CUSTOMERS' does not exist or not authorized."),
        format!("{no:?}"),
    )
}

#[test]
fn administrators_read_the_audit_table() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let engine = fresh("sample");
    engine.set_audit_log(audit_path(dir.path()))?;
    let bob = engine.session("bob")?;
    run(&bob, "SELECT count(*) FROM orders").map_err(Failed::from)?;
    run(&bob, "DELETE FROM orders")
        .err()
        .ok_or("DELETE is refused")?;
    let batches = runtime().block_on(engine.admin_sql(
        "SELECT actor, status, rows_returned FROM veil.audit WHERE action = 'QUERY' ORDER BY timestamp",
    ))?;
    let got = rows(&batches);
    ensure(
        got == vec![
            vec!["BOB".to_string(), "SUCCESS".to_string(), "1".to_string()],
            vec!["BOB".to_string(), "FAILURE".to_string(), "NULL".to_string()],
        ],
        format!("{got:?}"),
    )?;
    // Users cannot name the audit table, under either name.
    for sql in [
        "SELECT * FROM veil.audit",
        "SELECT * FROM veil.system.audit",
    ] {
        let err = run(&bob, sql)
            .err()
            .ok_or("users must not read the audit")?;
        ensure(err.contains("does not exist or not authorized"), err)?;
    }
    Ok(())
}
