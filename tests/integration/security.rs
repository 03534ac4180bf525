//! The security suite: attack queries, each asserting what must *not* come
//! back — raw values of masked columns, rows a row rule hides, other users'
//! entitlements — and that writes, settings and internal functions are
//! refused. BOB (EU analyst) is the attacker unless noted: he may see
//! customers 2, 3 and 7, with names hashed, e-mails and SSNs partly masked,
//! balances rounded and notes redacted.

use veil_engine::EnforcementMode;

use crate::common::{Failed, both_modes, contains_text, run, session};

/// Raw values of masked customer columns (CSV content) that BOB must never see.
const RAW: &[&str] = &[
    "111-11-1111",
    "222-22-2222",
    "333-33-3333",
    "444-44-4444",
    "555-55-5555",
    "666-66-6666",
    "777-77-7777",
    "alice.smith@",
    "bob.jones@",
    "chloe@",
    "gina@",
    "Alice Smith",
    "Bob Jones",
    "Chloé Martin",
    "Gina Rossi",
    "Dan Brown",
    "555-0102",
    "555-0103",
    "late payer",
    "vip customer",
    "754",
    "376",
];

/// Customer ids BOB may see.
const VISIBLE_IDS: &[&str] = &["2", "3", "7"];

#[derive(Clone, Copy)]
enum Expect {
    /// Runs; no raw value appears.
    NoRaw,
    /// Runs and returns no rows.
    Empty,
    /// Runs; first column holds only ids BOB may see.
    VisibleIds,
    /// Fails with an error containing this text.
    Error(&'static str),
    /// Runs without error (the query must not fail on hidden rows).
    RunsOk,
    /// Runs and returns exactly one value.
    Single(&'static str),
}

/// One attack: BOB runs `sql` in both enforcement modes and every result
/// must meet `expect`.
fn attack(sql: &str, expect: Expect) -> Result<(), Failed> {
    both_modes(|mode| check(sql, expect, mode))
}

/// Runs `sql` as BOB in `mode` and checks the result against `expect`; no
/// raw value may come back from any query that runs.
fn check(sql: &str, expect: Expect, mode: EnforcementMode) -> Result<(), Failed> {
    let bob = session("BOB", None, mode);
    let result = run(&bob, sql);
    match (expect, result) {
        (Expect::Error(text), Err(e)) => {
            if e.contains(text) {
                Ok(())
            } else {
                Err(format!("expected an error containing {text:?}, got {e:?}").into())
            }
        }
        (Expect::Error(_), Ok(rows)) => Err(format!("expected an error, got rows {rows:?}").into()),
        (_, Err(e)) => Err(format!("expected a result, got error {e}").into()),
        (expect, Ok(rows)) => {
            for raw in RAW {
                if contains_text(&rows, raw) {
                    return Err(format!("raw value {raw:?} came back in {rows:?}").into());
                }
            }
            match expect {
                Expect::Single(v) if rows != vec![vec![v.to_string()]] => {
                    Err(format!("expected [[{v}]], got {rows:?}").into())
                }
                Expect::Empty if !rows.is_empty() => {
                    Err(format!("expected no rows, got {rows:?}").into())
                }
                Expect::VisibleIds => {
                    for r in &rows {
                        if !VISIBLE_IDS.contains(&r[0].as_str()) {
                            return Err(format!("hidden row {:?} came back", r).into());
                        }
                    }
                    if rows.is_empty() {
                        return Err("expected BOB's rows, got none".into());
                    }
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }
}

#[test]
fn predicate_oracle_on_masked_column() -> Result<(), Failed> {
    attack(
        "SELECT id FROM customers WHERE ssn = '222-22-2222'",
        Expect::Empty,
    )
}

#[test]
fn like_oracle_on_masked_column() -> Result<(), Failed> {
    attack(
        "SELECT id FROM customers WHERE ssn LIKE '222%'",
        Expect::Empty,
    )
}

#[test]
fn join_oracle_on_masked_column() -> Result<(), Failed> {
    attack(
        "SELECT c.id FROM customers c JOIN (VALUES ('222-22-2222')) AS v(s) ON c.ssn = v.s",
        Expect::Empty,
    )
}

#[test]
fn group_by_masked_column() -> Result<(), Failed> {
    attack(
        "SELECT ssn, count(*) FROM customers GROUP BY ssn",
        Expect::NoRaw,
    )
}

#[test]
fn having_oracle() -> Result<(), Failed> {
    attack(
        "SELECT region FROM customers GROUP BY region HAVING max(ssn) = '222-22-2222'",
        Expect::Empty,
    )
}

#[test]
fn order_by_masked_column() -> Result<(), Failed> {
    attack(
        "SELECT name, email FROM customers ORDER BY ssn, name",
        Expect::NoRaw,
    )
}

#[test]
fn window_over_masked_column() -> Result<(), Failed> {
    attack(
        "SELECT id, ssn, row_number() OVER (ORDER BY ssn) FROM customers",
        Expect::NoRaw,
    )
}

#[test]
fn substr_wrapping() -> Result<(), Failed> {
    attack(
        "SELECT substr(ssn, 1, 11), substr(email, 1, 30) FROM customers",
        Expect::NoRaw,
    )
}

#[test]
fn concat_wrapping() -> Result<(), Failed> {
    attack(
        "SELECT concat(email, '|', name, '|', notes) FROM customers",
        Expect::NoRaw,
    )
}

#[test]
fn cast_wrapping() -> Result<(), Failed> {
    attack(
        "SELECT CAST(balance AS VARCHAR), CAST(ssn AS VARCHAR(50)) FROM customers",
        Expect::NoRaw,
    )
}

#[test]
fn coalesce_wrapping() -> Result<(), Failed> {
    attack(
        "SELECT coalesce(phone, ssn, 'x'), nullif(notes, 'x') FROM customers",
        Expect::NoRaw,
    )
}

#[test]
fn cte_over_protected_table() -> Result<(), Failed> {
    attack(
        "WITH x AS (SELECT * FROM customers) SELECT ssn, email, name FROM x",
        Expect::NoRaw,
    )
}

#[test]
fn cte_named_like_the_table_is_the_cte() -> Result<(), Failed> {
    attack(
        "WITH customers AS (SELECT 2 AS id) SELECT id FROM customers",
        Expect::VisibleIds,
    )
}

#[test]
fn cte_named_like_the_table_over_the_table() -> Result<(), Failed> {
    attack(
        "WITH customers AS (SELECT * FROM analytics.public.customers) SELECT id, ssn FROM customers",
        Expect::VisibleIds,
    )
}

#[test]
fn cte_named_like_the_table_reads_the_table_unqualified() -> Result<(), Failed> {
    attack(
        "WITH customers AS (SELECT * FROM customers) SELECT id, name, ssn FROM customers",
        Expect::VisibleIds,
    )
}

#[test]
fn earlier_cte_reads_the_table_a_later_cte_shadows() -> Result<(), Failed> {
    attack(
        "WITH a AS (SELECT * FROM customers), customers AS (SELECT 1 AS x) SELECT id, name, ssn FROM a",
        Expect::VisibleIds,
    )
}

#[test]
fn quoted_names() -> Result<(), Failed> {
    attack(
        "SELECT \"ID\", \"SSN\", \"EMAIL\" FROM \"CUSTOMERS\"",
        Expect::VisibleIds,
    )
}

#[test]
fn mixed_case_names() -> Result<(), Failed> {
    attack("SELECT Id, SsN, eMaIl FROM CuStOmErS", Expect::VisibleIds)
}

#[test]
fn fully_qualified_name() -> Result<(), Failed> {
    attack(
        "SELECT id, ssn FROM analytics.public.customers",
        Expect::VisibleIds,
    )
}

#[test]
fn quoted_lower_case_name_is_another_table() -> Result<(), Failed> {
    attack(
        "SELECT * FROM \"customers\"",
        Expect::Error("Object 'ANALYTICS.PUBLIC.\"customers\"' does not exist or not authorized."),
    )
}

#[test]
fn union_branches() -> Result<(), Failed> {
    attack(
        "SELECT id, ssn FROM customers UNION ALL SELECT id, ssn FROM analytics.public.customers",
        Expect::VisibleIds,
    )
}

#[test]
fn self_join() -> Result<(), Failed> {
    attack(
        "SELECT a.id, a.ssn, b.email FROM customers a JOIN customers b ON a.id = b.id",
        Expect::VisibleIds,
    )
}

#[test]
fn scalar_subquery_in_select() -> Result<(), Failed> {
    attack(
        "SELECT (SELECT max(ssn) FROM customers), (SELECT min(name) FROM customers)",
        Expect::NoRaw,
    )
}

#[test]
fn in_subquery_oracle() -> Result<(), Failed> {
    attack(
        "SELECT order_id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE ssn = '222-22-2222')",
        Expect::Empty,
    )
}

#[test]
fn exists_on_hidden_row() -> Result<(), Failed> {
    attack(
        "SELECT id FROM customers WHERE EXISTS (SELECT 1 FROM customers d WHERE d.id = 1)",
        Expect::Empty,
    )
}

#[test]
fn select_star_exclude() -> Result<(), Failed> {
    attack(
        "SELECT * EXCLUDE (notes) FROM customers",
        Expect::VisibleIds,
    )
}

#[test]
fn aggregate_over_hidden_rows() -> Result<(), Failed> {
    attack(
        "SELECT max(id) FROM customers WHERE id > 7",
        Expect::Single("NULL"),
    )
}

#[test]
fn count_sees_only_visible_rows() -> Result<(), Failed> {
    attack("SELECT count(*) FROM customers", Expect::Single("3"))
}

#[test]
fn hidden_rows_do_not_count() -> Result<(), Failed> {
    attack(
        "SELECT count(*) FROM customers HAVING count(*) > 3",
        Expect::Empty,
    )
}

#[test]
fn limit_stays_above_row_rule() -> Result<(), Failed> {
    attack("SELECT id FROM customers LIMIT 2", Expect::VisibleIds)
}

#[test]
fn pushed_predicate_cannot_reach_hidden_rows() -> Result<(), Failed> {
    attack(
        "SELECT id FROM customers WHERE region = 'US'",
        Expect::Empty,
    )
}

#[test]
fn divide_by_zero_only_on_hidden_row() -> Result<(), Failed> {
    attack(
        "SELECT count(*) FROM customers WHERE 1 / (id - 1) > 0",
        Expect::RunsOk,
    )
}

#[test]
fn divide_by_zero_on_hidden_row_in_join() -> Result<(), Failed> {
    attack(
        "SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE 1 / (c.id - 4) > 0",
        Expect::RunsOk,
    )
}

#[test]
fn internal_hash_function_is_refused() -> Result<(), Failed> {
    attack(
        "SELECT veil_mask_hash('222-22-2222', 'ANALYTICS.PUBLIC.CUSTOMERS', 'VARCHAR(20)')",
        Expect::Error("internal to Veil"),
    )
}

#[test]
fn internal_function_in_where_is_refused() -> Result<(), Failed> {
    attack(
        "SELECT id FROM customers WHERE name = VEIL_MASK_HASH('Bob Jones', 'ANALYTICS.PUBLIC.CUSTOMERS', 'VARCHAR(20)')",
        Expect::Error("internal to Veil"),
    )
}

#[test]
fn internal_purpose_function_is_refused() -> Result<(), Failed> {
    attack(
        "SELECT veil_current_purpose()",
        Expect::Error("internal to Veil"),
    )
}

#[test]
fn another_users_profile_row() -> Result<(), Failed> {
    attack(
        "SELECT * FROM veil.system.user_profile WHERE user_name = 'CAROL'",
        Expect::Empty,
    )
}

#[test]
fn identity_cannot_be_changed_in_sql() -> Result<(), Failed> {
    attack(
        "SELECT id FROM customers WHERE current_user() = 'CAROL'",
        Expect::Empty,
    )
}

#[test]
fn information_schema_is_not_reachable() -> Result<(), Failed> {
    attack(
        "SELECT * FROM information_schema.tables",
        Expect::Error("does not exist or not authorized"),
    )
}

#[test]
fn raw_internal_catalog_is_not_reachable() -> Result<(), Failed> {
    attack(
        "SELECT * FROM veil.system.audit",
        Expect::Error("does not exist or not authorized"),
    )
}

#[test]
fn create_table_as_is_refused() -> Result<(), Failed> {
    attack(
        "CREATE TABLE stolen AS SELECT * FROM customers",
        Expect::Error("CREATE TABLE statements are not allowed"),
    )
}

#[test]
fn insert_is_refused() -> Result<(), Failed> {
    attack(
        "INSERT INTO customers (id) VALUES (99)",
        Expect::Error("INSERT statements are not allowed"),
    )
}

#[test]
fn update_is_refused() -> Result<(), Failed> {
    attack(
        "UPDATE customers SET region = 'EU'",
        Expect::Error("UPDATE statements are not allowed"),
    )
}

#[test]
fn delete_is_refused() -> Result<(), Failed> {
    attack(
        "DELETE FROM customers",
        Expect::Error("DELETE statements are not allowed"),
    )
}

#[test]
fn set_is_refused() -> Result<(), Failed> {
    attack(
        "SET datafusion.sql_parser.enable_ident_normalization = true",
        Expect::Error("SET statements are not allowed"),
    )
}

#[test]
fn copy_is_refused() -> Result<(), Failed> {
    attack(
        "COPY INTO @stage FROM customers",
        Expect::Error("COPY statements are not allowed"),
    )
}

#[test]
fn create_function_is_refused() -> Result<(), Failed> {
    attack(
        "CREATE FUNCTION f() RETURNS VARCHAR AS 'select 1'",
        Expect::Error("CREATE FUNCTION statements are not allowed"),
    )
}

#[test]
fn create_view_is_refused() -> Result<(), Failed> {
    attack(
        "CREATE VIEW v AS SELECT * FROM customers",
        Expect::Error("CREATE VIEW statements are not allowed"),
    )
}

#[test]
fn drop_is_refused() -> Result<(), Failed> {
    attack(
        "DROP TABLE customers",
        Expect::Error("DROP TABLE statements are not allowed"),
    )
}

#[test]
fn two_statements_are_refused() -> Result<(), Failed> {
    attack(
        "SELECT 1; DROP TABLE customers",
        Expect::Error("one statement at a time"),
    )
}

#[test]
fn table_function_is_refused() -> Result<(), Failed> {
    attack(
        "SELECT * FROM generate_series(1, 3)",
        Expect::Error("Table function"),
    )
}
