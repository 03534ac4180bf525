//! Snowflake's rules for masking and row access policies, one test per
//! rule with its error text, and DDL errors with file, line and column.

use super::*;

#[test]
fn masking_policy_returns_its_first_arguments_type() -> Result<(), Failed> {
    expect_error(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS NUMBER -> 0;",
        "SELECT 1",
        "10_test.sql:1:1: Masking policy DB.S.P returns NUMBER but its first argument V is VARCHAR",
    )
}

#[test]
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

#[test]
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

#[test]
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

#[test]
fn policy_and_column_types_must_match() -> Result<(), Failed> {
    expect_error(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING -> v;
ALTER TABLE c MODIFY COLUMN balance SET MASKING POLICY p;",
        "SELECT 1",
        "Specified column DB.S.C.BALANCE is NUMBER(3,0) but masking policy DB.S.P masks VARCHAR: the types must match.",
    )
}

#[test]
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

#[test]
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

#[test]
fn row_access_runs_before_masking() -> Result<(), Failed> {
    expect_rows(
        // The row access policy reads a masked column: Snowflake needs the
        // mask to be exempting (tests in snowflake/exempt.rs).
        "CREATE MASKING POLICY hide AS (v STRING) RETURNS STRING -> 'X' EXEMPT_OTHER_POLICIES = TRUE;
ALTER TABLE c MODIFY COLUMN region SET MASKING POLICY hide;
CREATE ROW ACCESS POLICY eu AS (r VARCHAR) RETURNS BOOLEAN -> r = 'EU';
ALTER TABLE c ADD ROW ACCESS POLICY eu ON (region);",
        "SELECT id, region FROM c ORDER BY id",
        &[&["2", "X"], &["3", "X"], &["7", "X"]],
    )
}

#[test]
fn roles_in_bodies_follow_the_hierarchy() -> Result<(), Failed> {
    expect_rows(
        "CREATE MASKING POLICY p AS (v STRING) RETURNS STRING ->
  IFF(IS_ROLE_IN_SESSION('r2') AND CURRENT_ROLE() = 'R' AND NOT IS_ROLE_IN_SESSION('NOPE'), v, 'masked');
ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY p;",
        EMAILS_OF_1_2,
        &[&["alice.smith@example.com"], &["bob.jones@example.org"]],
    )
}

#[test]
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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

#[test]
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
