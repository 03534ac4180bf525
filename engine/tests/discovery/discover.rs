//! `veil discover` through the library: precision and recall on the
//! labelled fixture (CSV and Parquet), incremental skips and rescans, a
//! removed discovered tag staying removed, `--write` feeding a tag-keyed
//! mask in both enforcement modes, custom classifiers, exclusion and bad
//! regexes.

use std::collections::BTreeMap;
use std::path::Path;

use veil_engine::discover::{
    DiscoverOptions, DiscoveryReport, TableStatus, discover, write::write,
};
use veil_engine::load::load_workspace;
use veil_engine::model::{ColumnRef, TableName, TagState};
use veil_engine::{EnforcementMode, Engine, SessionOptions};

use crate::fixture::{Fixture, labelled, unseen};

fn none(_: veil_engine::discover::ScanProgress) {}

async fn run(dir: &Path, options: DiscoverOptions) -> DiscoveryReport {
    let ws = load_workspace(dir).expect("workspace loads");
    discover(&ws, &options, &none)
        .await
        .expect("discovery runs")
}

/// A workspace with the fixture as CUSTOMERS_CSV and CUSTOMERS_PARQUET.
fn workspace(dir: &Path, fixture: &Fixture, extra: &str) {
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    fixture.write_csv(&dir.join("data/customers.csv"));
    fixture.write_parquet(&dir.join("data/customers.parquet"));
    let cols = fixture.columns_yaml();
    std::fs::write(
        dir.join("veil.yaml"),
        format!(
            "settings:\n  audit: state/audit.jsonl\n{extra}tables:\n  - name: CUSTOMERS_CSV\n    location: data/customers.csv\n    columns:\n{cols}  - name: CUSTOMERS_PARQUET\n    location: data/customers.parquet\n    columns:\n{cols}roles:\n  - {{name: ANALYST, grants: [CUSTOMERS_CSV, CUSTOMERS_PARQUET]}}\nusers:\n  - {{name: ALICE, roles: [ANALYST]}}\npolicies:\n  - name: everyone-reads\n    type: subscription\n    on: {{data_sources: [CUSTOMERS_CSV, CUSTOMERS_PARQUET]}}\n    allow: anyone\n  - name: mask-discovered-email\n    type: masking\n    on: {{tags: [Discovered.Electronic Mail Address]}}\n    mask: {{constant: REDACTED}}\n"
        ),
    )
    .expect("veil.yaml");
}

/// (precision, recall) of `findings` against `labels`.
fn precision_recall(
    found: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> (f64, f64) {
    let correct = found
        .iter()
        .filter(|(c, t)| labels.get(*c) == Some(t))
        .count();
    let precision = if found.is_empty() {
        1.0
    } else {
        correct as f64 / found.len() as f64
    };
    let recall = if labels.is_empty() {
        1.0
    } else {
        correct as f64 / labels.len() as f64
    };
    (precision, recall)
}

fn found(report: &DiscoveryReport, table: &str) -> BTreeMap<String, String> {
    report
        .tables
        .iter()
        .find(|t| t.table.ends_with(table))
        .map(|t| {
            t.findings
                .iter()
                .map(|f| (f.column.clone(), f.tag.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn builtins_have_precision_and_recall_one_on_the_labelled_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = labelled(400, 7);
    assert!(fixture.columns.len() >= 12 && fixture.labels().len() * 2 == fixture.columns.len());
    workspace(dir.path(), &fixture, "");
    let report = run(dir.path(), DiscoverOptions::default()).await;
    for table in ["CUSTOMERS_CSV", "CUSTOMERS_PARQUET"] {
        let t = report
            .tables
            .iter()
            .find(|t| t.table.ends_with(table))
            .expect("table reported");
        assert_eq!(t.status, TableStatus::Scanned);
        assert_eq!(t.rows_sampled, 400);
        let got = found(&report, table);
        assert_eq!(got, fixture.labels(), "{table}");
        assert_eq!(precision_recall(&got, &fixture.labels()), (1.0, 1.0));
    }
    // Decoys stay untagged by name: the boolean email_opt_in above all.
    let csv = found(&report, "CUSTOMERS_CSV");
    for decoy in [
        "ORDER_REF",
        "DIGEST",
        "PART_NUMBER",
        "EMAIL_OPT_IN",
        "CREATED_AT",
        "AMOUNT_CENTS",
    ] {
        assert!(!csv.contains_key(decoy), "{decoy} must not be tagged");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sampling_is_deterministic_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(
        dir.path(),
        &labelled(1000, 11),
        "  discovery:\n    sample: 250\n",
    );
    let a = run(dir.path(), DiscoverOptions::default()).await;
    let b = run(dir.path(), DiscoverOptions::default()).await;
    let t = &a.tables[1];
    assert_eq!((t.rows_read, t.rows_sampled), (1000, 250));
    let shares = |r: &DiscoveryReport| {
        r.tables
            .iter()
            .flat_map(|t| {
                t.findings
                    .iter()
                    .map(|f| (f.column.clone(), f.matched, f.sampled))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shares(&a), shares(&b));
}

/// Measured, not asserted: precision and recall on a fixture generated
/// differently from the one the classifiers were tuned on. Run with
/// `cargo test -p veil-engine --test discovery -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: prints precision and recall on the unseen fixture"]
async fn measure_precision_and_recall_on_an_unseen_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = unseen(500, 2026);
    workspace(dir.path(), &fixture, "");
    let report = run(dir.path(), DiscoverOptions::default()).await;
    for table in ["CUSTOMERS_CSV", "CUSTOMERS_PARQUET"] {
        let got = found(&report, table);
        let (p, r) = precision_recall(&got, &fixture.labels());
        println!("{table}: precision {p:.2} recall {r:.2}");
        for (c, t) in &fixture.labels() {
            if got.get(c) != Some(t) {
                println!("  missed {c} ({t}), got {:?}", got.get(c));
            }
        }
        for (c, t) in &got {
            if fixture.labels().get(c) != Some(t) {
                println!("  false {c} → {t}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_tables_are_skipped_until_their_data_changes_or_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = labelled(300, 3);
    workspace(dir.path(), &fixture, "");
    let first = run(dir.path(), DiscoverOptions::default()).await;
    // Without --write nothing is remembered: the next run scans again.
    let again = run(dir.path(), DiscoverOptions::default()).await;
    assert!(
        again
            .tables
            .iter()
            .all(|t| t.status == TableStatus::Scanned)
    );
    let ws = load_workspace(dir.path()).expect("loads");
    write(&ws, &first).expect("write");
    let skipped = run(dir.path(), DiscoverOptions::default()).await;
    assert!(
        skipped
            .tables
            .iter()
            .all(|t| t.status == TableStatus::Unchanged),
        "{:?}",
        skipped.tables.iter().map(|t| &t.status).collect::<Vec<_>>()
    );
    assert_eq!(skipped.tables[0].findings, first.tables[0].findings);
    assert!(
        skipped.summary().contains("skipped 2 unchanged"),
        "{}",
        skipped.summary()
    );
    let full = run(
        dir.path(),
        DiscoverOptions {
            full: true,
            ..Default::default()
        },
    )
    .await;
    assert!(full.tables.iter().all(|t| t.status == TableStatus::Scanned));
    // New data in the CSV: that table alone is rescanned.
    labelled(301, 4).write_csv(&dir.path().join("data/customers.csv"));
    let changed = run(dir.path(), DiscoverOptions::default()).await;
    let status: Vec<_> = changed
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.status.clone()))
        .collect();
    assert_eq!(status[0].1, TableStatus::Scanned, "{status:?}");
    assert_eq!(status[1].1, TableStatus::Unchanged, "{status:?}");
    assert_eq!(changed.tables[0].rows_read, 301);
}

#[tokio::test(flavor = "multi_thread")]
async fn write_tags_columns_and_a_tag_keyed_mask_applies_in_both_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), &labelled(300, 5), "");
    let emails = |engine: Engine, mode| async move {
        let s = engine
            .session_with(SessionOptions {
                mode: Some(mode),
                ..SessionOptions::user("alice")
            })
            .expect("session");
        let batches = s
            .sql("SELECT email FROM customers_parquet LIMIT 3")
            .await
            .expect("query");
        veil_engine::output::table(&batches).expect("table")
    };
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        let before = emails(Engine::load(dir.path()).await.expect("engine"), mode).await;
        assert!(
            before.contains('@') && !before.contains("REDACTED"),
            "{before}"
        );
    }
    let report = run(dir.path(), DiscoverOptions::default()).await;
    let ws = load_workspace(dir.path()).expect("loads");
    let written = write(&ws, &report).expect("write");
    assert_eq!(written.added.len(), 20, "{written}");
    let journal = std::fs::read_to_string(dir.path().join("state/catalog.jsonl")).expect("journal");
    assert!(
        journal.contains("\"source\":\"discovered\"")
            && journal.contains("Discovered.Electronic Mail Address")
    );
    let ws = load_workspace(dir.path()).expect("loads");
    let name = TableName {
        database: "ANALYTICS".into(),
        schema: "PUBLIC".into(),
        table: "CUSTOMERS_PARQUET".into(),
    };
    let tags = &ws
        .table(&name)
        .and_then(|t| t.column("EMAIL"))
        .expect("column")
        .tags;
    assert!(
        tags.iter()
            .any(|t| t.name == "Discovered.Electronic Mail Address" && t.state == TagState::Active)
    );
    for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
        let after = emails(Engine::load(dir.path()).await.expect("engine"), mode).await;
        assert!(
            after.contains("REDACTED") && !after.contains('@'),
            "{mode:?}: {after}"
        );
    }
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).expect("audit");
    assert!(audit.contains("TAG_ADDED"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_discovered_tag_a_data_owner_removed_stays_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), &labelled(300, 6), "");
    let report = run(dir.path(), DiscoverOptions::default()).await;
    write(&load_workspace(dir.path()).expect("loads"), &report).expect("write");
    let name = TableName {
        database: "ANALYTICS".into(),
        schema: "PUBLIC".into(),
        table: "CUSTOMERS_CSV".into(),
    };
    let column = ColumnRef::new(name.clone(), "EMAIL");
    let ws = load_workspace(dir.path()).expect("loads");
    veil_engine::load::journal::record(&ws, "DANA", |r| {
        r.remove_tag(&column, "Discovered.Electronic Mail Address")
    })
    .expect("removal recorded");
    let report = run(
        dir.path(),
        DiscoverOptions {
            full: true,
            ..Default::default()
        },
    )
    .await;
    let written = write(&load_workspace(dir.path()).expect("loads"), &report).expect("write");
    assert!(written.added.is_empty(), "{written}");
    assert_eq!(
        written.kept_removed,
        vec![format!("{name}.EMAIL Discovered.Electronic Mail Address")]
    );
    let ws = load_workspace(dir.path()).expect("loads");
    let tag = ws
        .table(&name)
        .and_then(|t| t.column("EMAIL"))
        .expect("column");
    assert!(
        !tag.tags
            .iter()
            .any(|t| t.name == "Discovered.Electronic Mail Address")
    );
    let removed = tag
        .removed_tags
        .iter()
        .find(|t| t.name == "Discovered.Electronic Mail Address")
        .expect("kept as removed");
    assert_eq!(removed.state, TagState::Removed);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_classifiers_by_regex_and_dictionary() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("dir");
    let mut csv = String::from("employee_code,department,note\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "E-{:06},{},note {i}\n",
            100_000 + i * 7,
            ["Finance", "Legal", "R&D"][i % 3]
        ));
    }
    std::fs::write(dir.path().join("data/staff.csv"), csv).expect("csv");
    std::fs::write(
        dir.path().join("departments.txt"),
        "finance\nlegal\nr&d\nsales\n",
    )
    .expect("dict");
    std::fs::write(
        dir.path().join("veil.yaml"),
        "tables:\n  - name: STAFF\n    location: data/staff.csv\n    columns:\n      - {name: EMPLOYEE_CODE, type: VARCHAR}\n      - {name: DEPARTMENT, type: VARCHAR}\n      - {name: NOTE, type: VARCHAR}\ndiscovery:\n  classifiers:\n    - name: Employee Code\n      values: 'E-[0-9]{6}'\n      columns: 'employee|staff'\n    - name: Department\n      dictionary: departments.txt\n",
    )
    .expect("veil.yaml");
    let report = run(dir.path(), DiscoverOptions::default()).await;
    let f = &report.tables[0].findings;
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(
        (f[0].column.as_str(), f[0].tag.as_str(), f[0].confidence),
        ("EMPLOYEE_CODE", "Discovered.Employee Code", 1.0)
    );
    assert_eq!(
        (f[1].column.as_str(), f[1].tag.as_str(), f[1].confidence),
        ("DEPARTMENT", "Discovered.Department", 0.8)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn excluded_tables_and_schemas_are_never_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(
        dir.path(),
        &labelled(300, 8),
        "  discovery:\n    exclude: [ANALYTICS.PUBLIC.CUSTOMERS_CSV]\n",
    );
    let report = run(dir.path(), DiscoverOptions::default()).await;
    assert_eq!(report.tables[0].status, TableStatus::Excluded);
    assert!(report.tables[0].findings.is_empty() && report.tables[0].rows_read == 0);
    assert_eq!(report.tables[1].status, TableStatus::Scanned);
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(
        dir.path(),
        &labelled(300, 8),
        "  discovery:\n    exclude: [ANALYTICS.PUBLIC]\n",
    );
    let report = run(dir.path(), DiscoverOptions::default()).await;
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.status == TableStatus::Excluded)
    );
    // --tables narrows the run.
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), &labelled(300, 8), "");
    let report = run(
        dir.path(),
        DiscoverOptions {
            tables: Some("*parquet".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(report.tables.len(), 1);
}

#[test]
fn a_bad_regex_is_a_load_error_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.csv"), "a\n1\n").expect("csv");
    std::fs::write(
        dir.path().join("veil.yaml"),
        "tables:\n  - name: T\n    location: t.csv\n    columns:\n      - {name: A, type: VARCHAR}\ndiscovery:\n  classifiers:\n    - name: Fine\n      values: 'x+'\n    - name: Broken\n      values: 'E-(0-9'\n",
    )
    .expect("veil.yaml");
    let e = load_workspace(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("veil.yaml:10") && e.contains("Broken") && e.contains("values"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lint_reports_discovered_columns_no_policy_reaches_with_their_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    workspace(dir.path(), &labelled(300, 9), "");
    let report = run(
        dir.path(),
        DiscoverOptions {
            tables: Some("*PARQUET".into()),
            ..Default::default()
        },
    )
    .await;
    write(&load_workspace(dir.path()).expect("loads"), &report).expect("write");
    let engine = Engine::load(dir.path()).await.expect("engine");
    let findings = veil_engine::tools::lint::lint(&engine).await.expect("lint");
    let coverage: Vec<_> = findings
        .iter()
        .filter(|f| f.code == "sensitive-column-unprotected")
        .collect();
    // Ten discovered columns, the e-mail masked: nine read raw by ALICE.
    assert_eq!(coverage.len(), 9, "{coverage:#?}");
    assert!(
        coverage
            .iter()
            .all(|f| f.message.ends_with("read it raw: ALICE")),
        "{coverage:#?}"
    );
    assert!(
        coverage
            .iter()
            .any(|f| f.location.ends_with("CUSTOMERS_PARQUET.SSN"))
    );
    assert!(!coverage.iter().any(|f| f.location.ends_with(".EMAIL")));
}
