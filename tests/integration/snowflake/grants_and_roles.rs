//! Roles and grants from DDL scripts: YAML users holding DDL roles,
//! USAGE and APPLY grants, lint over grants, ALTER TABLE and role cycles.

use super::*;

#[test]
fn yaml_users_hold_roles_ddl_scripts_create() -> Result<(), Failed> {
    // A YAML user, a YAML role's parent and a YAML policy condition all name
    // SALES_EXEC, which only 10_test.sql creates.
    let yaml = "  - {name: ALICE, roles: [SALES_EXEC]}
  - {name: BOB, roles: [BOSS]}
roles:
  - {name: BOSS, inherits: [SALES_EXEC]}
policies:
  - name: ssn-for-sales
    type: masking
    on: {columns: [DB.S.C.SSN]}
    mask: nullify
    except: {roles: [SALES_EXEC]}
";
    let script = "CREATE ROLE sales_exec; GRANT SELECT ON TABLE c TO ROLE sales_exec;";
    let sql = "SELECT name, ssn FROM c WHERE id = 1";
    for user in ["alice", "bob"] {
        let got = query_as(&manifest(yaml), script, user, sql).map_err(Failed::from)?;
        if got != rows(&[&["Alice Smith", "111-11-1111"]]) {
            return Err(format!("{user}: {got:?}").into());
        }
    }
    let got = query_as(&manifest(yaml), script, "u", sql).map_err(Failed::from)?;
    if got != rows(&[&["Alice Smith", "NULL"]]) {
        return Err(format!("u: {got:?}").into());
    }
    // A role nobody creates is still refused, naming the YAML line.
    expect_load_error(
        &manifest("  - {name: ALICE, roles: [SALES_EXCE]}\n"),
        script,
        "veil.yaml:14: user ALICE is granted role SALES_EXCE, which is not declared",
    )?;
    expect_load_error(
        &manifest("roles:\n  - {name: BOSS, inherits: [NOPE]}\n"),
        script,
        "veil.yaml:15: role BOSS inherits role NOPE, which is not declared",
    )?;
    expect_load_error(
        &manifest(&yaml.replace("except: {roles: [SALES_EXEC]}", "except: {roles: [NOPE]}")),
        script,
        "veil.yaml:19: policy 'ssn-for-sales': condition names role NOPE, which is not declared",
    )
}

#[test]
fn usage_and_apply_grants_are_recorded() -> Result<(), Failed> {
    use veil_engine::model::Privilege;
    let script = "USE DATABASE db;
GRANT USAGE ON DATABASE db TO ROLE r;
GRANT USAGE ON SCHEMA s TO ROLE r;
GRANT USAGE ON SCHEMA other.\"raw data\" TO ROLE r;
GRANT USAGE ON WAREHOUSE compute_wh TO ROLE r;
GRANT APPLY MASKING POLICY ON ACCOUNT TO ROLE r2;
GRANT APPLY ROW ACCESS POLICY ON ACCOUNT TO ROLE r2;
GRANT APPLY TAG ON ACCOUNT TO ROLE r2;
GRANT APPLY TAG ON ACCOUNT TO ROLE r2;";
    let engine = load_with(&manifest(""), script).map_err(Failed::from)?;
    let ws = engine.workspace();
    let held = |role: &str| {
        ws.role(role)
            .map(|r| {
                r.privileges
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let want_r = [
        "USAGE ON DATABASE DB",
        "USAGE ON SCHEMA DB.S",
        "USAGE ON SCHEMA OTHER.\"raw data\"",
        "USAGE ON WAREHOUSE COMPUTE_WH",
    ];
    let want_r2 = [
        "APPLY MASKING POLICY ON ACCOUNT",
        "APPLY ROW ACCESS POLICY ON ACCOUNT",
        "APPLY TAG ON ACCOUNT",
    ];
    if held("R") != want_r || held("R2") != want_r2 {
        return Err(format!("R: {:?}\nR2: {:?}", held("R"), held("R2")).into());
    }
    if !matches!(
        ws.role("R2").map(|r| r.privileges[0].clone()),
        Some(Privilege::ApplyMaskingPolicy)
    ) {
        return Err("R2's first privilege is APPLY MASKING POLICY".into());
    }
    // Recorded, not enforced: reads work as before.
    let session = engine.session("u").map_err(|e| e.to_string())?;
    let got = run(&session, "SELECT count(*) FROM c").map_err(Failed::from)?;
    if got != rows(&[&["10"]]) {
        return Err(format!("{got:?}").into());
    }
    // Export writes them back.
    let sql = veil_engine::tools::export::export_snowflake(&ws, &Default::default())
        .map_err(|e| e.to_string())?;
    for line in [
        "GRANT USAGE ON SCHEMA DB.S TO ROLE R;",
        "GRANT APPLY TAG ON ACCOUNT TO ROLE R2;",
    ] {
        if !sql.contains(line) {
            return Err(format!("export lacks {line}").into());
        }
    }
    expect_error(
        "GRANT USAGE ON TABLE c TO ROLE r;",
        "SELECT 1",
        "10_test.sql:1:16: expected DATABASE, SCHEMA or WAREHOUSE, found TABLE",
    )?;
    expect_error(
        "GRANT APPLY MASKING POLICY ON SCHEMA s TO ROLE r;",
        "SELECT 1",
        "10_test.sql:1:31: expected ACCOUNT, found SCHEMA",
    )?;
    expect_error(
        "GRANT USAGE ON DATABASE db TO ROLE nobody;",
        "SELECT 1",
        "10_test.sql:1:1: Role 'NOBODY' does not exist or not authorized.",
    )
}

#[test]
fn lint_counts_tag_masking_policies_as_targeting_the_tag() -> Result<(), Failed> {
    // 04_tags.sql: ALTER TAG pii SET MASKING POLICY pii_string, ...
    let engine = crate::common::engine("snowflake");
    let findings = runtime()
        .block_on(veil_engine::tools::lint::lint(&engine))
        .map_err(|e| e.to_string())?;
    let unused: Vec<String> = findings
        .iter()
        .filter(|f| f.code == "unused-tag")
        .map(ToString::to_string)
        .collect();
    if unused.is_empty() {
        Ok(())
    } else {
        Err(format!("{unused:?}").into())
    }
}

#[test]
fn lint_reports_reads_without_usage() -> Result<(), Failed> {
    let findings = |script: &str| -> Result<Vec<String>, Failed> {
        let engine = load_with(&manifest(""), script).map_err(Failed::from)?;
        let all = runtime()
            .block_on(veil_engine::tools::lint::lint(&engine))
            .map_err(|e| e.to_string())?;
        Ok(all
            .iter()
            .filter(|f| f.code == "read-without-usage")
            .map(ToString::to_string)
            .collect())
    };
    // No USAGE anywhere: the workspace does not model it, nothing to report.
    let none = findings("")?;
    // USAGE on the database only: the schema is missing.
    let schema = findings("GRANT USAGE ON DATABASE db TO ROLE r;")?;
    // The schema's USAGE through an inherited role (R inherits R2) counts.
    let inherited =
        findings("GRANT USAGE ON DATABASE db TO ROLE r; GRANT USAGE ON SCHEMA db.s TO ROLE r2;")?;
    let want = "warning[read-without-usage] 00_base.sql:1: role R reads DB.S.C but has no USAGE on SCHEMA DB.S; Snowflake refuses the read, Veil does not enforce USAGE";
    if none.is_empty() && schema == [want] && inherited.is_empty() {
        Ok(())
    } else {
        Err(format!("none: {none:?}\nschema: {schema:?}\ninherited: {inherited:?}").into())
    }
}

#[test]
fn alter_table_changes_several_columns_in_one_statement() -> Result<(), Failed> {
    let policies = "CREATE MASKING POLICY p1 AS (v STRING) RETURNS STRING -> 'one';
CREATE MASKING POLICY p2 AS (v STRING) RETURNS STRING -> 'two';
CREATE TAG t;
";
    expect_rows(
        &format!(
            "{policies}ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p1, COLUMN name SET MASKING POLICY p2 FORCE;"
        ),
        "SELECT email, name, ssn FROM c WHERE id = 1",
        &[&["one", "two", "111-11-1111"]],
    )?;
    // ALTER spelling, parenthesised, SET and UNSET mixed, tags among them.
    expect_rows(
        &format!(
            "{policies}ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p1, COLUMN name SET MASKING POLICY p2;
ALTER TABLE c ALTER (COLUMN email UNSET MASKING POLICY, ssn SET MASKING POLICY p1,
  COLUMN region SET TAG t = 'a', COLUMN name UNSET MASKING POLICY);"
        ),
        "SELECT email, name, ssn FROM c WHERE id = 1",
        &[&["alice.smith@example.com", "Alice Smith", "one"]],
    )?;
    // An error in a later change names that change's line and column.
    expect_error(
        &format!(
            "{policies}ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p1,\n    COLUMN name SET MASKING POLICY nope;"
        ),
        "SELECT 1",
        "10_test.sql:5:5: Masking policy 'DB.S.NOPE' does not exist or not authorized.",
    )
}

#[test]
fn role_inheritance_cycles_are_load_errors() -> Result<(), Failed> {
    // The base script has R inherit R2; this closes R2 → R3 → R → R2.
    expect_load_error(
        &manifest(""),
        "CREATE ROLE r3; GRANT ROLE r TO ROLE r3; GRANT ROLE r3 TO ROLE r2;",
        "10_test.sql:1:42: role cycle: R2 → R3 → R → R2 (each role inherits the next); remove one of these grants",
    )?;
    expect_load_error(
        &manifest(""),
        "GRANT ROLE r TO ROLE r;",
        "10_test.sql:1:1: role cycle: R → R (each role inherits the next)",
    )?;
    // In YAML roles alone.
    expect_load_error(
        &manifest("roles:\n  - {name: A, inherits: [B]}\n  - {name: B, inherits: [A]}\n"),
        "",
        "veil.yaml:15: role cycle: A → B → A (each role inherits the next)",
    )?;
    // A YAML role inheriting a DDL role, closed by a DDL grant.
    expect_load_error(
        &manifest("roles:\n  - {name: A, inherits: [R]}\n"),
        "GRANT ROLE a TO ROLE r2;",
        "10_test.sql:1:1: role cycle: R2 → A → R → R2",
    )
}
