//! Tags that follow the data (SPEC §7.1): the catalog journal and lineage
//! tag propagation on `testdata/lineage` (CUSTOMER → CUSTOMER_2 →
//! CUSTOMER_3, CONTACTS a second ancestor of CUSTOMER_3.EMAIL, a hash mask
//! keyed on tag PII). One test per propagation rule, named for it; queries
//! run in both enforcement modes. Each test works on its own copy of the
//! workspace, since the journal is written under `state/`.

use std::path::Path;

use veil_engine::model::{ColumnRef, TableName, TagSource, TagState};
use veil_engine::{EnforcementMode, Engine, SessionOptions};

use crate::common::{Failed, MODES, rows, runtime, testdata};

/// A fresh copy of `testdata/lineage` (the journal is written into it).
pub(crate) fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&testdata("lineage"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if entry.file_name() != "state" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// `CRM.CORE.<table>.<column>`.
pub(crate) fn col(table: &str, column: &str) -> ColumnRef {
    ColumnRef::new(
        TableName {
            database: "CRM".into(),
            schema: "CORE".into(),
            table: table.into(),
        },
        column,
    )
}

pub(crate) fn load(dir: &Path) -> Engine {
    runtime()
        .block_on(Engine::load(dir))
        .expect("workspace loads")
}

/// Records the chain's lineage: CUSTOMER → CUSTOMER_2 → CUSTOMER_3 (ID,
/// EMAIL; NAME to CUSTOMER_2), CONTACTS.EMAIL → CUSTOMER_3.EMAIL.
fn chain(engine: &Engine, retroactive: bool) {
    runtime()
        .block_on(engine.record_catalog("ADMIN", |r| {
            for c in ["ID", "NAME", "EMAIL"] {
                r.add_lineage(
                    &col("CUSTOMER_2", c),
                    &[col("CUSTOMER", c)],
                    Some("q1"),
                    retroactive,
                );
            }
            for c in ["ID", "EMAIL"] {
                r.add_lineage(
                    &col("CUSTOMER_3", c),
                    &[col("CUSTOMER_2", c)],
                    Some("q2"),
                    retroactive,
                );
            }
            r.add_lineage(
                &col("CUSTOMER_3", "EMAIL"),
                &[col("CONTACTS", "EMAIL")],
                Some("q2"),
                retroactive,
            );
            Ok(())
        }))
        .expect("lineage records");
}

pub(crate) fn add(engine: &Engine, column: &ColumnRef, tag: &str) {
    runtime()
        .block_on(engine.add_tag("ADMIN", column, tag, TagSource::Manual))
        .expect("tag added");
}

fn remove(engine: &Engine, column: &ColumnRef, tag: &str) -> Result<(), String> {
    runtime()
        .block_on(engine.remove_tag("ADMIN", column, tag))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The active tag `tag` on `column`: (source, origin).
pub(crate) fn active(
    engine: &Engine,
    column: &ColumnRef,
    tag: &str,
) -> Option<(TagSource, Option<String>)> {
    let ws = engine.workspace();
    let c = ws.table(&column.table)?.column(&column.column)?.clone();
    c.tags
        .iter()
        .find(|t| t.name == tag)
        .map(|t| (t.source, t.origin.as_ref().map(ToString::to_string)))
}

fn removed_state(engine: &Engine, column: &ColumnRef, tag: &str) -> Option<TagState> {
    let ws = engine.workspace();
    let c = ws.table(&column.table)?.column(&column.column)?.clone();
    c.removed_tags
        .iter()
        .find(|t| t.name == tag)
        .map(|t| t.state)
}

/// The EMAIL values `user` sees in `table`, by id.
fn emails(engine: &Engine, user: &str, table: &str, mode: EnforcementMode) -> Vec<String> {
    let session = engine
        .session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user(user)
        })
        .expect("session opens");
    let batches = runtime()
        .block_on(session.sql(&format!("select email from {table} order by id")))
        .expect("query runs");
    rows(&batches).into_iter().map(|r| r[0].clone()).collect()
}

fn is_hash(value: &str) -> bool {
    !value.contains('@') && value.chars().all(|c| c.is_ascii_hexdigit())
}

pub(crate) fn check(ok: bool, what: impl Into<String>) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(what.into().into()) }
}

#[test]
fn rule1_tag_propagates_to_every_descendant_with_its_origin() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    for mode in MODES {
        check(
            emails(&engine, "BOB", "customer_3", mode)
                .iter()
                .all(|e| e.contains('@')),
            "CUSTOMER_3 is raw before any tag",
        )?;
    }
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    let origin = Some("CRM.CORE.CUSTOMER.EMAIL".to_string());
    for t in ["CUSTOMER_2", "CUSTOMER_3"] {
        check(
            active(&engine, &col(t, "EMAIL"), "PII.Email")
                == Some((TagSource::Lineage, origin.clone())),
            format!("{t}.EMAIL carries PII.Email through lineage from CUSTOMER.EMAIL"),
        )?;
    }
    check(
        active(&engine, &col("CUSTOMER_2", "NAME"), "PII.Email").is_none(),
        "the tag goes only along the EMAIL edges",
    )?;
    // The hash mask keyed on PII reaches CUSTOMER_3 at the next statement.
    for mode in MODES {
        let bob = emails(&engine, "BOB", "customer_3", mode);
        check(
            bob.len() == 3 && bob.iter().all(|e| is_hash(e)),
            format!("{mode:?}: BOB sees hashes on CUSTOMER_3, got {bob:?}"),
        )?;
        let alice = emails(&engine, "ALICE", "customer_3", mode);
        check(
            alice.iter().any(|e| e == "ann@example.com"),
            format!("{mode:?}: ALICE (Compliance) sees raw values, got {alice:?}"),
        )?;
    }
    Ok(())
}

#[test]
fn rule2_existing_tags_do_not_cross_new_lineage() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    chain(&engine, false);
    check(
        active(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email").is_none(),
        "a tag older than the lineage does not propagate",
    )?;
    for mode in MODES {
        check(
            emails(&engine, "BOB", "customer_2", mode)
                .iter()
                .all(|e| e.contains('@')),
            "CUSTOMER_2 stays unmasked",
        )?;
    }
    // A tag added after the lineage does.
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Contact");
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Contact").is_some(),
        "a tag added after the lineage propagates",
    )?;
    Ok(())
}

#[test]
fn rule2_retroactive_ingestion_carries_existing_tags() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    chain(&engine, true);
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email")
            == Some((TagSource::Lineage, Some("CRM.CORE.CUSTOMER.EMAIL".into()))),
        "--retroactive carries the tag down the whole chain with its origin",
    )?;
    for mode in MODES {
        check(
            emails(&engine, "BOB", "customer_3", mode)
                .iter()
                .all(|e| is_hash(e)),
            "CUSTOMER_3 is hashed",
        )?;
    }
    Ok(())
}

#[test]
fn rule3_removing_a_propagated_tag_soft_deletes_it() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    remove(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email")?;
    check(
        removed_state(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email")
            == Some(TagState::SoftDeleted),
        "CUSTOMER_2.EMAIL shows the tag soft-deleted",
    )?;
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_some(),
        "CUSTOMER_3 still derives from the tagged CUSTOMER.EMAIL",
    )?;
    for mode in MODES {
        check(
            emails(&engine, "BOB", "customer_2", mode)
                .iter()
                .all(|e| e.contains('@')),
            "the soft-deleted tag no longer masks CUSTOMER_2",
        )?;
    }
    // A later propagation of the same tag does not re-add it.
    remove(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email")?;
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    check(
        active(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email").is_none()
            && removed_state(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email")
                == Some(TagState::SoftDeleted),
        "propagation skips the soft-deleted column",
    )?;
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_some(),
        "and goes on past it",
    )?;
    Ok(())
}

#[test]
fn rule4_removing_from_an_ancestor_keeps_what_another_ancestor_supplies() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    add(&engine, &col("CONTACTS", "EMAIL"), "PII.Email");
    remove(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email")?;
    check(
        active(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email").is_none()
            && removed_state(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email")
                == Some(TagState::Removed),
        "CUSTOMER_2 had only CUSTOMER as ancestor: the tag is removed",
    )?;
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email")
            == Some((TagSource::Lineage, Some("CRM.CORE.CONTACTS.EMAIL".into()))),
        "the second ancestor CONTACTS still supplies CUSTOMER_3, now its origin",
    )?;
    for mode in MODES {
        check(
            emails(&engine, "BOB", "customer_3", mode)
                .iter()
                .all(|e| is_hash(e)),
            "CUSTOMER_3 stays hashed",
        )?;
        check(
            emails(&engine, "BOB", "customer_2", mode)
                .iter()
                .all(|e| e.contains('@')),
            "CUSTOMER_2 is raw again",
        )?;
    }
    remove(&engine, &col("CONTACTS", "EMAIL"), "PII.Email")?;
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_none(),
        "with no ancestor left, CUSTOMER_3 loses the tag",
    )?;
    Ok(())
}

#[test]
fn rule5_snowflake_object_tags_cannot_be_removed() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let err = remove(&engine, &col("CONTACTS", "PHONE"), "SENSITIVITY")
        .err()
        .ok_or("removing a Snowflake object tag must fail")?;
    check(
        err.contains("Snowflake object tag") && err.contains("DDL"),
        format!("the error says to remove it in the DDL: {err}"),
    )?;
    check(
        active(&engine, &col("CONTACTS", "PHONE"), "SENSITIVITY").map(|a| a.0)
            == Some(TagSource::Snowflake),
        "the tag stays",
    )?;
    check(
        !dir.path().join("state/catalog.jsonl").exists()
            || std::fs::read_to_string(dir.path().join("state/catalog.jsonl"))?.is_empty(),
        "nothing was written to the journal",
    )?;
    Ok(())
}

#[test]
fn rule6_the_tag_filter_limits_what_propagates() -> Result<(), Failed> {
    let dir = workspace();
    let manifest = dir.path().join("veil.yaml");
    let text = std::fs::read_to_string(&manifest)?.replace(
        "  administrators: [ADMIN]\n",
        "  administrators: [ADMIN]\n  lineage: {tags: [PII]}\n",
    );
    std::fs::write(&manifest, text)?;
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    add(&engine, &col("CUSTOMER", "EMAIL"), "Marketing");
    add(&engine, &col("CUSTOMER", "EMAIL"), "PIIX");
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_some(),
        "PII.Email is under PII: it propagates",
    )?;
    check(
        active(&engine, &col("CUSTOMER_2", "EMAIL"), "Marketing").is_none()
            && active(&engine, &col("CUSTOMER_2", "EMAIL"), "PIIX").is_none(),
        "Marketing and PIIX are not under PII: they stay put",
    )?;
    Ok(())
}

#[test]
fn rule7_a_dropped_table_keeps_its_edges() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    drop(engine);
    // CUSTOMER_2 leaves the workspace: the journal still loads, its edges
    // stay, and a tag on CUSTOMER still reaches CUSTOMER_3 through them.
    let manifest = dir.path().join("veil.yaml");
    let text = std::fs::read_to_string(&manifest)?;
    let start = text
        .find("  - name: CRM.CORE.CUSTOMER_2")
        .ok_or("table in yaml")?;
    let end = text
        .find("  - name: CRM.CORE.CUSTOMER_3")
        .ok_or("table in yaml")?;
    let text = format!("{}{}", &text[..start], &text[end..]).replace(" CRM.CORE.CUSTOMER_2,", "");
    std::fs::write(&manifest, text)?;
    let engine = load(dir.path());
    let ws = engine.workspace();
    check(
        ws.journal
            .graph
            .has_edge(&col("CUSTOMER", "EMAIL"), &col("CUSTOMER_2", "EMAIL")),
        "the edge to the dropped table stays",
    )?;
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_some(),
        "propagation walks through the dropped table's edges",
    )?;
    Ok(())
}

#[test]
fn rule8_every_propagation_is_audited_and_applies_at_the_next_statement() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let audit = dir.path().join("audit.jsonl");
    engine.set_audit_log(&audit)?;
    chain(&engine, false);
    let before = engine.version();
    let bob = engine.session("BOB")?;
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    check(
        engine.version() > before,
        "the tag change installed a new version",
    )?;
    // The session opened before the change sees it at its next statement.
    let got = rows(&runtime().block_on(bob.sql("select email from customer_3 order by id"))?);
    check(
        got.iter().all(|r| is_hash(&r[0])),
        format!("the open session's next statement is masked: {got:?}"),
    )?;
    let records = veil_engine::audit::read_log(&audit)?.0;
    let propagated: Vec<_> = records
        .iter()
        .filter(|r| r.action == "TAG_PROPAGATED")
        .collect();
    check(
        propagated.len() == 2,
        format!("two propagations, got {}", propagated.len()),
    )?;
    for target in ["CRM.CORE.CUSTOMER_2.EMAIL", "CRM.CORE.CUSTOMER_3.EMAIL"] {
        check(
            propagated.iter().any(|r| {
                r.targets.first().map(String::as_str) == Some(target)
                    && r.tag.as_deref() == Some("PII.Email")
                    && r.origin.as_deref() == Some("CRM.CORE.CUSTOMER.EMAIL")
            }),
            format!("an audit record names tag, origin and target {target}"),
        )?;
    }
    check(
        records.iter().any(|r| r.action == "TAG_ADDED"),
        "the tag change itself is audited",
    )?;
    Ok(())
}

#[test]
fn journal_round_trip_in_a_fresh_engine() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    remove(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email")?;
    let snapshot = |e: &Engine| {
        e.workspace()
            .tables
            .iter()
            .flat_map(|t| t.columns.iter().map(move |c| (t.name.clone(), c.clone())))
            .map(|(t, c)| format!("{t}.{} {:?} {:?}", c.name, c.tags, c.removed_tags))
            .collect::<Vec<_>>()
    };
    let fresh = load(dir.path());
    check(
        snapshot(&engine) == snapshot(&fresh),
        "a fresh engine folds the same tags",
    )?;
    check(
        fresh.workspace().journal.graph.edge_count() == 6,
        "and the same lineage",
    )?;
    Ok(())
}

#[test]
fn journal_torn_last_line_is_skipped_with_a_warning() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    let path = dir.path().join("state/catalog.jsonl");
    let mut text = std::fs::read_to_string(&path)?;
    // A crash in the middle of the next change's first line.
    text.push_str("{\"time\":\"2026-12-03T07:00:00Z\",\"actor\":\"ADMIN\",\"kind\":\"tag_ad");
    std::fs::write(&path, &text)?;
    let fresh = load(dir.path());
    let warnings = fresh.workspace().warnings;
    check(
        warnings
            .iter()
            .any(|w| w.contains("catalog.jsonl:") && w.contains("incomplete")),
        format!("a warning names the torn line: {warnings:?}"),
    )?;
    check(
        active(&fresh, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_some(),
        "the complete changes before it apply",
    )?;
    // The next change cuts the torn line off and stands alone.
    add(&fresh, &col("CUSTOMER", "NAME"), "PII.Name");
    let again = load(dir.path());
    check(
        again
            .workspace()
            .warnings
            .iter()
            .all(|w| !w.contains("incomplete")),
        "repaired",
    )?;
    check(
        active(&again, &col("CUSTOMER_2", "NAME"), "PII.Name").is_some(),
        "the new change is in the journal",
    )?;
    Ok(())
}

#[test]
fn journal_garbled_line_is_an_error_naming_the_line() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    let path = dir.path().join("state/catalog.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len();
    check(n >= 3, "the journal has several lines")?;
    // Line 2 truncated in the middle (followed by more lines): corruption.
    let half = lines[1].len() / 2;
    lines[1].truncate(half);
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let err = runtime()
        .block_on(Engine::load(dir.path()))
        .err()
        .ok_or("a garbled journal line must fail the load")?
        .to_string();
    check(
        err.contains("state/catalog.jsonl:2") && err.contains("not applied"),
        format!("the error names line 2: {err}"),
    )?;
    // An unknown kind on the last line is an error too, with its number.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[n - 1] = lines[n - 1].replace("tag_propagated", "tag_teleported");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let err = runtime()
        .block_on(Engine::load(dir.path()))
        .err()
        .ok_or("an unknown kind must fail the load")?
        .to_string();
    check(
        err.contains(&format!("state/catalog.jsonl:{n}")) && err.contains("tag_teleported"),
        format!("the error names line {n} and the kind: {err}"),
    )?;
    Ok(())
}

fn ingest(
    engine: &Engine,
    text: &str,
    retroactive: bool,
) -> Result<veil_engine::load::journal::access_history::IngestReport, String> {
    runtime()
        .block_on(engine.ingest_lineage("ADMIN", text, "access_history.json", retroactive))
        .map(|(_, report)| report)
        .map_err(|e| e.to_string())
}

fn access_history() -> String {
    std::fs::read_to_string(testdata("lineage").join("access_history.json")).expect("fixture")
}

#[test]
fn ingest_access_history_records_the_customer_chain() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let report = ingest(&engine, &access_history(), false)?;
    check(
        report.rows == 2 && report.edges == 6 && report.new_edges == 6,
        format!("{report:?}"),
    )?;
    let ws = engine.workspace();
    check(
        ws.journal
            .graph
            .has_edge(&col("CUSTOMER_2", "EMAIL"), &col("CUSTOMER_3", "EMAIL"))
            && ws
                .journal
                .graph
                .has_edge(&col("CONTACTS", "EMAIL"), &col("CUSTOMER_3", "EMAIL")),
        "both ancestors of CUSTOMER_3.EMAIL are edges",
    )?;
    // Ingesting the same rows again adds nothing.
    let again = ingest(&engine, &access_history(), false)?;
    check(again.new_edges == 0, "known edges are not recorded twice")?;
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    for mode in MODES {
        check(
            emails(&engine, "BOB", "customer_3", mode)
                .iter()
                .all(|e| is_hash(e)),
            format!(
                "{mode:?}: the hash mask reaches CUSTOMER_3 after the tag is added on CUSTOMER"
            ),
        )?;
    }
    Ok(())
}

#[test]
fn ingest_retroactive_propagates_existing_tags() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    let report = ingest(&engine, &access_history(), false)?;
    check(report.propagated == 0, "not retroactive by default")?;
    check(
        active(&engine, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_none(),
        "no tag yet",
    )?;
    let dir2 = workspace();
    let engine2 = load(dir2.path());
    add(&engine2, &col("CUSTOMER", "EMAIL"), "PII.Email");
    let report = ingest(&engine2, &access_history(), true)?;
    check(
        report.propagated == 2,
        format!("--retroactive propagates to two columns: {report:?}"),
    )?;
    check(
        active(&engine2, &col("CUSTOMER_3", "EMAIL"), "PII.Email").is_some(),
        "tagged",
    )?;
    Ok(())
}

#[test]
fn ingest_ignores_views_and_reports_unknown_objects() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let rows = r#"{"query_id":"v1","objects_modified":[{"objectName":"CRM.CORE.CUSTOMER_VIEW","objectDomain":"View","columns":[{"columnName":"EMAIL","directSources":[{"objectName":"CRM.CORE.CUSTOMER","columnName":"EMAIL","objectDomain":"Table"}]}]}]}
{"query_id":"u1","objects_modified":[{"objectName":"CRM.CORE.NOWHERE","objectDomain":"Table","columns":[{"columnName":"EMAIL","directSources":[{"objectName":"CRM.CORE.CUSTOMER","columnName":"EMAIL","objectDomain":"Table"}]}]}]}
{"query_id":"b1","objects_modified":[{"objectName":"crm.core.customer_3","objectDomain":"Table","columns":[{"columnName":"EMAIL","directSources":[{"objectName":"CRM.CORE.CUSTOMER_VIEW","columnName":"EMAIL","objectDomain":"View"}],"baseSources":[{"objectName":"CRM.CORE.CUSTOMER","columnName":"EMAIL","objectDomain":"Table"}]}]}]}
"#;
    let report = ingest(&engine, rows, false)?;
    check(
        report.ignored_views == 1,
        format!("the view row is ignored: {report:?}"),
    )?;
    check(
        report.unknown.contains("table CRM.CORE.NOWHERE"),
        format!("the unknown table is reported: {:?}", report.unknown),
    )?;
    check(
        engine
            .workspace()
            .journal
            .graph
            .has_edge(&col("CUSTOMER", "EMAIL"), &col("CUSTOMER_3", "EMAIL")),
        "a source read through a view resolves to its base table column",
    )?;
    check(
        engine.workspace().journal.graph.edge_count() == 1,
        "only that edge",
    )?;
    Ok(())
}

#[test]
fn ingest_malformed_access_history_names_the_line_and_records_nothing() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let good = r#"{"query_id":"a","objects_modified":[{"objectName":"CRM.CORE.CUSTOMER_2","objectDomain":"Table","columns":[{"columnName":"EMAIL","directSources":[{"objectName":"CRM.CORE.CUSTOMER","columnName":"EMAIL","objectDomain":"Table"}]}]}]}"#;
    let text = format!("{good}\n{{\"query_id\":\"b\",\"objects_modified\":[{{\"objectName\":\n");
    let err = ingest(&engine, &text, false)
        .err()
        .ok_or("a malformed row must fail")?;
    check(
        err.contains("access_history.json:2") && err.contains("nothing was ingested"),
        format!("the error names line 2: {err}"),
    )?;
    // A JSON array with a wrongly typed field: the error names its line.
    let text = "[\n  {\"query_id\": \"a\", \"objects_modified\": []},\n  {\"query_id\": \"b\", \"objects_modified\": 7}\n]";
    let err = ingest(&engine, text, false)
        .err()
        .ok_or("a wrongly typed row must fail")?;
    check(
        err.contains("access_history.json:3"),
        format!("the error names line 3: {err}"),
    )?;
    check(
        engine.workspace().journal.graph.is_empty(),
        "no lineage was recorded",
    )?;
    check(
        !dir.path().join("state/catalog.jsonl").exists()
            || std::fs::read_to_string(dir.path().join("state/catalog.jsonl"))?.is_empty(),
        "nothing was appended",
    )?;
    Ok(())
}

#[test]
fn explain_names_a_propagated_tags_origin() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    for mode in MODES {
        let bob = engine.session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user("BOB")
        })?;
        let text = bob.explain("select email from customer_3")?.to_string();
        check(
            text.contains(
                "column EMAIL is tagged PII.Email through lineage from CRM.CORE.CUSTOMER.EMAIL",
            ),
            format!("explain names the origin: {text}"),
        )?;
    }
    Ok(())
}

#[test]
fn lint_reports_removed_tags_under_policies_and_lineage_to_missing_tables() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    remove(&engine, &col("CUSTOMER_2", "EMAIL"), "PII.Email")?;
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&engine))?;
    check(
        findings.iter().any(|f| {
            f.code == "tag-policy-reaches-only-removed-tags"
                && f.location == "CRM.CORE.CUSTOMER_2.EMAIL"
                && f.message.contains("hash-pii")
                && f.message.contains("soft-deleted")
        }),
        format!("lint names the soft-deleted tag under hash-pii: {findings:?}"),
    )?;
    check(
        !findings
            .iter()
            .any(|f| f.code == "lineage-to-missing-table"),
        "no missing table yet",
    )?;
    // Drop CONTACTS from the workspace: its edge to CUSTOMER_3 stays.
    let manifest = dir.path().join("veil.yaml");
    let text = std::fs::read_to_string(&manifest)?;
    let start = text
        .find("  - name: CRM.CORE.CONTACTS")
        .ok_or("table in yaml")?;
    let end = text.find("\nroles:").ok_or("roles in yaml")?;
    let text = format!("{}{}", &text[..start], &text[end..]).replace(", CRM.CORE.CONTACTS]", "]");
    std::fs::write(&manifest, text)?;
    std::fs::remove_file(dir.path().join("tags.sql"))?;
    let engine = load(dir.path());
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&engine))?;
    check(
        findings
            .iter()
            .any(|f| f.code == "lineage-to-missing-table" && f.location == "CRM.CORE.CONTACTS"),
        format!("lint names the dropped table with lineage: {findings:?}"),
    )?;
    Ok(())
}

#[test]
fn diff_sees_a_journal_tag() -> Result<(), Failed> {
    let old = workspace();
    let new = workspace();
    let engine = load(new.path());
    chain(&engine, false);
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII.Email");
    let report = runtime().block_on(veil_engine::tools::diff::diff(
        &load(old.path()),
        &load(new.path()),
    ))?;
    let text = report.to_string();
    check(
        report.changes.iter().any(|c| {
            c.user == "BOB"
                && c.table.contains("CUSTOMER_3")
                && c.columns
                    .iter()
                    .any(|col| col.column == "EMAIL" && col.new.contains("hash"))
        }),
        format!("diff shows BOB's CUSTOMER_3.EMAIL becoming hashed: {text}"),
    )?;
    check(
        !report.changes.iter().any(|c| {
            c.user == "ALICE"
                && c.columns
                    .iter()
                    .any(|col| col.column == "EMAIL" && col.new.contains("hash"))
        }),
        "ALICE (Compliance) is exempt",
    )?;
    Ok(())
}
