//! The Snowflake-native layer: workspace DDL scripts and Snowflake's rules
//! for masking and row access policies, one test per rule with its error
//! text, and the DDL-only workspace's per-role golden tests in both modes.

use libtest_mimic::{Failed, Trial};
use veil_engine::EnforcementMode;
use veil_engine::tools::test_runner as policy_test;

use crate::common::{load, run, runtime, temp_workspace, testdata};

type TestFn = fn() -> Result<(), Failed>;

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

fn masking_policy_returns_its_first_arguments_type() -> Result<(), Failed> {
    expect_error(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS NUMBER -> 0;",
        "SELECT 1",
        "10_test.sql:1:1: Masking policy DB.S.P returns NUMBER but its first argument V is VARCHAR",
    )
}

fn policy_bodies_use_only_their_arguments() -> Result<(), Failed> {
    expect_error(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING -> IFF(region = 'EU', v, '***');",
        "SELECT 1",
        "10_test.sql:1:1: invalid identifier 'REGION': the body of masking policy DB.S.P may use only its arguments (V)",
    )?;
    expect_error(
        "CREATE ROW ACCESS POLICY p AS (r VARCHAR) RETURNS BOOLEAN -> r = 'EU' AND c.balance > 0;",
        "SELECT 1",
        "invalid identifier 'C.BALANCE': the body of row access policy DB.S.P may use only its arguments (R)",
    )
}

fn a_second_masking_policy_needs_force() -> Result<(), Failed> {
    let two = "CREATE MASKING POLICY p1 AS (v STRING) RETURNS STRING -> 'one';
CREATE MASKING POLICY p2 AS (v STRING) RETURNS STRING -> 'two';
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p1;
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p2";
    expect_error(
        two,
        EMAILS_OF_1_2,
        "10_test.sql:4:1: 003529 (42601): SQL compilation error: Specified column already attached to another masking policy. A column cannot be attached to multiple masking policies. Please drop the current association in order to attach a new masking policy.",
    )?;
    expect_rows(
        &format!("{two} FORCE;"),
        EMAILS_OF_1_2,
        &[&["two"], &["two"]],
    )?;
    expect_rows(
        &format!("{two} FORCE; ALTER TABLE c MODIFY COLUMN email UNSET MASKING POLICY;"),
        EMAILS_OF_1_2,
        &[&["alice.smith@example.com"], &["bob.jones@example.org"]],
    )
}

fn using_binds_conditional_columns() -> Result<(), Failed> {
    let script = "CREATE MASKING POLICY by_region AS (v STRING, r STRING) RETURNS STRING ->
  CASE WHEN r = 'EU' THEN v ELSE '***' END;
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY by_region USING (email, region);";
    expect_rows(
        script,
        EMAILS_OF_1_2,
        &[&["***"], &["bob.jones@example.org"]],
    )?;
    expect_error(
        "CREATE MASKING POLICY by_region AS (v STRING, r STRING) RETURNS STRING -> v;
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY by_region USING (region, email);",
        "SELECT 1",
        "Masking policy DB.S.BY_REGION takes 2 argument(s): USING must list the masked column EMAIL first, then 1 conditional column(s).",
    )
}

fn policy_and_column_types_must_match() -> Result<(), Failed> {
    expect_error(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING -> v;
ALTER TABLE c MODIFY COLUMN balance SET MASKING POLICY p;",
        "SELECT 1",
        "Specified column DB.S.C.BALANCE is NUMBER(3,0) but masking policy DB.S.P masks VARCHAR: the types must match.",
    )
}

fn one_row_access_policy_per_table() -> Result<(), Failed> {
    expect_error(
        "CREATE ROW ACCESS POLICY a AS (r VARCHAR) RETURNS BOOLEAN -> TRUE;
CREATE ROW ACCESS POLICY b AS (r VARCHAR) RETURNS BOOLEAN -> TRUE;
ALTER TABLE c ADD ROW ACCESS POLICY a ON (region);
ALTER TABLE c ADD ROW ACCESS POLICY b ON (region);",
        "SELECT 1",
        "10_test.sql:4:1: Object 'DB.S.C' already has a ROW_ACCESS_POLICY (DB.S.A). Only one ROW_ACCESS_POLICY is allowed at a time.",
    )
}

fn row_access_binds_by_position_and_null_hides() -> Result<(), Failed> {
    // a = REGION, b = BALANCE; NULL (balance > 500 outside EU) hides like FALSE.
    expect_rows(
        "CREATE ROW ACCESS POLICY p AS (a VARCHAR, b NUMBER) RETURNS BOOLEAN ->
  CASE WHEN a = 'EU' THEN TRUE WHEN b > 500 THEN NULL ELSE b < 100 END;
ALTER TABLE c ADD ROW ACCESS POLICY p ON (region, balance);",
        "SELECT id FROM c ORDER BY id",
        &[&["2"], &["3"], &["5"], &["6"], &["7"], &["10"]],
    )
}

fn row_access_runs_before_masking() -> Result<(), Failed> {
    expect_rows(
        "CREATE MASKING POLICY hide AS (v STRING) RETURNS STRING -> 'X';
ALTER TABLE c MODIFY COLUMN region SET MASKING POLICY hide;
CREATE ROW ACCESS POLICY eu AS (r VARCHAR) RETURNS BOOLEAN -> r = 'EU';
ALTER TABLE c ADD ROW ACCESS POLICY eu ON (region);",
        "SELECT id, region FROM c ORDER BY id",
        &[&["2", "X"], &["3", "X"], &["7", "X"]],
    )
}

fn roles_in_bodies_follow_the_hierarchy() -> Result<(), Failed> {
    expect_rows(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING ->
  IFF(IS_ROLE_IN_SESSION('r2') AND CURRENT_ROLE() = 'R' AND NOT IS_ROLE_IN_SESSION('NOPE'), v, 'masked');
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p;",
        EMAILS_OF_1_2,
        &[&["alice.smith@example.com"], &["bob.jones@example.org"]],
    )
}

fn sql_functions_expand_in_bodies() -> Result<(), Failed> {
    expect_rows(
        "CREATE FUNCTION domain_of(e VARCHAR) RETURNS VARCHAR AS 'split_part(e, ''@'', 2)';
CREATE MEMOIZABLE FUNCTION eu_ids() RETURNS ARRAY AS 'SELECT array_agg(id) FROM c WHERE region = ''EU''';
CREATE MASKING POLICY p AS (v STRING, i NUMBER) RETURNS STRING ->
  IFF(ARRAY_CONTAINS(i, eu_ids()), v, '*@' || domain_of(v));
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p USING (email, id);",
        EMAILS_OF_1_2,
        &[&["*@example.com"], &["bob.jones@example.org"]],
    )
}

fn tag_takes_one_policy_per_data_type() -> Result<(), Failed> {
    let two = "CREATE TAG pii;
CREATE MASKING POLICY s1 AS (v STRING) RETURNS STRING -> 'one';
CREATE MASKING POLICY s2 AS (v STRING) RETURNS STRING -> 'two';
ALTER TAG pii SET MASKING POLICY s1;
ALTER TAG pii SET MASKING POLICY s2";
    expect_error(
        &format!("{two};"),
        "SELECT 1",
        "10_test.sql:5:1: Tag PII already has masking policy DB.S.S1 for data type VARCHAR: a tag takes one masking policy per data type (use FORCE to replace it).",
    )?;
    expect_rows(
        &format!("{two} FORCE; ALTER TABLE c MODIFY COLUMN email SET TAG pii = 'email';"),
        EMAILS_OF_1_2,
        &[&["two"], &["two"]],
    )
}

fn tag_policies_apply_to_their_type_only() -> Result<(), Failed> {
    expect_rows(
        "CREATE TAG pii;
CREATE MASKING POLICY s AS (v STRING) RETURNS STRING -> '<' || SYSTEM$GET_TAG_ON_CURRENT_COLUMN('pii') || '>';
ALTER TAG pii SET MASKING POLICY s;
ALTER TABLE c MODIFY COLUMN name SET TAG pii = 'name';
ALTER TABLE c MODIFY COLUMN balance SET TAG pii = 'money';",
        "SELECT name, balance FROM c WHERE id = 1",
        &[&["<name>", "994"]],
    )
}

fn a_direct_policy_beats_a_tag_policy() -> Result<(), Failed> {
    expect_rows(
        "CREATE TAG pii;
CREATE MASKING POLICY by_tag AS (v STRING) RETURNS STRING -> 'tag';
CREATE MASKING POLICY direct AS (v STRING) RETURNS STRING -> 'direct';
ALTER TAG pii SET MASKING POLICY by_tag;
ALTER TABLE c MODIFY COLUMN email SET TAG pii = 'x';
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY direct;
ALTER TABLE c MODIFY COLUMN name SET TAG pii = 'x';",
        "SELECT email, name FROM c WHERE id = 1",
        &[&["direct", "tag"]],
    )
}

fn two_tag_policies_on_a_column_fail_its_queries() -> Result<(), Failed> {
    expect_error(
        "CREATE TAG a; CREATE TAG b;
CREATE MASKING POLICY pa AS (v STRING) RETURNS STRING -> 'a';
CREATE MASKING POLICY pb AS (v STRING) RETURNS STRING -> 'b';
ALTER TAG a SET MASKING POLICY pa;
ALTER TAG b SET MASKING POLICY pb;
ALTER TABLE c MODIFY COLUMN email SET TAG a = '1', b = '2';",
        "SELECT id FROM c",
        "column DB.S.C.EMAIL is reached by more than one masking policy through its tags",
    )
}

fn both_layers_on_one_column_is_a_load_error() -> Result<(), Failed> {
    let immuta = "policies:
  - name: hash-email
    type: masking
    on: {columns: [DB.S.C.EMAIL]}
    mask: hash
";
    match query_with(
        &manifest(immuta),
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING -> 'x';
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p;",
        "SELECT 1",
    ) {
        Err(e)
            if e.contains(
                "column DB.S.C.EMAIL is masked both by Snowflake masking policy DB.S.P",
            ) && e.contains("10_test.sql:2")
                && e.contains("by policy 'hash-email'") =>
        {
            Ok(())
        }
        other => Err(format!("{other:?}").into()),
    }
}

fn ddl_errors_name_file_line_and_column() -> Result<(), Failed> {
    expect_error(
        "CREATE ROLE x;\n\n    DROP TABLE c;",
        "SELECT 1",
        "10_test.sql:3:5: DROP is not a statement workspace DDL scripts support",
    )?;
    expect_error(
        "ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY nope;",
        "SELECT 1",
        "10_test.sql:1:1: Masking policy 'DB.S.NOPE' does not exist or not authorized.",
    )?;
    expect_error(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING -> CASE WHEN THEN END;",
        "SELECT 1",
        "10_test.sql:1:62: unexpected WHEN after the statement",
    )
}

fn ddl_syntax_errors_point_at_the_offending_token() -> Result<(), Failed> {
    expect_error(
        "GRANT SELECT ON TABLE c TO\n  USER u;",
        "SELECT 1",
        "10_test.sql:2:3: expected ROLE, found USER",
    )?;
    expect_error(
        "CREATE ROLE a\nCREATE ROLE b;",
        "SELECT 1",
        "10_test.sql:2:1: unexpected CREATE after the statement (missing ';'?)",
    )?;
    // sqlparser's own errors, located in the script without its prefix.
    expect_error(
        "CREATE ROW ACCESS POLICY p AS (r VARCHAR) RETURNS BOOLEAN ->\n  r = 'EU' AND (r <> ;",
        "SELECT 1",
        "10_test.sql:2:22: Expected: an expression, found: ;",
    )?;
    expect_error(
        "CREATE ROW ACCESS POLICY p AS (r VARCHAR)\n  RETURNS VARCHAR -> r;",
        "SELECT 1",
        "10_test.sql:2:11: a row access policy returns BOOLEAN, not VARCHAR",
    )?;
    // A function body is parsed on its own; its errors are located in the script.
    expect_error(
        "CREATE FUNCTION f(e VARCHAR) RETURNS VARCHAR AS 'split_part(e,, 2)';",
        "SELECT 1",
        "10_test.sql:1:63: the function body does not parse: Expected: an expression, found: ,",
    )?;
    expect_error(
        "CREATE FUNCTION f(e VARCHAR) RETURNS VARCHAR AS $$\n  upper(e) ||\n$$;",
        "SELECT 1",
        "10_test.sql:3:1: the function body does not parse: Expected: an expression, found: EOF",
    )?;
    expect_error(
        "CREATE TAG t;\nCREATE TAG u COMMENT = 'no end;",
        "SELECT 1",
        "10_test.sql:2:24: Unterminated string literal",
    )
}

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

fn admin(sql: &str) -> Result<Vec<Vec<String>>, String> {
    let engine = crate::common::engine("snowflake");
    runtime()
        .block_on(engine.admin_sql(sql))
        .map(|b| crate::common::rows(&b))
        .map_err(|e| e.to_string())
}

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

pub(crate) fn trials() -> Vec<Trial> {
    let tests: Vec<(&str, TestFn)> = vec![
        (
            "masking_policy_returns_its_first_arguments_type",
            masking_policy_returns_its_first_arguments_type,
        ),
        (
            "policy_bodies_use_only_their_arguments",
            policy_bodies_use_only_their_arguments,
        ),
        (
            "a_second_masking_policy_needs_force",
            a_second_masking_policy_needs_force,
        ),
        (
            "using_binds_conditional_columns",
            using_binds_conditional_columns,
        ),
        (
            "policy_and_column_types_must_match",
            policy_and_column_types_must_match,
        ),
        (
            "one_row_access_policy_per_table",
            one_row_access_policy_per_table,
        ),
        (
            "row_access_binds_by_position_and_null_hides",
            row_access_binds_by_position_and_null_hides,
        ),
        (
            "row_access_runs_before_masking",
            row_access_runs_before_masking,
        ),
        (
            "roles_in_bodies_follow_the_hierarchy",
            roles_in_bodies_follow_the_hierarchy,
        ),
        (
            "sql_functions_expand_in_bodies",
            sql_functions_expand_in_bodies,
        ),
        (
            "tag_takes_one_policy_per_data_type",
            tag_takes_one_policy_per_data_type,
        ),
        (
            "tag_policies_apply_to_their_type_only",
            tag_policies_apply_to_their_type_only,
        ),
        (
            "a_direct_policy_beats_a_tag_policy",
            a_direct_policy_beats_a_tag_policy,
        ),
        (
            "two_tag_policies_on_a_column_fail_its_queries",
            two_tag_policies_on_a_column_fail_its_queries,
        ),
        (
            "both_layers_on_one_column_is_a_load_error",
            both_layers_on_one_column_is_a_load_error,
        ),
        (
            "ddl_errors_name_file_line_and_column",
            ddl_errors_name_file_line_and_column,
        ),
        (
            "ddl_syntax_errors_point_at_the_offending_token",
            ddl_syntax_errors_point_at_the_offending_token,
        ),
        (
            "yaml_users_hold_roles_ddl_scripts_create",
            yaml_users_hold_roles_ddl_scripts_create,
        ),
        (
            "usage_and_apply_grants_are_recorded",
            usage_and_apply_grants_are_recorded,
        ),
        (
            "lint_reports_reads_without_usage",
            lint_reports_reads_without_usage,
        ),
        (
            "lint_counts_tag_masking_policies_as_targeting_the_tag",
            lint_counts_tag_masking_policies_as_targeting_the_tag,
        ),
        (
            "alter_table_changes_several_columns_in_one_statement",
            alter_table_changes_several_columns_in_one_statement,
        ),
        (
            "role_inheritance_cycles_are_load_errors",
            role_inheritance_cycles_are_load_errors,
        ),
        (
            "ddl_workspace_per_role_golden",
            ddl_workspace_per_role_golden,
        ),
        (
            "views_read_base_tables_through_the_users_policies",
            views_read_base_tables_through_the_users_policies,
        ),
        (
            "ddl_workspaces_take_changes_as_versions",
            ddl_workspaces_take_changes_as_versions,
        ),
        (
            "views_keep_user_predicates_above_them",
            views_keep_user_predicates_above_them,
        ),
        (
            "replacing_a_role_or_view_revokes_its_grants",
            replacing_a_role_or_view_revokes_its_grants,
        ),
        (
            "policy_context_simulates_a_principal",
            policy_context_simulates_a_principal,
        ),
        (
            "administrators_see_policies_and_references",
            administrators_see_policies_and_references,
        ),
    ];
    tests
        .into_iter()
        .map(|(name, f)| Trial::test(format!("snowflake::{name}"), f))
        .collect()
}
