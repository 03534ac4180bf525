//! The server under load while its policies change (issue 16's load test):
//! 64 concurrent connections × 200 statements of mixed users on loopback
//! while the workspace files are swapped 20 times between two policy
//! versions. Every result must equal that user's result under one of the
//! two versions, and none may be another user's. Prints p50/p99 latency,
//! statements per second and the process's memory with 64 idle
//! connections; no timing is asserted.
//!
//! Ignored by default (it is a measurement):
//! `cargo test -p veil-serve --test wire load -- --ignored --nocapture`
//! (add `--release` for numbers worth comparing).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use veil_engine::Engine;
use veil_serve::options::{Authentication, ServeOptions};
use veil_serve::pg::PgServer;
use veil_serve::reload::{WatchOptions, WorkspaceWatcher};
use veil_serve::server::ServerState;

use super::common::{Answer, answer, connect, copy_dir, testdata, wait_applied, write_version};

const CONNECTIONS: usize = 64;
const STATEMENTS: usize = 200;
const SWAPS: u64 = 20;
const USERS: [&str; 6] = ["ALICE", "BOB", "CAROL", "DANA", "ERIN", "FRANK"];
const QUERIES: [&str; 2] = [
    "SELECT id, name, email, ssn, region, balance FROM customers ORDER BY id",
    "SELECT emp_id, name, department, salary FROM hr.employees ORDER BY emp_id",
];

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "load test: run with --ignored --nocapture and report its numbers"]
async fn sixty_four_connections_while_the_workspace_is_swapped_twenty_times() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    copy_dir(&testdata("sample"), &ws);
    let engine = Engine::load(&ws).await.unwrap();
    let state = ServerState::new(engine.clone(), ServeOptions::new(Authentication::Trust));
    let server = PgServer::bind_to(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    let watcher = WorkspaceWatcher::start(
        engine.clone(),
        &ws,
        None,
        WatchOptions {
            debounce: Duration::from_millis(50),
        },
    )
    .unwrap();
    let mut reloads = watcher.state();

    // Each user's answer to each query under both versions, over the wire.
    let mut expected: BTreeMap<(usize, &str), [Answer; 2]> = BTreeMap::new();
    let mut by_version: [BTreeMap<(usize, &str), Answer>; 2] = Default::default();
    for v in 0..2u64 {
        if v == 1 {
            write_version(&ws, 1);
            wait_applied(&mut reloads, 1).await;
        }
        for user in USERS {
            let c = connect(addr, user).await;
            for (q, sql) in QUERIES.iter().enumerate() {
                by_version[v as usize].insert((q, user), answer(&c, sql).await);
            }
        }
    }
    let mut differs = 0;
    for key in by_version[0].keys() {
        let a = by_version[0][key].clone();
        let b = by_version[1][key].clone();
        differs += usize::from(a != b);
        expected.insert(*key, [a, b]);
    }
    assert!(differs > 0, "the two versions must differ for some user");
    write_version(&ws, 0);
    wait_applied(&mut reloads, 2).await;
    let expected = Arc::new(expected);

    // 64 connections, idle: the process's memory.
    let before = rss_kib();
    let mut clients = Vec::new();
    for i in 0..CONNECTIONS {
        let user = USERS[i % USERS.len()];
        clients.push((user, connect(addr, user).await));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib();

    // The swaps, while the load runs.
    let swapper = {
        let ws = ws.clone();
        let mut reloads = reloads.clone();
        tokio::spawn(async move {
            for s in 1..=SWAPS {
                write_version(&ws, s);
                wait_applied(&mut reloads, 2 + s).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (user, client))| {
            let expected = Arc::clone(&expected);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(STATEMENTS);
                let (mut wrong, mut cross) = (0usize, 0usize);
                for n in 0..STATEMENTS {
                    let q = (i + n) % QUERIES.len();
                    let t = Instant::now();
                    let got = answer(&client, QUERIES[q]).await;
                    latencies.push(t.elapsed());
                    let own = &expected[&(q, user)];
                    if got != own[0] && got != own[1] {
                        wrong += 1;
                        if USERS
                            .iter()
                            .any(|other| *other != user && expected[&(q, *other)].contains(&got))
                        {
                            cross += 1;
                        }
                    }
                }
                (latencies, wrong, cross)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut wrong, mut cross) = (0, 0);
    for t in tasks {
        let (l, w, c) = t.await.unwrap();
        latencies.extend(l);
        wrong += w;
        cross += c;
    }
    let elapsed = started.elapsed();
    swapper.await.unwrap();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let total = latencies.len();
    println!(
        "load: {CONNECTIONS} connections x {STATEMENTS} statements = {total} in {elapsed:.2?} \
         ({:.0} statements/s); p50 {:.2?}, p99 {:.2?}; {SWAPS} swaps, policy version now {}; \
         process RSS {} MiB before the connections, {} MiB with {CONNECTIONS} idle connections \
         (client and server in one process)",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        engine.version(),
        before / 1024,
        idle / 1024,
    );
    assert_eq!(total, CONNECTIONS * STATEMENTS);
    assert_eq!(cross, 0, "results of another user were returned");
    assert_eq!(wrong, 0, "results matching neither version were returned");
    assert_eq!(engine.version(), 3 + SWAPS);
}
