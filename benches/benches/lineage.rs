//! The catalog journal at scale (SPEC §7.1, issue 17 point 7): ingesting
//! 1 000 000 ACCESS_HISTORY column edges, propagating one tag through a
//! 10 000-table lineage graph, and loading a workspace whose journal holds
//! 100 000 events. Targets: ingest ≥ 200 k edges/s, one propagation
//! < 50 ms, load < 1 s (release build: `cargo bench -p veil-benches --bench
//! lineage`).

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use veil_engine::load::journal::access_history::{parse_access_history, record_lineage};
use veil_engine::load::journal::{encode_batch, record};
use veil_engine::model::{CatalogChange, CatalogEvent, ColumnRef, Recorder, TableName, TagSource};

const TABLES: usize = 10_000;
const COLUMNS: usize = 5;

fn table(i: usize) -> TableName {
    TableName {
        database: "DW".into(),
        schema: "CORE".into(),
        table: format!("T{i:05}"),
    }
}

/// A workspace of `tables` tables with `COLUMNS` columns each (the data
/// files are never read: loading a workspace does not scan data).
fn write_workspace(dir: &Path, tables: usize) {
    let mut yaml = String::from(
        "settings: {default_database: DW, default_schema: CORE, audit: off}\ntables:\n",
    );
    for i in 0..tables {
        let _ = writeln!(
            yaml,
            "  - name: DW.CORE.T{i:05}\n    location: data/t{i}.csv\n    columns:"
        );
        for c in 0..COLUMNS {
            let _ = writeln!(yaml, "      - {{name: C{c}, type: VARCHAR(20)}}");
        }
    }
    std::fs::write(dir.join("veil.yaml"), yaml).expect("write veil.yaml");
}

/// ACCESS_HISTORY rows with `edges` column edges in all: each row writes
/// every column of one table from the same column of 40 earlier tables.
fn access_history(edges: usize) -> String {
    let fan_in = 40;
    let mut out = String::new();
    let mut made = 0;
    let mut target = fan_in;
    while made < edges {
        let t = target % TABLES;
        let _ = write!(
            out,
            "{{\"QUERY_ID\":\"q{target}\",\"QUERY_START_TIME\":\"2026-12-01T00:00:00Z\",\"OBJECTS_MODIFIED\":[{{\"objectName\":\"DW.CORE.T{t:05}\",\"objectDomain\":\"Table\",\"columns\":["
        );
        for c in 0..COLUMNS {
            if c > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"columnName\":\"C{c}\",\"directSources\":[");
            for k in 1..=fan_in {
                let s = (t + TABLES - k) % TABLES;
                if k > 1 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{{\"objectName\":\"DW.CORE.T{s:05}\",\"columnName\":\"C{c}\",\"objectDomain\":\"Table\"}}"
                );
                made += 1;
            }
            out.push_str("],\"baseSources\":[]}");
        }
        out.push_str("]}]}\n");
        target += 1;
    }
    out
}

fn bench_ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_workspace(dir.path(), TABLES);
    let ws = veil_engine::load::load_workspace(dir.path()).expect("workspace loads");
    let edges = 1_000_000;
    let text = access_history(edges);
    let mut group = c.benchmark_group("lineage");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(edges as u64));
    group.bench_function("ingest_1m_access_history_edges", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(dir.path().join("state/catalog.jsonl"));
            },
            |()| {
                let (lineage, mut report) =
                    parse_access_history(&ws, &text, "access_history.jsonl").expect("parses");
                let recorded = record(&ws, "BENCH", |r| {
                    record_lineage(r, &lineage, false, &mut report);
                    Ok(())
                })
                .expect("records");
                assert_eq!(report.edges, edges);
                black_box(recorded.events.len())
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// A 10 000-table graph: every table computed from the previous one,
/// column by column, so a tag on the first reaches all 10 000.
fn chain_workspace() -> (tempfile::TempDir, veil_engine::model::Workspace) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_workspace(dir.path(), TABLES);
    let mut ws = veil_engine::load::load_workspace(dir.path()).expect("workspace loads");
    let mut r = Recorder::new(&mut ws, "BENCH");
    for i in 1..TABLES {
        for c in 0..COLUMNS {
            let col = format!("C{c}");
            r.add_lineage(
                &ColumnRef::new(table(i), col.clone()),
                &[ColumnRef::new(table(i - 1), col)],
                None,
                false,
            );
        }
    }
    drop(r);
    (dir, ws)
}

fn bench_propagation(c: &mut Criterion) {
    let (_dir, ws) = chain_workspace();
    let origin = ColumnRef::new(table(0), "C0");
    let mut group = c.benchmark_group("lineage");
    group.sample_size(10);
    group.bench_function("propagate_one_tag_through_10k_tables", |b| {
        b.iter_batched(
            || ws.clone(),
            |mut copy| {
                let mut r = Recorder::new(&mut copy, "BENCH");
                r.add_tag(&origin, "PII.Email", TagSource::Manual)
                    .expect("tag added");
                let events = r.finish();
                assert_eq!(events.len(), TABLES);
                // Returned, so freeing the 10 000-table copy of the
                // workspace (criterion drops outputs after timing) is not
                // counted as propagation.
                (copy, events)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_workspace(dir.path(), 200);
    let mut events = Vec::with_capacity(100_000);
    for i in 0..100_000usize {
        let column = ColumnRef::new(table(i % 200), format!("C{}", i % COLUMNS));
        let change = if i % 4 == 3 {
            CatalogChange::TagRemoved {
                column,
                tag: format!("Tag.T{}", i % 97),
                origin: None,
            }
        } else {
            CatalogChange::TagAdded {
                column,
                tag: format!("Tag.T{}", i % 97),
                source: TagSource::Manual,
                origin: None,
            }
        };
        events.push(CatalogEvent::new("BENCH", change));
    }
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    let mut bytes = Vec::new();
    for chunk in events.chunks(1) {
        bytes.extend(encode_batch(chunk).expect("encodes"));
    }
    std::fs::write(dir.path().join("state/catalog.jsonl"), bytes).expect("journal");
    let mut group = c.benchmark_group("lineage");
    group.sample_size(10);
    group.bench_function("load_workspace_with_100k_event_journal", |b| {
        b.iter(|| {
            let ws = veil_engine::load::load_workspace(dir.path()).expect("loads");
            assert_eq!(ws.journal.events, 100_000);
            black_box(ws.journal.events)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_propagation, bench_load, bench_ingest);
criterion_main!(benches);
