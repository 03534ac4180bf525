//! The security suite: attack queries, each asserting what must *not* come
//! back — raw values of masked columns, rows a row rule hides, other users'
//! entitlements — and that writes, settings and internal functions are
//! refused. BOB (EU analyst) is the attacker unless noted: he may see
//! customers 2, 3 and 7, with names hashed, e-mails and SSNs partly masked,
//! balances rounded and notes redacted.

use veil_engine::EnforcementMode;

use crate::common::{Failed, both_modes, run, session};

#[path = "../shared/leak_battery.rs"]
pub(crate) mod leak_battery;

use leak_battery::{ATTACKS, judge};

/// The attack `name` of the leak battery: BOB runs its SQL in both
/// enforcement modes and every answer must meet its expectation.
fn attack(name: &str) -> Result<(), Failed> {
    let (sql, expect) = ATTACKS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, sql, expect)| (*sql, *expect))
        .ok_or_else(|| format!("no attack named {name} in the leak battery"))?;
    both_modes(|mode| check(sql, expect, mode))
}

/// Runs `sql` as BOB in `mode` and judges the answer.
fn check(sql: &str, expect: leak_battery::Expect, mode: EnforcementMode) -> Result<(), Failed> {
    let bob = session("BOB", None, mode);
    let answer = run(&bob, sql).map(|rows| {
        rows.into_iter()
            .map(|r| r.into_iter().map(|v| (v != "NULL").then_some(v)).collect())
            .collect()
    });
    judge(answer, expect).map_err(|e| format!("{sql}: {e}").into())
}

/// One test per attack, named as the attack.
macro_rules! attacks {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() -> Result<(), Failed> {
                attack(stringify!($name))
            }
        )*

        /// Every attack of the shared battery has its test here.
        #[test]
        fn every_attack_of_the_battery_has_a_test() {
            let tested = [$(stringify!($name)),*];
            let missing: Vec<&str> = ATTACKS
                .iter()
                .map(|(n, _, _)| *n)
                .filter(|n| !tested.contains(n))
                .collect();
            assert!(missing.is_empty(), "attacks without a test: {missing:?}");
        }
    };
}

attacks!(
    predicate_oracle_on_masked_column,
    like_oracle_on_masked_column,
    join_oracle_on_masked_column,
    group_by_masked_column,
    having_oracle,
    order_by_masked_column,
    window_over_masked_column,
    substr_wrapping,
    concat_wrapping,
    cast_wrapping,
    coalesce_wrapping,
    cte_over_protected_table,
    cte_named_like_the_table_is_the_cte,
    cte_named_like_the_table_over_the_table,
    cte_named_like_the_table_reads_the_table_unqualified,
    earlier_cte_reads_the_table_a_later_cte_shadows,
    quoted_names,
    mixed_case_names,
    fully_qualified_name,
    quoted_lower_case_name_is_another_table,
    union_branches,
    self_join,
    scalar_subquery_in_select,
    in_subquery_oracle,
    exists_on_hidden_row,
    select_star_exclude,
    aggregate_over_hidden_rows,
    count_sees_only_visible_rows,
    hidden_rows_do_not_count,
    limit_stays_above_row_rule,
    pushed_predicate_cannot_reach_hidden_rows,
    divide_by_zero_only_on_hidden_row,
    divide_by_zero_on_hidden_row_in_join,
    internal_hash_function_is_refused,
    internal_function_in_where_is_refused,
    internal_encryption_function_is_refused,
    veil_unmask_of_masked_columns_is_null,
    internal_purpose_function_is_refused,
    another_users_profile_row,
    identity_cannot_be_changed_in_sql,
    information_schema_is_not_reachable,
    raw_internal_catalog_is_not_reachable,
    create_table_as_is_refused,
    insert_is_refused,
    update_is_refused,
    delete_is_refused,
    set_is_refused,
    copy_is_refused,
    create_function_is_refused,
    create_view_is_refused,
    drop_is_refused,
    two_statements_are_refused,
    table_function_is_refused,
);
