//! A million rows through each protocol (issue 21's closing-note number):
//! `fetch_pandas_all` over Snowflake's connector protocol (Arrow chunks)
//! and the same query over the PostgreSQL wire (tokio-postgres, rows as
//! text), each the best of three runs. Prints rows/s; asserts only that
//! every run returned every row.
//!
//! Ignored by default (a measurement):
//! `scripts/test -p veil-serve --test wire throughput -- --ignored --nocapture`.

use std::time::Instant;

use serde_json::json;
use veil_serve::snowflake::SnowflakeLimits;

use super::common::{connector, start};

const SQL: &str = "SELECT UNNEST(range(0, 1000000)) AS n";
const ROWS: u64 = 1_000_000;
const RUNS: usize = 3;

#[test]
#[ignore = "measurement: run with --ignored --nocapture and report its numbers"]
fn a_million_rows_through_each_protocol() {
    let server = start(SnowflakeLimits::default());
    let steps = (0..RUNS)
        .map(|_| json!({"sql": SQL, "fetch": "pandas", "no_rows": true}))
        .collect();
    let out = connector(&server, "ALICE", json!({}), steps);
    let mut snowflake = f64::MAX;
    for step in &out {
        assert_eq!(step["count"], ROWS, "{step}");
        snowflake = snowflake.min(step["seconds"].as_f64().expect("timed"));
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let postgres = rt.block_on(async {
        let addr = crate::common::serve_trusted(&crate::common::testdata("sample")).await;
        let client = crate::common::connect(addr, "ALICE").await;
        let mut best = f64::MAX;
        for _ in 0..RUNS {
            let started = Instant::now();
            let rows = client.query(SQL, &[]).await.expect("the query runs");
            assert_eq!(rows.len() as u64, ROWS);
            best = best.min(started.elapsed().as_secs_f64());
        }
        best
    });
    println!(
        "1 M rows, best of {RUNS}: Snowflake protocol fetch_pandas_all {:.2} s ({:.0} rows/s); \
         PostgreSQL wire (tokio-postgres) {:.2} s ({:.0} rows/s)",
        snowflake,
        ROWS as f64 / snowflake,
        postgres,
        ROWS as f64 / postgres
    );
}
