//! Veil's per-query overhead, apart from the data: parse + access check +
//! policy rendering ("rewrite") and DataFusion planning for a 3-table join
//! with 20 masked columns, in a small catalogue and in a 50-table catalogue
//! with 1 000 masking policies; policy resolution on a decision-cache miss
//! and hit; and the `user_profile` lookup of profile-join mode with 1 000 and
//! 100 000 users (SPEC §8: under 100 µs, under 5 % of planning, independent
//! of the number of users, linear in the number of policies).

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use veil_engine::{EnforcementMode, Engine, PlanTimings, Session, SessionOptions};

const REGIONS: [&str; 3] = ["US", "EU", "APAC"];

/// A catalogue of `tables` tables `T000..`, table `t` with `masked(t)`
/// VARCHAR columns each under its own masking policy, one row rule per
/// table and `users` users; the data is three CSV rows per table.
fn catalogue(dir: &Path, tables: usize, masked: impl Fn(usize) -> usize, users: usize) {
    let mut y = String::from(
        "settings: {default_database: ANALYTICS, default_schema: PUBLIC, secret_env: VEIL_BENCH_SECRET}\ntables:\n",
    );
    let mut policies = String::from("policies:\n");
    let mut grants = Vec::new();
    std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("{e}"));
    for t in 0..tables {
        let name = format!("T{t:03}");
        let cols: Vec<String> = (1..=masked(t)).map(|c| format!("C{c:02}")).collect();
        let mut csv = format!("ID,REGION,{}\n", cols.join(","));
        for (r, region) in REGIONS.iter().enumerate() {
            let values: Vec<String> = cols.iter().map(|c| format!("{c}-{r}")).collect();
            let _ = writeln!(csv, "{r},{region},{}", values.join(","));
        }
        std::fs::write(dir.join(format!("data/{name}.csv")), csv).unwrap_or_else(|e| panic!("{e}"));
        let _ = writeln!(
            y,
            "  - name: ANALYTICS.PUBLIC.{name}\n    location: data/{name}.csv\n    columns:\n      - {{name: ID, type: 'NUMBER(10,0)'}}\n      - {{name: REGION, type: 'VARCHAR(8)'}}"
        );
        for (i, c) in cols.iter().enumerate() {
            let _ = writeln!(y, "      - {{name: {c}, type: 'VARCHAR(20)'}}");
            let mask = match i % 3 {
                0 => "hash".to_string(),
                1 => "{show_last: 2}".to_string(),
                _ => "{constant: REDACTED}".to_string(),
            };
            let _ = writeln!(
                policies,
                "  - {{name: mask-{name}-{c}, type: masking, on: {{columns: [ANALYTICS.PUBLIC.{name}.{c}]}}, mask: {mask}, except: {{groups: [Admins]}}}}"
            );
        }
        let _ = writeln!(
            policies,
            "  - {{name: rows-{name}, type: row, on: {{data_sources: [ANALYTICS.PUBLIC.{name}]}}, rule: {{match_attribute: Region, column: REGION}}}}"
        );
        grants.push(format!("ANALYTICS.PUBLIC.{name}"));
    }
    let _ = writeln!(
        policies,
        "  - {{name: subscribe, type: subscription, on: {{data_sources: [{}]}}, allow: anyone}}",
        grants.join(", ")
    );
    let _ = writeln!(
        y,
        "roles:\n  - {{name: ANALYST, grants: [{}]}}\nusers:",
        grants.join(", ")
    );
    for u in 0..users {
        let _ = writeln!(
            y,
            "  - {{name: U{u:06}, roles: [ANALYST], groups: [Analysts], attributes: {{Region: [{}]}}}}",
            REGIONS[u % REGIONS.len()]
        );
    }
    y.push_str(&policies);
    std::fs::write(dir.join("veil.yaml"), y).unwrap_or_else(|e| panic!("{e}"));
}

/// Which planning steps a bench adds up.
type Step = fn(&PlanTimings) -> Duration;

/// A 3-table join selecting 20 masked columns (7 + 7 + 6).
const JOIN: &str = "SELECT a.C01, a.C02, a.C03, a.C04, a.C05, a.C06, a.C07, \
     b.C01, b.C02, b.C03, b.C04, b.C05, b.C06, b.C07, \
     c.C01, c.C02, c.C03, c.C04, c.C05, c.C06 \
     FROM T000 a JOIN T001 b ON a.ID = b.ID JOIN T002 c ON b.ID = c.ID WHERE a.ID < 10";

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
}

fn fixture(
    rt: &tokio::runtime::Runtime,
    tables: usize,
    masked: fn(usize) -> usize,
    users: usize,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    catalogue(dir.path(), tables, masked, users);
    let engine = rt
        .block_on(Engine::load(dir.path()))
        .unwrap_or_else(|e| panic!("{e}"));
    Fixture { _dir: dir, engine }
}

fn session(engine: &Engine, mode: EnforcementMode) -> Session {
    engine
        .session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user("U000000")
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

fn small_masked(t: usize) -> usize {
    [7, 7, 6][t.min(2)]
}

fn large_masked(_: usize) -> usize {
    20
}

fn bench_plan(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let small = fixture(&rt, 3, small_masked, 10);
    let large = fixture(&rt, 50, large_masked, 10);
    let mut g = c.benchmark_group("plan");
    for (name, f) in [
        ("3 tables, 20 masking policies", &small),
        ("50 tables, 1000 masking policies", &large),
    ] {
        for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
            let s = session(&f.engine, mode);
            let label = format!("{name}, {mode:?}");
            // Parse + access check + the session's three policy relations
            // (planned by its first statement, reused after; the statement
            // itself checked once and taken from the session's statement
            // cache after), then
            // everything up to a physical plan; and, for the first
            // statement, rendering the three policy relations anew.
            let steps: [(&str, Step); 3] = [
                ("rewrite", |t| t.check + t.rewrite),
                ("rewrite+plan", |t| t.check + t.rewrite + t.planning),
                ("render (first statement)", |t| t.check + t.render),
            ];
            for (step, measure) in steps {
                g.bench_function(BenchmarkId::new(step, &label), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let t = rt
                                    .block_on(s.plan_timings(JOIN))
                                    .unwrap_or_else(|e| panic!("{e}"));
                                measure(&t)
                            })
                            .sum()
                    })
                });
            }
            // The same join with a new literal each time: a statement the
            // session's statement cache has not seen, parsed and checked.
            let mut n = 0u64;
            g.bench_function(BenchmarkId::new("rewrite (new text)", &label), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            n += 1;
                            let sql = JOIN.replace("a.ID < 10", &format!("a.ID < {}", 10 + n));
                            let t = rt
                                .block_on(s.plan_timings(&sql))
                                .unwrap_or_else(|e| panic!("{e}"));
                            t.check + t.rewrite
                        })
                        .sum()
                })
            });
        }
    }
    g.finish();

    // Policy resolution: opening a session computes (or reuses) the decision.
    let mut g = c.benchmark_group("decision");
    for (name, f) in [
        ("3 tables, 20 masking policies", &small),
        ("50 tables, 1000 masking policies", &large),
    ] {
        f.engine.set_decision_ttl(Duration::from_secs(3600));
        black_box(
            f.engine
                .session("U000000")
                .unwrap_or_else(|e| panic!("{e}")),
        );
        g.bench_function(BenchmarkId::new("cache hit", name), |b| {
            b.iter(|| {
                black_box(
                    f.engine
                        .session("U000000")
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
        });
        f.engine.set_decision_ttl(Duration::ZERO);
        g.bench_function(BenchmarkId::new("cache miss", name), |b| {
            b.iter(|| {
                black_box(
                    f.engine
                        .session("U000000")
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
        });
        f.engine.set_decision_ttl(Duration::from_secs(3600));
    }
    g.finish();
}

fn bench_profile(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("user_profile");
    g.sample_size(30);
    for users in [1_000, 100_000] {
        let f = fixture(&rt, 3, small_masked, users);
        for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
            let s = session(&f.engine, mode);
            let sql = "SELECT ID, C01, C02 FROM T000 WHERE ID = 0";
            g.bench_function(
                BenchmarkId::new(format!("{mode:?} point query"), users),
                |b| b.iter(|| black_box(rt.block_on(s.sql(sql)).unwrap_or_else(|e| panic!("{e}")))),
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench_plan, bench_profile);
criterion_main!(benches);
