//! Measurements, not assertions (run with `--ignored --nocapture`):
//! discovery throughput on a 1 M-row × 20-column Parquet table, a sync of
//! 100 000 SCIM users and the workspace load time after it.

use std::time::Instant;

use veil_engine::discover::{DiscoverOptions, discover};
use veil_engine::load::load_workspace;

use crate::fixture::labelled;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: discovery throughput on 1 M rows × 20 columns"]
async fn measure_discovery_throughput() {
    let rows: usize = std::env::var("VEIL_DISCOVER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("dir");
    let fixture = labelled(rows, 1);
    fixture.write_parquet(&dir.path().join("data/big.parquet"));
    std::fs::write(
        dir.path().join("veil.yaml"),
        format!(
            "tables:\n  - name: BIG\n    location: data/big.parquet\n    columns:\n{}",
            fixture.columns_yaml()
        ),
    )
    .expect("veil.yaml");
    let ws = load_workspace(dir.path()).expect("loads");
    let start = Instant::now();
    let report = discover(&ws, &DiscoverOptions::default(), &|_| {})
        .await
        .expect("discover");
    let secs = start.elapsed().as_secs_f64();
    let t = &report.tables[0];
    println!(
        "discovery: {} rows × {} columns read, {} sampled, {} columns tagged in {secs:.2} s = {:.0} rows/s on one core (one partition)",
        t.rows_read,
        fixture.columns.len(),
        t.rows_sampled,
        t.findings.len(),
        t.rows_read as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: a sync of 100 000 SCIM users and the load after it"]
async fn measure_sync_of_100k_users_and_load() {
    let n: usize = std::env::var("VEIL_SYNC_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.csv"), "id\n1\n").expect("csv");
    std::fs::write(
        dir.path().join("veil.yaml"),
        "tables:\n  - name: T\n    location: t.csv\n    columns:\n      - {name: ID, type: NUMBER(10,0)}\nroles:\n  - {name: ANALYST, grants: [T]}\nsettings:\n  audit: off\n",
    )
    .expect("veil.yaml");
    let resources: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"id":"{i}","userName":"user{i}@example.com","active":true,"groups":[{{"value":"g{}","display":"Group {}"}},{{"value":"all","display":"Everyone"}}],"roles":[{{"value":"ANALYST"}}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{{"department":"Dept {}","costCenter":"CC{}"}}}}"#,
                i % 200, i % 200, i % 40, i % 90
            )
        })
        .collect();
    let scim = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":{n},"Resources":[{}]}}"#,
        resources.join(",")
    );
    let file = dir.path().join("scim.json");
    std::fs::write(&file, &scim).expect("scim");
    let ws = load_workspace(dir.path()).expect("loads");
    let start = Instant::now();
    let plan = veil_engine::directory::sync::sync(&ws, &file, false, false).expect("sync");
    let sync_secs = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(dir.path().join("state/users.yaml"))
        .map(|m| m.len())
        .unwrap_or(0);
    let start = Instant::now();
    let ws = load_workspace(dir.path()).expect("loads");
    let load_secs = start.elapsed().as_secs_f64();
    assert_eq!(ws.users.len(), n);
    let start = Instant::now();
    let engine = veil_engine::Engine::from_workspace(ws)
        .await
        .expect("engine");
    let engine_secs = start.elapsed().as_secs_f64();
    drop(engine);
    println!(
        "sync: {} users ({} MB SCIM) in {sync_secs:.2} s; state/users.yaml {:.1} MB; load_workspace {load_secs:.2} s; Engine::from_workspace {engine_secs:.2} s",
        plan.added.len(),
        scim.len() / 1_000_000,
        size as f64 / 1e6
    );
}
