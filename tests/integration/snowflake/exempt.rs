//! `EXEMPT_OTHER_POLICIES` (Snowflake: "whether a row access policy or
//! conditional masking policy can reference a column that is already
//! protected by this masking policy"): a conditional masking policy's
//! `USING` columns and a row access policy's `ON` columns may name a masked
//! column only when its masking policy is exempting, and then read its raw
//! value. Errors name the
//! script's file and line, the policies, the table and the column, in
//! either order of the `ALTER` statements.

use veil_engine::{EnforcementMode, SessionOptions};

use super::*;
use crate::common::both_modes;

const HIDE_REGION: &str = "CREATE MASKING POLICY hide_region AS (v STRING) RETURNS STRING -> '***'";
const BY_REGION: &str = "CREATE MASKING POLICY by_region AS (v STRING, r STRING) RETURNS STRING ->
  CASE WHEN r = 'EU' THEN v ELSE 'hidden' END;";
const MASK_REGION: &str = "ALTER TABLE c MODIFY COLUMN region SET MASKING POLICY hide_region;";
const MASK_EMAIL: &str =
    "ALTER TABLE c MODIFY COLUMN email SET MASKING POLICY by_region USING (email, region);";

/// Rows of `sql` as U in `mode` on a workspace running `script`.
fn rows_in(script: &str, sql: &str, mode: EnforcementMode) -> Result<Vec<Vec<String>>, Failed> {
    let engine = load_with(&manifest(""), script)?;
    let session = engine.session_with(SessionOptions {
        mode: Some(mode),
        ..SessionOptions::user("u")
    })?;
    Ok(run(&session, sql)?)
}

#[test]
fn a_conditional_mask_may_not_read_a_column_masked_without_exemption() -> Result<(), Failed> {
    let refusal = "conditional masking policy DB.S.BY_REGION on column EMAIL of table DB.S.C references column REGION, which masking policy DB.S.HIDE_REGION protects without EXEMPT_OTHER_POLICIES = TRUE";
    // The conditional policy second: its ALTER (line 5) fails.
    expect_load_error(
        &manifest(""),
        &format!("{HIDE_REGION};\n{BY_REGION}\n{MASK_REGION}\n{MASK_EMAIL}"),
        &format!("10_test.sql:5:1: {refusal}"),
    )?;
    // The conditional policy first: masking the column it reads (line 5) fails.
    expect_load_error(
        &manifest(""),
        &format!("{HIDE_REGION};\n{BY_REGION}\n{MASK_EMAIL}\n{MASK_REGION}"),
        &format!("10_test.sql:5:1: {refusal}"),
    )
}

#[test]
fn an_exempt_mask_lets_a_conditional_mask_read_the_raw_value() -> Result<(), Failed> {
    let script = format!(
        "{HIDE_REGION} EXEMPT_OTHER_POLICIES = TRUE;\n{BY_REGION}\n{MASK_REGION}\n{MASK_EMAIL}"
    );
    both_modes(|mode| {
        let got = rows_in(
            &script,
            "SELECT id, email, region FROM c WHERE id IN (1, 2) ORDER BY id",
            mode,
        )?;
        // REGION shows masked, yet BY_REGION read the raw US / EU.
        let want = rows(&[
            &["1", "hidden", "***"],
            &["2", "bob.jones@example.org", "***"],
        ]);
        if got == want {
            Ok(())
        } else {
            Err(format!("want {want:?}\ngot  {got:?}").into())
        }
    })
}

#[test]
fn a_row_access_policy_may_read_only_an_exempt_masked_column() -> Result<(), Failed> {
    let rap = "CREATE ROW ACCESS POLICY eu_rows AS (r STRING) RETURNS BOOLEAN -> r = 'EU';";
    let add = "ALTER TABLE c ADD ROW ACCESS POLICY eu_rows ON (region);";
    let refusal = "row access policy DB.S.EU_ROWS of table DB.S.C references column REGION, which masking policy DB.S.HIDE_REGION protects without EXEMPT_OTHER_POLICIES = TRUE";
    expect_load_error(
        &manifest(""),
        &format!("{HIDE_REGION};\n{rap}\n{MASK_REGION}\n{add}"),
        &format!("10_test.sql:4:1: {refusal}"),
    )?;
    expect_load_error(
        &manifest(""),
        &format!("{HIDE_REGION};\n{rap}\n{add}\n{MASK_REGION}"),
        &format!("10_test.sql:4:1: {refusal}"),
    )?;
    let allowed =
        format!("{HIDE_REGION} EXEMPT_OTHER_POLICIES = TRUE;\n{rap}\n{MASK_REGION}\n{add}");
    both_modes(|mode| {
        let got = rows_in(&allowed, "SELECT id, region FROM c ORDER BY id", mode)?;
        // The EU rows (2, 3, 7), found on the raw region, shown masked.
        let want = rows(&[&["2", "***"], &["3", "***"], &["7", "***"]]);
        if got == want {
            Ok(())
        } else {
            Err(format!("want {want:?}\ngot  {got:?}").into())
        }
    })
}

#[test]
fn one_exempting_policy_serves_every_reference() -> Result<(), Failed> {
    // Two conditional policies and a row access policy all read REGION,
    // which one exempting policy masks: each reads the raw value.
    let script = format!(
        "{HIDE_REGION} EXEMPT_OTHER_POLICIES = TRUE;
{BY_REGION}
CREATE MASKING POLICY name_by_region AS (v STRING, r STRING) RETURNS STRING -> IFF(r = 'US', v, 'anon');
CREATE ROW ACCESS POLICY not_apac AS (r STRING) RETURNS BOOLEAN -> r <> 'APAC';
{MASK_REGION}
{MASK_EMAIL}
ALTER TABLE c MODIFY COLUMN name SET MASKING POLICY name_by_region USING (name, region);
ALTER TABLE c ADD ROW ACCESS POLICY not_apac ON (region);"
    );
    both_modes(|mode| {
        let got = rows_in(
            &script,
            "SELECT id, name, email, region FROM c WHERE id <= 5 ORDER BY id",
            mode,
        )?;
        let want = rows(&[
            &["1", "Alice Smith", "hidden", "***"],
            &["2", "anon", "bob.jones@example.org", "***"],
            &["3", "anon", "chloe@example.fr", "***"],
            &["4", "Dan Brown", "hidden", "***"],
        ]);
        if got == want {
            Ok(())
        } else {
            Err(format!("want {want:?}\ngot  {got:?}").into())
        }
    })
}
