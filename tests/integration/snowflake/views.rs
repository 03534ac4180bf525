//! The DDL-only workspace's per-role golden tests, views over policed
//! tables, versions of DDL workspaces, replaced roles and views, and the
//! policy catalog administrators read.

use super::*;

#[test]
fn ddl_workspace_per_role_golden() -> Result<(), Failed> {
    let engine = crate::common::engine("snowflake");
    let files = policy_test::workspace_test_files(&testdata("snowflake"))?;
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        let report = runtime().block_on(policy_test::run_files(&engine, &files, Some(mode)))?;
        if !report.passed() || report.files.is_empty() {
            return Err(format!("{mode:?}:\n{}", report.text()).into());
        }
    }
    Ok(())
}

#[test]
fn views_read_base_tables_through_the_users_policies() -> Result<(), Failed> {
    let script = "CREATE ROW ACCESS POLICY eu AS (r VARCHAR) RETURNS BOOLEAN -> r = 'EU';
ALTER TABLE c ADD ROW ACCESS POLICY eu ON (region);
CREATE MASKING POLICY star AS (v STRING) RETURNS STRING -> '*';
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY star;
CREATE ROLE viewer; GRANT ROLE viewer TO USER u;
CREATE SECURE VIEW v AS SELECT id, email, name FROM c;
CREATE MASKING POLICY initial AS (v STRING) RETURNS STRING -> LEFT(v, 1);
ALTER VIEW v MODIFY COLUMN name SET MASKING POLICY initial;
GRANT SELECT ON VIEW v TO ROLE viewer;";
    // Base row policy and mask, then the view's own mask; filters on the
    // view compare masked values.
    expect_rows(
        script,
        "SELECT id, email, name FROM v ORDER BY id",
        &[&["2", "*", "B"], &["3", "*", "C"], &["7", "*", "G"]],
    )?;
    expect_rows(
        script,
        "SELECT count(*) FROM v WHERE name = 'Bob Jones'",
        &[&["0"]],
    )?;
    expect_error(
        "CREATE VIEW loop AS SELECT * FROM loop; GRANT SELECT ON VIEW loop TO ROLE r;",
        "SELECT * FROM loop",
        "View DB.S.LOOP reads itself; queries on it are denied.",
    )?;
    expect_error(
        "CREATE VIEW v AS SELECT id FROM c;
CREATE MASKING POLICY p AS (v STRING) RETURNS STRING -> v;
ALTER VIEW v MODIFY COLUMN name SET MASKING POLICY p;
GRANT SELECT ON VIEW v TO ROLE r;",
        "SELECT * FROM v",
        "A masking policy is set on column NAME of view DB.S.V, which has no such column; queries on it are denied.",
    )
}

#[test]
fn filters_on_a_rounded_column_agree_through_a_view() -> Result<(), Failed> {
    // BALANCE rounded to 10 by a YAML policy; the view reads it through the
    // table's policy, and a filter on either compares what U sees: 754
    // shows as 750, 376 as 380, 996 as 990 (NUMBER(3,0) clamps 1000).
    let yaml = "policies:
  - {name: round-balance, type: masking, on: {columns: [DB.S.C.BALANCE]}, mask: {round: 10}}
";
    let script = "CREATE VIEW v AS SELECT id, balance FROM c; GRANT SELECT ON VIEW v TO ROLE r;";
    let cases: [(&str, &[&str]); 6] = [
        ("balance >= 990", &["1", "4"]),
        // Raw 754 is above 750, its rounded value is not.
        ("balance > 750", &["1", "4"]),
        ("balance = 510", &["8"]),
        // Only the rounded 376 equals 380.
        ("balance = 380", &["3"]),
        ("balance < 10", &["6", "10"]),
        ("balance <= 375", &["5", "6", "9", "10"]),
    ];
    let engine = load_with(&manifest(yaml), script)?;
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        let session = engine
            .session_with(veil_engine::SessionOptions {
                mode: Some(mode),
                ..veil_engine::SessionOptions::user("u")
            })
            .map_err(|e| e.to_string())?;
        for relation in ["c", "v"] {
            for (predicate, ids) in cases {
                let sql = format!("SELECT id FROM {relation} WHERE {predicate} ORDER BY id");
                let got = run(&session, &sql)?;
                let want: Vec<&[&str]> = ids.iter().map(std::slice::from_ref).collect();
                if got != rows(&want) {
                    return Err(format!("{mode:?} {sql}: want {ids:?}, got {got:?}").into());
                }
            }
        }
    }
    Ok(())
}

#[test]
fn ddl_workspaces_take_changes_as_versions() -> Result<(), Failed> {
    // A change to a DDL workspace (whose roles are granted views) validates
    // and applies; the next statement sees it.
    let engine = load(&testdata("snowflake")).map_err(Failed::from)?;
    let dir = tempfile::tempdir()?;
    engine.set_audit_log(dir.path().join("audit.jsonl"))?;
    let sam = engine.session("sam")?;
    let before = run(&sam, "SELECT count(*) FROM customers").map_err(Failed::from)?;
    runtime().block_on(engine.change(|ws| {
        if let Some(r) = ws.roles.iter_mut().find(|r| r.name == "SUPPORT") {
            r.grants.retain(|t| t.table != "CUSTOMERS");
        }
        for t in &mut ws.tables {
            for c in &mut t.columns {
                if c.name == "EMAIL" {
                    c.masking_policy = None;
                }
            }
        }
        Ok(())
    }))?;
    let change = engine
        .audit_log()
        .ok_or("audit log")?
        .records()?
        .into_iter()
        .find(|r| r.action == "POLICY_CHANGE")
        .ok_or("a change record")?;
    if change.targets
        != [
            "role SUPPORT (changed)",
            "policy attachment on SALES_DB.PUBLIC.CUSTOMERS.EMAIL (removed)",
        ]
    {
        return Err(format!("{:?}", change.targets).into());
    }
    let after = run(&sam, "SELECT count(*) FROM customers");
    match after {
        Err(e) if before == rows(&[&["2"]]) && e.contains("does not exist or not authorized") => {
            Ok(())
        }
        other => Err(format!("before {before:?}, after {other:?}").into()),
    }
}

#[test]
fn views_keep_user_predicates_above_them() -> Result<(), Failed> {
    // ALICE SMITH (US) is outside the view; a predicate that fails on her
    // row must never run on it (no divide-by-zero oracle).
    let script = "CREATE VIEW eu AS SELECT id, name FROM c WHERE region = 'EU';
GRANT SELECT ON VIEW eu TO ROLE r;";
    expect_rows(
        script,
        "SELECT count(*) FROM eu WHERE 1 / (CASE WHEN name = 'Alice Smith' THEN 0 ELSE 1 END) = 1",
        &[&["3"]],
    )?;
    expect_error(
        "CREATE VIEW v AS SELECT id, email FROM c;
CREATE MASKING POLICY lookup AS (v STRING) RETURNS STRING ->
  IFF(EXISTS (SELECT 1 FROM c WHERE email = v AND region = 'EU'), '***', v);
ALTER VIEW v MODIFY COLUMN email SET MASKING POLICY lookup;
GRANT SELECT ON VIEW v TO ROLE r;",
        "SELECT * FROM v",
        "masking policy DB.S.LOOKUP on view column EMAIL reads a table, which Veil supports on table columns only",
    )?;
    expect_error(
        "CREATE VIEW v (a, b) AS SELECT id, email FROM c;",
        "SELECT 1",
        "10_test.sql:1:15: CREATE VIEW with a column list is not supported by Veil",
    )?;
    expect_error(
        "",
        "EXPLAIN ANALYZE SELECT count(*) FROM c",
        "EXPLAIN ANALYZE statements are not allowed",
    )
}

#[test]
fn replacing_a_role_or_view_revokes_its_grants() -> Result<(), Failed> {
    expect_error(
        "CREATE OR REPLACE ROLE r; GRANT SELECT ON TABLE c TO ROLE r;",
        "SELECT count(*) FROM c",
        "Object 'DB.S.C' does not exist or not authorized.",
    )?;
    expect_error(
        "CREATE VIEW v AS SELECT id FROM c; GRANT SELECT ON VIEW v TO ROLE r;
CREATE OR REPLACE VIEW v AS SELECT id, email FROM c;",
        "SELECT * FROM v",
        "Object 'DB.S.V' does not exist or not authorized.",
    )
}

pub(super) fn admin(sql: &str) -> Result<Vec<Vec<String>>, String> {
    let engine = crate::common::engine("snowflake");
    runtime()
        .block_on(engine.admin_sql(sql))
        .map(|b| crate::common::rows(&b))
        .map_err(|e| e.to_string())
}

#[test]
fn policy_context_simulates_a_principal() -> Result<(), Failed> {
    let joe = admin(
        "EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'joe', CURRENT_ROLE => 'SALES_MANAGER_EU') AS SELECT sale_id FROM sales ORDER BY sale_id",
    )
    .map_err(Failed::from)?;
    if joe != rows(&[&["100"], &["102"]]) {
        return Err(format!("JOE as SALES_MANAGER_EU: {joe:?}").into());
    }
    for (sql, text) in [
        (
            "EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'nobody') AS SELECT 1",
            "User 'NOBODY' does not exist in this workspace.",
        ),
        (
            "EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'joe', CURRENT_ROLE => 'ANALYST') AS SELECT 1",
            "Role 'ANALYST' is not granted to user 'JOE'.",
        ),
        (
            "EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'anna', SNOWFLAKE$SESSION_ACTIVATED_ROLES => 'SUPPORT') AS SELECT 1",
            "Role 'SUPPORT' is not granted to user 'ANNA'.",
        ),
    ] {
        match admin(sql) {
            Err(e) if e.contains(text) => {}
            other => return Err(format!("{sql}: {other:?}").into()),
        }
    }
    // The audit names the administrator and the simulated user.
    let dir = tempfile::tempdir()?;
    let audited = load(&testdata("snowflake")).map_err(Failed::from)?;
    audited.set_audit_log(dir.path().join("audit.jsonl"))?;
    runtime().block_on(audited.admin_sql(
        "EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'joe') AS SELECT count(*) FROM sales",
    ))?;
    let records = audited.audit_log().ok_or("audit log")?.records()?;
    let r = records.first().ok_or("one record")?;
    if records.len() != 1
        || r.action != "SIMULATED_QUERY"
        || r.actor.name != "ADMIN"
        || r.actor.role.as_deref() != Some("SALES_MANAGER_EU")
        || r.simulated_user.as_deref() != Some("JOE")
        || r.rows_returned != Some(1)
    {
        return Err(format!("{records:?}").into());
    }
    // Users cannot simulate anyone.
    let engine = crate::common::engine("snowflake");
    let joe = engine.session("joe")?;
    let err = run(
        &joe,
        "EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'mary') AS SELECT * FROM sales",
    )
    .err()
    .ok_or("users may not run POLICY_CONTEXT")?;
    if !err.contains("EXECUTE statements are not allowed") {
        return Err(err.into());
    }
    Ok(())
}

#[test]
fn administrators_see_policies_and_references() -> Result<(), Failed> {
    let names = admin("SHOW MASKING POLICIES").map_err(Failed::from)?;
    let names: Vec<&str> = names.iter().map(|r| r[0].as_str()).collect();
    if names
        != [
            "EMAIL_MASK",
            "NAME_VISIBILITY",
            "PII_NUMBER",
            "PII_STRING",
            "REGION_INITIAL",
        ]
    {
        return Err(format!("{names:?}").into());
    }
    let rap = admin("SHOW ROW ACCESS POLICIES").map_err(Failed::from)?;
    if rap.len() != 2
        || rap[1][0] != "SALES_POLICY"
        || rap[1][1] != "(SALES_REGION VARCHAR(16777216))"
    {
        return Err(format!("{rap:?}").into());
    }
    let refs = admin(
        "SELECT policy_name, policy_kind, ref_column_name FROM veil.system.policy_references WHERE ref_entity_name LIKE 'CUSTOMER%' ORDER BY 1",
    )
    .map_err(Failed::from)?;
    let want = rows(&[
        &["CUSTOMERS_BY_REGION", "ROW_ACCESS_POLICY", "NULL"],
        &["EMAIL_MASK", "MASKING_POLICY", "EMAIL"],
        &["NAME_VISIBILITY", "MASKING_POLICY", "NAME"],
        &["PII_NUMBER", "MASKING_POLICY", "BIRTH_YEAR"],
        &["PII_STRING", "MASKING_POLICY", "PHONE"],
        &["REGION_INITIAL", "MASKING_POLICY", "REGION"],
    ]);
    if refs != want {
        return Err(format!("{refs:?}").into());
    }
    // Users see their own table's policies through DESCRIBE, and nothing else.
    let engine = crate::common::engine("snowflake");
    let anna = engine.session("anna")?;
    let described = run(&anna, "DESCRIBE TABLE customers").map_err(Failed::from)?;
    let email = described.iter().find(|r| r[0] == "EMAIL").ok_or("EMAIL")?;
    if email[2] != "EMAIL_MASK" {
        return Err(format!("{described:?}").into());
    }
    // DESCRIBE works on a granted view too, with the view's own policies.
    let view = run(&anna, "DESCRIBE TABLE customer_directory").map_err(Failed::from)?;
    let region = view.iter().find(|r| r[0] == "REGION").ok_or("REGION")?;
    if region[2] != "REGION_INITIAL" || view.len() != 4 {
        return Err(format!("{view:?}").into());
    }
    for sql in [
        "SELECT * FROM veil.system.policy_references",
        "SELECT * FROM veil.system.masking_policies",
    ] {
        let err = run(&anna, sql)
            .err()
            .ok_or("users may not read the policy catalog")?;
        if !err.contains("does not exist or not authorized") {
            return Err(err.into());
        }
    }
    Ok(())
}
