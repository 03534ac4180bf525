//! The leak battery (`tests/shared/leak_battery.rs`, the list the library
//! suite runs) through the real connector, as BOB — masked and
//! row-filtered: each attack asserts what must *not* come back over the
//! Snowflake protocol.

use serde_json::{Value, json};
use veil_serve::snowflake::SnowflakeLimits;

use super::common::{connector, rows, start};
use crate::leak_battery::{ATTACKS, Answer, judge};

/// A connector step's outcome as the battery judges it.
fn answer(step: &Value) -> Answer {
    if step["ok"] != true {
        return Err(step["msg"].as_str().unwrap_or_default().to_string());
    }
    Ok(rows(step))
}

#[test]
fn leak_battery_through_the_connector() {
    let server = start(SnowflakeLimits::default());
    let steps: Vec<Value> = ATTACKS
        .iter()
        .map(|(_, sql, _)| json!({"sql": sql, "fetch": "all"}))
        .collect();
    let out = connector(&server, "BOB", json!({}), steps);
    assert_eq!(out.len(), ATTACKS.len(), "one answer per attack");
    let failures: Vec<String> = ATTACKS
        .iter()
        .zip(&out)
        .filter_map(|((name, _, expect), step)| {
            judge(answer(step), *expect)
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} attacks leaked or misbehaved:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
