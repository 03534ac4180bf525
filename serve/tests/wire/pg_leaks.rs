//! The leak battery (`tests/shared/leak_battery.rs`, the list the library
//! suite runs) over the PostgreSQL wire, as BOB — masked and row-filtered —
//! on one connection: each attack asserts what must *not* come back, and
//! the connection must stay usable after every refused statement.

use tokio_postgres::SimpleQueryMessage;

use super::pg::{login, serve};
use crate::leak_battery::{ATTACKS, Answer, Expect, judge};

/// Where PostgreSQL clients rightly get another answer than the library:
/// - `information_schema` is the server's catalog for BI tools: it answers,
///   listing only the login's granted tables (checked below), never
///   DataFusion's list of every registered table;
/// - the simple query protocol carries several statements, as PostgreSQL's
///   does: each runs through Veil's statement gate, so `SELECT 1; DROP
///   TABLE customers` answers the SELECT and refuses the DROP;
/// - PostgreSQL clients see `CUSTOMERS` as `customers` and quote it so:
///   over the wire `"customers"` is that table, with BOB's policies (see
///   `serve/src/pg/names.rs`), not another one.
const OVER_THE_WIRE: &[(&str, Expect)] = &[
    ("information_schema_is_not_reachable", Expect::NoRaw),
    (
        "quoted_lower_case_name_is_another_table",
        Expect::VisibleIds,
    ),
    (
        "two_statements_are_refused",
        Expect::Error("DROP TABLE statements are not allowed"),
    ),
];

/// A statement's answer over the simple query protocol: its rows as text
/// (`None` for NULL), or the server's error message.
async fn answer(client: &tokio_postgres::Client, sql: &str) -> Answer {
    match client.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()),
        Err(e) => Err(e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_battery_over_the_postgresql_wire() {
    let server = serve().await;
    let bob = login(&server, "bob").await;
    let mut failures = Vec::new();
    for (name, sql, expect) in ATTACKS {
        let expect = OVER_THE_WIRE
            .iter()
            .find(|(n, _)| n == name)
            .map_or(*expect, |(_, e)| *e);
        if let Err(e) = judge(answer(&bob, sql).await, expect) {
            failures.push(format!("{name}: {e}"));
        }
    }
    // information_schema lists only tables BOB may read.
    let listed = answer(
        &bob,
        "SELECT table_schema, table_name FROM information_schema.tables",
    )
    .await
    .expect("information_schema answers");
    assert!(!listed.is_empty(), "BOB is granted tables");
    for table in &listed {
        let [Some(schema), Some(name)] = table.as_slice() else {
            panic!("a table without a name: {table:?}");
        };
        let read = answer(&bob, &format!("SELECT count(*) FROM {schema}.{name}")).await;
        assert!(
            read.is_ok(),
            "information_schema lists {schema}.{name}, which BOB cannot read: {read:?}"
        );
    }
    // Still BOB's session, still usable, after every refusal.
    let ids = answer(&bob, "SELECT id FROM customers ORDER BY id").await;
    assert_eq!(
        ids,
        Ok(vec![
            vec![Some("2".to_string())],
            vec![Some("3".to_string())],
            vec![Some("7".to_string())]
        ]),
        "BOB's session after the battery"
    );
    assert!(
        failures.is_empty(),
        "{} attacks leaked or misbehaved over the wire:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
