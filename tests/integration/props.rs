//! Property tests over random queries on the sample tables:
//! - a user no policy touches gets exactly the unenforced result;
//! - the inlined and profile-join modes agree for every user;
//! - the printed rewrite always re-parses and returns the enforced result.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use veil_engine::{EnforcementMode, SessionOptions};

use crate::common::{Failed, engine, rows, runtime, sample};

const STRING_COLUMNS: &[(&str, &str)] = &[
    ("customers", "NAME"),
    ("customers", "EMAIL"),
    ("customers", "SSN"),
    ("customers", "REGION"),
    ("customers", "NOTES"),
    ("orders", "STATUS"),
    ("orders", "REGION"),
];
const NUMBER_COLUMNS: &[(&str, &str)] = &[
    ("customers", "ID"),
    ("customers", "BALANCE"),
    ("orders", "AMOUNT"),
    ("orders", "CUSTOMER_ID"),
];
const LITERALS: &[&str] = &[
    "US",
    "EU",
    "APAC",
    "shipped",
    "pending",
    "Alice Smith",
    "222-22-2222",
    "x",
];

fn predicate(table: &'static str, qual: &'static str) -> impl Strategy<Value = String> {
    let strings: Vec<&str> = STRING_COLUMNS
        .iter()
        .filter(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .collect();
    let numbers: Vec<&str> = NUMBER_COLUMNS
        .iter()
        .filter(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .collect();
    let leaf = prop_oneof![
        (
            prop::sample::select(strings.clone()),
            prop::sample::select(LITERALS)
        )
            .prop_map(move |(c, l)| format!("{qual}{c} = '{l}'")),
        (prop::sample::select(strings.clone()), "[a-z0-9]{0,2}")
            .prop_map(move |(c, p)| format!("{qual}{c} LIKE '{p}%'")),
        (prop::sample::select(numbers), -1000i64..2000)
            .prop_map(move |(c, n)| format!("{qual}{c} > {n}")),
        prop::sample::select(strings).prop_map(move |c| format!("{qual}{c} IS NULL")),
    ];
    leaf.prop_recursive(2, 4, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

/// Random read queries over CUSTOMERS and ORDERS.
fn query() -> impl Strategy<Value = String> {
    let customers_cols = prop::sample::subsequence(
        vec![
            "ID", "NAME", "EMAIL", "SSN", "PHONE", "REGION", "BALANCE", "NOTES",
        ],
        1..5,
    );
    let orders_cols = prop::sample::subsequence(
        vec![
            "ORDER_ID",
            "CUSTOMER_ID",
            "AMOUNT",
            "ORDER_DATE",
            "STATUS",
            "REGION",
        ],
        1..4,
    );
    prop_oneof![
        (customers_cols, prop::option::of(predicate("customers", "")))
            .prop_map(|(cols, p)| format!("SELECT {} FROM customers{}", cols.join(", "), p.map(|p| format!(" WHERE {p}")).unwrap_or_default())),
        (orders_cols, prop::option::of(predicate("orders", "")))
            .prop_map(|(cols, p)| format!("SELECT {} FROM orders{}", cols.join(", "), p.map(|p| format!(" WHERE {p}")).unwrap_or_default())),
        prop::option::of(predicate("customers", "")).prop_map(|p| format!(
            "SELECT region, count(*) AS n, sum(balance) AS s, max(name) AS m FROM customers{} GROUP BY region",
            p.map(|p| format!(" WHERE {p}")).unwrap_or_default()
        )),
        prop::option::of(predicate("orders", "o.")).prop_map(|p| format!(
            "SELECT c.id, c.ssn, o.order_id, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id{}",
            p.map(|p| format!(" WHERE {p}")).unwrap_or_default()
        )),
    ]
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn untouched_user_sees_unenforced_results() -> Result<(), Failed> {
    let engine = engine("untouched");
    let owen = engine.session("OWEN").map_err(|e| e.to_string())?;
    runner()
        .run(&query(), |sql| {
            let enforced = runtime()
                .block_on(owen.sql(&sql))
                .map(|b| sorted(rows(&b)))
                .map_err(|e| e.to_string());
            let raw = runtime()
                .block_on(engine.admin_sql(&sql))
                .map(|b| sorted(rows(&b)))
                .map_err(|e| e.to_string());
            prop_assert_eq!(enforced, raw, "query: {}", sql);
            Ok(())
        })
        .map_err(|e| Failed::from(e.to_string()))
}

#[test]
fn modes_agree_and_rewrites_reparse() -> Result<(), Failed> {
    let engine = sample();
    let users = ["CAROL", "ALICE", "BOB", "FRANK", "CHARLIE", "DANA"];
    let sessions: Vec<_> = users
        .iter()
        .map(|u| {
            let open = |mode| {
                engine.session_with(SessionOptions {
                    user: u.to_string(),
                    mode: Some(mode),
                    secondary_roles: None,
                    statement_timeout: None,
                    ..Default::default()
                })
            };
            (
                open(EnforcementMode::Inlined),
                open(EnforcementMode::ProfileJoin),
            )
        })
        .map(|(a, b)| Ok((a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?)))
        .collect::<Result<_, String>>()?;
    runner()
        .run(&(query(), 0..users.len()), |(sql, who)| {
            let (inlined, profile) = &sessions[who];
            let a = runtime()
                .block_on(inlined.sql(&sql))
                .map(|b| sorted(rows(&b)))
                .map_err(|e| e.to_string());
            let b = runtime()
                .block_on(profile.sql(&sql))
                .map(|b| sorted(rows(&b)))
                .map_err(|e| e.to_string());
            prop_assert_eq!(&a, &b, "modes disagree for {} on {}", users[who], sql);
            for s in [inlined, profile] {
                let rewritten = s
                    .rewritten_sql(&sql)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let reparsed = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                    &datafusion::sql::sqlparser::dialect::SnowflakeDialect {},
                    &rewritten,
                );
                prop_assert!(reparsed.is_ok(), "rewrite does not re-parse: {}", rewritten);
                let printed = runtime()
                    .block_on(s.run_rewritten(&sql))
                    .map(|b| sorted(rows(&b)))
                    .map_err(|e| e.to_string());
                prop_assert_eq!(
                    &printed,
                    &a,
                    "printed rewrite differs for {} on {}",
                    users[who],
                    sql
                );
            }
            Ok(())
        })
        .map_err(|e| Failed::from(e.to_string()))
}
