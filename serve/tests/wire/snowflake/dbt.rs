//! dbt-snowflake against the listener: `dbt test` of the project in
//! `testdata/dbt` (sources on the sample workspace with `not_null`,
//! `unique` and `accepted_values` tests), run as two logins. CAROL
//! (Compliance) sees raw values and every test passes; ALICE sees e-mails
//! masked and balances rounded, so `unique` fails on those two columns —
//! as test failures, not errors: every statement dbt sent ran.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use veil_serve::snowflake::SnowflakeLimits;

use super::common::{TestServer, password, python, root, start};

/// Runs `dbt test` as `user`; returns each test's status by column name
/// (`EMAIL`, ...; `ID` has two tests, `not_null` and `unique`).
fn dbt_test(server: &TestServer, user: &str, work: &Path) -> BTreeMap<String, String> {
    let profiles = work.join(user);
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(
        root().join("testdata/dbt/profiles.example.yml"),
        profiles.join("profiles.yml"),
    )
    .unwrap();
    let dbt = python().with_file_name("dbt");
    let target = profiles.join("target");
    let out = Command::new(&dbt)
        .args(["test", "--profiles-dir"])
        .arg(&profiles)
        .arg("--project-dir")
        .arg(root().join("testdata/dbt"))
        .arg("--target-path")
        .arg(&target)
        .arg("--log-path")
        .arg(profiles.join("logs"))
        .env("VEIL_HOST", server.addr.ip().to_string())
        .env("VEIL_PORT", server.addr.port().to_string())
        .env("VEIL_USER", user)
        .env("VEIL_PASSWORD", password(user))
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DO_NOT_TRACK", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run scripts/test, which installs dbt-snowflake",
                dbt.display()
            )
        });
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = std::fs::read_to_string(target.join("run_results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("dbt test as {user} wrote no run_results.json:\n{log}"));
    results["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results:\n{log}"))
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap_or_default();
            // test.veil_sample.source_<test>_sample_CUSTOMERS_<COLUMN>[...].<hash>
            let name = id.split('.').nth(2).unwrap_or(id);
            let test = name.split("_sample_CUSTOMERS_").collect::<Vec<_>>();
            let key = format!(
                "{} {}",
                test[0].trim_start_matches("source_"),
                test.get(1)
                    .map(|c| c.split("__").next().unwrap_or(c))
                    .unwrap_or("?")
            );
            (key, r["status"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn dbt_tests_pass_on_raw_values_and_fail_where_masks_change_the_data() {
    let server = start(SnowflakeLimits::default());
    let work = tempfile::tempdir().unwrap();
    let expected = |failing: &[&str]| -> BTreeMap<String, String> {
        [
            "accepted_values REGION",
            "not_null ID",
            "unique BALANCE",
            "unique EMAIL",
            "unique ID",
        ]
        .iter()
        .map(|t| {
            let status = if failing.contains(t) { "fail" } else { "pass" };
            (t.to_string(), status.to_string())
        })
        .collect()
    };
    assert_eq!(dbt_test(&server, "CAROL", work.path()), expected(&[]));
    assert_eq!(
        dbt_test(&server, "ALICE", work.path()),
        expected(&["unique BALANCE", "unique EMAIL"])
    );
}
