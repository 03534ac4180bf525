//! Veil's leak battery: the attacks BOB (EU analyst: customers 2, 3 and 7,
//! names hashed, e-mails and SSNs partly masked, balances rounded, notes
//! redacted) runs against the sample workspace, each with what must *not*
//! come back. One list for every way in: the library suite
//! (`tests/integration/security.rs`, both enforcement modes), the
//! PostgreSQL wire and Snowflake's connector protocol
//! (`serve/tests/wire/`). Included with `#[path]`; it depends on nothing.

/// Raw values of masked customer columns (CSV content) that BOB must never see.
pub(crate) const RAW: &[&str] = &[
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
pub(crate) const VISIBLE_IDS: &[&str] = &["2", "3", "7"];

#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
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

/// Every attack: its name (the library test's name), BOB's SQL and what
/// must hold of the answer.
pub(crate) const ATTACKS: &[(&str, &str, Expect)] = &[
    (
        "predicate_oracle_on_masked_column",
        "SELECT id FROM customers WHERE ssn = '222-22-2222'",
        Expect::Empty,
    ),
    (
        "like_oracle_on_masked_column",
        "SELECT id FROM customers WHERE ssn LIKE '222%'",
        Expect::Empty,
    ),
    (
        "join_oracle_on_masked_column",
        "SELECT c.id FROM customers c JOIN (VALUES ('222-22-2222')) AS v(s) ON c.ssn = v.s",
        Expect::Empty,
    ),
    (
        "group_by_masked_column",
        "SELECT ssn, count(*) FROM customers GROUP BY ssn",
        Expect::NoRaw,
    ),
    (
        "having_oracle",
        "SELECT region FROM customers GROUP BY region HAVING max(ssn) = '222-22-2222'",
        Expect::Empty,
    ),
    (
        "order_by_masked_column",
        "SELECT name, email FROM customers ORDER BY ssn, name",
        Expect::NoRaw,
    ),
    (
        "window_over_masked_column",
        "SELECT id, ssn, row_number() OVER (ORDER BY ssn) FROM customers",
        Expect::NoRaw,
    ),
    (
        "substr_wrapping",
        "SELECT substr(ssn, 1, 11), substr(email, 1, 30) FROM customers",
        Expect::NoRaw,
    ),
    (
        "concat_wrapping",
        "SELECT concat(email, '|', name, '|', notes) FROM customers",
        Expect::NoRaw,
    ),
    (
        "cast_wrapping",
        "SELECT CAST(balance AS VARCHAR), CAST(ssn AS VARCHAR(50)) FROM customers",
        Expect::NoRaw,
    ),
    (
        "coalesce_wrapping",
        "SELECT coalesce(phone, ssn, 'x'), nullif(notes, 'x') FROM customers",
        Expect::NoRaw,
    ),
    (
        "cte_over_protected_table",
        "WITH x AS (SELECT * FROM customers) SELECT ssn, email, name FROM x",
        Expect::NoRaw,
    ),
    (
        "cte_named_like_the_table_is_the_cte",
        "WITH customers AS (SELECT 2 AS id) SELECT id FROM customers",
        Expect::VisibleIds,
    ),
    (
        "cte_named_like_the_table_over_the_table",
        "WITH customers AS (SELECT * FROM analytics.public.customers) SELECT id, ssn FROM customers",
        Expect::VisibleIds,
    ),
    (
        "cte_named_like_the_table_reads_the_table_unqualified",
        "WITH customers AS (SELECT * FROM customers) SELECT id, name, ssn FROM customers",
        Expect::VisibleIds,
    ),
    (
        "earlier_cte_reads_the_table_a_later_cte_shadows",
        "WITH a AS (SELECT * FROM customers), customers AS (SELECT 1 AS x) SELECT id, name, ssn FROM a",
        Expect::VisibleIds,
    ),
    (
        "quoted_names",
        "SELECT \"ID\", \"SSN\", \"EMAIL\" FROM \"CUSTOMERS\"",
        Expect::VisibleIds,
    ),
    (
        "mixed_case_names",
        "SELECT Id, SsN, eMaIl FROM CuStOmErS",
        Expect::VisibleIds,
    ),
    (
        "fully_qualified_name",
        "SELECT id, ssn FROM analytics.public.customers",
        Expect::VisibleIds,
    ),
    (
        "quoted_lower_case_name_is_another_table",
        "SELECT * FROM \"customers\"",
        Expect::Error("Object 'ANALYTICS.PUBLIC.\"customers\"' does not exist or not authorized."),
    ),
    (
        "union_branches",
        "SELECT id, ssn FROM customers UNION ALL SELECT id, ssn FROM analytics.public.customers",
        Expect::VisibleIds,
    ),
    (
        "self_join",
        "SELECT a.id, a.ssn, b.email FROM customers a JOIN customers b ON a.id = b.id",
        Expect::VisibleIds,
    ),
    (
        "scalar_subquery_in_select",
        "SELECT (SELECT max(ssn) FROM customers), (SELECT min(name) FROM customers)",
        Expect::NoRaw,
    ),
    (
        "in_subquery_oracle",
        "SELECT order_id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE ssn = '222-22-2222')",
        Expect::Empty,
    ),
    (
        "exists_on_hidden_row",
        "SELECT id FROM customers WHERE EXISTS (SELECT 1 FROM customers d WHERE d.id = 1)",
        Expect::Empty,
    ),
    (
        "select_star_exclude",
        "SELECT * EXCLUDE (notes) FROM customers",
        Expect::VisibleIds,
    ),
    (
        "aggregate_over_hidden_rows",
        "SELECT max(id) FROM customers WHERE id > 7",
        Expect::Single("NULL"),
    ),
    (
        "count_sees_only_visible_rows",
        "SELECT count(*) FROM customers",
        Expect::Single("3"),
    ),
    (
        "hidden_rows_do_not_count",
        "SELECT count(*) FROM customers HAVING count(*) > 3",
        Expect::Empty,
    ),
    (
        "limit_stays_above_row_rule",
        "SELECT id FROM customers LIMIT 2",
        Expect::VisibleIds,
    ),
    (
        "pushed_predicate_cannot_reach_hidden_rows",
        "SELECT id FROM customers WHERE region = 'US'",
        Expect::Empty,
    ),
    (
        "divide_by_zero_only_on_hidden_row",
        "SELECT count(*) FROM customers WHERE 1 / (id - 1) > 0",
        Expect::RunsOk,
    ),
    (
        "divide_by_zero_on_hidden_row_in_join",
        "SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE 1 / (c.id - 4) > 0",
        Expect::RunsOk,
    ),
    (
        "internal_hash_function_is_refused",
        "SELECT veil_mask_hash('222-22-2222', 'ANALYTICS.PUBLIC.CUSTOMERS', 'VARCHAR(20)')",
        Expect::Error("internal to Veil"),
    ),
    (
        "internal_function_in_where_is_refused",
        "SELECT id FROM customers WHERE name = VEIL_MASK_HASH('Bob Jones', 'ANALYTICS.PUBLIC.CUSTOMERS', 'VARCHAR(20)')",
        Expect::Error("internal to Veil"),
    ),
    (
        "internal_encryption_function_is_refused",
        "SELECT veil_mask_fpe('222-22-2222', 'ANALYTICS.PUBLIC.CUSTOMERS', 'ssn-ff1', 'VARCHAR(11)')",
        Expect::Error("internal to Veil"),
    ),
    (
        "veil_unmask_of_masked_columns_is_null",
        "SELECT VEIL_UNMASK(ssn, 'ANALYTICS.PUBLIC.CUSTOMERS.SSN'), VEIL_UNMASK(name, 'ANALYTICS.PUBLIC.CUSTOMERS.NAME'), VEIL_UNMASK(notes, 'ANALYTICS.PUBLIC.CUSTOMERS.NOTES') FROM customers",
        Expect::NoRaw,
    ),
    (
        "internal_purpose_function_is_refused",
        "SELECT veil_current_purpose()",
        Expect::Error("internal to Veil"),
    ),
    (
        "another_users_profile_row",
        "SELECT * FROM veil.system.user_profile WHERE user_name = 'CAROL'",
        Expect::Empty,
    ),
    (
        "identity_cannot_be_changed_in_sql",
        "SELECT id FROM customers WHERE current_user() = 'CAROL'",
        Expect::Empty,
    ),
    (
        "information_schema_is_not_reachable",
        "SELECT * FROM information_schema.tables",
        Expect::Error("does not exist or not authorized"),
    ),
    (
        "raw_internal_catalog_is_not_reachable",
        "SELECT * FROM veil.system.audit",
        Expect::Error("does not exist or not authorized"),
    ),
    (
        "create_table_as_is_refused",
        "CREATE TABLE stolen AS SELECT * FROM customers",
        Expect::Error("CREATE TABLE statements are not allowed"),
    ),
    (
        "insert_is_refused",
        "INSERT INTO customers (id) VALUES (99)",
        Expect::Error("INSERT statements are not allowed"),
    ),
    (
        "update_is_refused",
        "UPDATE customers SET region = 'EU'",
        Expect::Error("UPDATE statements are not allowed"),
    ),
    (
        "delete_is_refused",
        "DELETE FROM customers",
        Expect::Error("DELETE statements are not allowed"),
    ),
    (
        "set_is_refused",
        "SET datafusion.sql_parser.enable_ident_normalization = true",
        Expect::Error("SET statements are not allowed"),
    ),
    (
        "copy_is_refused",
        "COPY INTO @stage FROM customers",
        Expect::Error("COPY statements are not allowed"),
    ),
    (
        "create_function_is_refused",
        "CREATE FUNCTION f() RETURNS VARCHAR AS 'select 1'",
        Expect::Error("CREATE FUNCTION statements are not allowed"),
    ),
    (
        "create_view_is_refused",
        "CREATE VIEW v AS SELECT * FROM customers",
        Expect::Error("CREATE VIEW statements are not allowed"),
    ),
    (
        "drop_is_refused",
        "DROP TABLE customers",
        Expect::Error("DROP TABLE statements are not allowed"),
    ),
    (
        "two_statements_are_refused",
        "SELECT 1; DROP TABLE customers",
        Expect::Error("one statement at a time"),
    ),
    (
        "table_function_is_refused",
        "SELECT * FROM generate_series(1, 3)",
        Expect::Error("Table function"),
    ),
];

/// One attack's answer as a client saw it: rows of values (`None` is SQL
/// NULL) or the error text.
pub(crate) type Answer = Result<Vec<Vec<Option<String>>>, String>;

/// Checks an answer against `expect`: no raw value may come back from any
/// query that runs; an error must say what it is expected to say.
pub(crate) fn judge(answer: Answer, expect: Expect) -> Result<(), String> {
    let rows = match (expect, answer) {
        (Expect::Error(text), Err(e)) if e.contains(text) => return Ok(()),
        (Expect::Error(text), Err(e)) => {
            return Err(format!("expected an error containing {text:?}, got {e:?}"));
        }
        (Expect::Error(_), Ok(rows)) => {
            return Err(format!("expected an error, got rows {rows:?}"));
        }
        (_, Err(e)) => return Err(format!("expected a result, got error {e}")),
        (_, Ok(rows)) => rows,
    };
    for raw in RAW {
        if rows.iter().flatten().flatten().any(|v| v.contains(raw)) {
            return Err(format!("raw value {raw:?} came back in {rows:?}"));
        }
    }
    let first = |r: &Vec<Option<String>>| r.first().cloned().flatten().unwrap_or_default();
    match expect {
        Expect::Single("NULL") if rows != vec![vec![None]] => {
            Err(format!("expected [[NULL]], got {rows:?}"))
        }
        Expect::Single(v) if v != "NULL" && rows != vec![vec![Some(v.to_string())]] => {
            Err(format!("expected [[{v}]], got {rows:?}"))
        }
        Expect::Empty if !rows.is_empty() => Err(format!("expected no rows, got {rows:?}")),
        Expect::VisibleIds if rows.is_empty() => Err("expected BOB's rows, got none".into()),
        Expect::VisibleIds => match rows
            .iter()
            .find(|r| !VISIBLE_IDS.contains(&first(r).as_str()))
        {
            Some(r) => Err(format!("hidden row {r:?} came back")),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
