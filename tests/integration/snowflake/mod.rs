//! The Snowflake-native layer: workspace DDL scripts and Snowflake's rules
//! for masking and row access policies, one test per rule with its error
//! text, and the DDL-only workspace's per-role golden tests in both modes.
//!
//! The tests live in one file per concern; this one holds the helpers
//! they share and lists their trials.

mod ddl_rules;
mod grants_and_roles;
mod views;

use self::ddl_rules::*;
use self::grants_and_roles::*;
use self::views::*;

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
