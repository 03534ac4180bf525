//! Lineage captured from administrators' writes through Veil (SPEC §7.1):
//! `CREATE TABLE ... AS SELECT` and `INSERT INTO ... SELECT` on
//! `testdata/lineage` write Parquet under the workspace, declare the new
//! table in the catalog journal and record each written column's sources,
//! read from the query's logical plan; tags on the sources follow.

use std::path::Path;

use veil_engine::model::{ColumnRef, TagSource};
use veil_engine::{EnforcementMode, Engine, SessionOptions};

use crate::common::{Failed, MODES, rows, runtime};
use crate::lineage::{active, add, check, col, load, workspace};

fn admin(engine: &Engine, sql: &str) -> Result<Vec<Vec<String>>, String> {
    runtime()
        .block_on(engine.admin_sql(sql))
        .map(|b| rows(&b))
        .map_err(|e| e.to_string())
}

fn edge(engine: &Engine, source: &ColumnRef, target: &ColumnRef) -> bool {
    engine.workspace().journal.graph.has_edge(source, target)
}

/// Grants ANALYST the tables Veil created, as an administrator would after
/// a `CREATE TABLE` (Snowflake grants on a new table are explicit too).
fn grant(dir: &Path, tables: &[&str]) {
    let path = dir.join("veil.yaml");
    let text = std::fs::read_to_string(&path).expect("read veil.yaml");
    let extra: String = tables.iter().map(|t| format!(", CRM.CORE.{t}")).collect();
    let text = text.replace(
        "CRM.CORE.CONTACTS]}",
        &format!("CRM.CORE.CONTACTS{extra}]}}"),
    );
    std::fs::write(&path, text).expect("write veil.yaml");
}

fn contacts(engine: &Engine, user: &str, mode: EnforcementMode) -> Vec<String> {
    let session = engine
        .session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user(user)
        })
        .expect("session opens");
    let batches = runtime()
        .block_on(session.sql("select contact from customer_4 order by id"))
        .expect("query runs");
    rows(&batches).into_iter().map(|r| r[0].clone()).collect()
}

#[test]
fn create_table_as_select_records_projection_lineage_and_carries_tags() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII");
    let status = admin(
        &engine,
        "create table customer_4 as select id, upper(name) as name_upper, email as contact from customer where id > 1",
    )?;
    check(
        status == vec![vec!["Table CUSTOMER_4 successfully created.".to_string()]],
        format!("status {status:?}"),
    )?;
    let ws = engine.workspace();
    let table = ws
        .table(&col("CUSTOMER_4", "ID").table)
        .ok_or("CUSTOMER_4 is declared at once")?;
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.declared))
        .collect();
    check(
        columns
            == [
                "ID NUMBER(38,0)",
                "NAME_UPPER VARCHAR(16777216)",
                "CONTACT VARCHAR(16777216)",
            ],
        format!("columns {columns:?}"),
    )?;
    check(
        table
            .location
            .starts_with(dir.path().join("data/veil/CRM/CORE/CUSTOMER_4")),
        format!("location {}", table.location.display()),
    )?;
    // The projection's sources, not the WHERE clause's: ID, in the WHERE,
    // is a source of ID only.
    for (from, to, source) in [
        ("EMAIL", "CONTACT", true),
        ("NAME", "NAME_UPPER", true),
        ("ID", "ID", true),
        ("ID", "CONTACT", false),
    ] {
        check(
            edge(&engine, &col("CUSTOMER", from), &col("CUSTOMER_4", to)) == source,
            format!("{from} -> {to} should be an edge: {source}"),
        )?;
    }
    check(
        active(&engine, &col("CUSTOMER_4", "CONTACT"), "PII")
            == Some((
                TagSource::Lineage,
                Some("CRM.CORE.CUSTOMER.EMAIL".to_string()),
            )),
        "PII follows EMAIL to the copy",
    )?;
    check(
        active(&engine, &col("CUSTOMER_4", "NAME_UPPER"), "PII").is_none(),
        "NAME carries no PII",
    )?;
    // The administrator reads the copy back, raw.
    let raw = admin(&engine, "select count(*), min(contact) from customer_4")?;
    let source = admin(
        &engine,
        "select count(*), min(email) from customer where id > 1",
    )?;
    check(raw == source, format!("copy {raw:?} vs source {source:?}"))
}

#[test]
fn created_tables_survive_a_reload_and_users_see_them_masked() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    add(&engine, &col("CUSTOMER", "EMAIL"), "PII");
    admin(
        &engine,
        "create table customer_4 as select id, email as contact from customer",
    )?;
    grant(dir.path(), &["CUSTOMER_4"]);
    let engine = load(dir.path());
    check(
        active(&engine, &col("CUSTOMER_4", "CONTACT"), "PII").is_some(),
        "the propagated tag is in the journal",
    )?;
    let raw = admin(&engine, "select contact from customer_4 order by id")?;
    for mode in MODES {
        let bob = contacts(&engine, "BOB", mode);
        check(
            bob.len() == raw.len()
                && bob
                    .iter()
                    .zip(&raw)
                    .all(|(b, r)| !b.contains('@') && *b != r[0]),
            format!("{mode:?}: BOB sees {bob:?}"),
        )?;
        let alice = contacts(&engine, "ALICE", mode);
        check(
            alice.iter().zip(&raw).all(|(a, r)| *a == r[0]),
            format!("{mode:?}: ALICE (Compliance) sees {alice:?}"),
        )?;
    }
    Ok(())
}

#[test]
fn insert_select_appends_and_a_later_tag_follows_its_lineage() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    admin(
        &engine,
        "create table customer_4 as select id, email as contact from customer where id < 0",
    )?;
    let inserted = admin(
        &engine,
        "insert into customer_4 select c.id, ct.email from customer c join contacts ct on c.id = ct.id \
         union all select id, email from customer_2",
    )?;
    let expected = admin(
        &engine,
        "select count(*) from (select c.id from customer c join contacts ct on c.id = ct.id union all select id from customer_2)",
    )?;
    check(
        inserted == expected,
        format!("inserted {inserted:?}, expected {expected:?}"),
    )?;
    let total = admin(&engine, "select count(*) from customer_4")?;
    check(total == expected, format!("table holds {total:?}"))?;
    for source in [col("CONTACTS", "EMAIL"), col("CUSTOMER_2", "EMAIL")] {
        check(
            edge(&engine, &source, &col("CUSTOMER_4", "CONTACT")),
            format!("{source} -> CONTACT (both sides of the UNION)"),
        )?;
    }
    check(
        !edge(
            &engine,
            &col("CONTACTS", "ID"),
            &col("CUSTOMER_4", "CONTACT"),
        ),
        "a join key is not a source",
    )?;
    // Rule 1 through captured lineage: a tag added afterwards propagates.
    add(&engine, &col("CONTACTS", "EMAIL"), "PII");
    check(
        active(&engine, &col("CUSTOMER_4", "CONTACT"), "PII")
            == Some((
                TagSource::Lineage,
                Some("CRM.CORE.CONTACTS.EMAIL".to_string()),
            )),
        "PII added on CONTACTS.EMAIL reaches CUSTOMER_4.CONTACT",
    )
}

#[test]
fn refused_writes_name_the_cause_and_leave_nothing_behind() -> Result<(), Failed> {
    let dir = workspace();
    let engine = load(dir.path());
    let journal = dir.path().join("state/catalog.jsonl");
    let cases = [
        (
            "create table customer as select * from customer_2",
            "CRM.CORE.CUSTOMER: the table already exists (declared at veil.yaml:",
        ),
        (
            "insert into customer_2 select * from customer",
            "Veil appends only to tables it created",
        ),
        (
            "create table customer_5 as select upper(email) from customer",
            "needs a name: add AS NAME",
        ),
        (
            "create or replace table customer_5 as select id from customer",
            "Veil creates new tables only",
        ),
        (
            "create table customer_5 as select id from no_such_table",
            "NO_SUCH_TABLE",
        ),
    ];
    for (sql, expected) in cases {
        let err = admin(&engine, sql)
            .err()
            .ok_or_else(|| format!("{sql}: accepted"))?;
        check(err.contains(expected), format!("{sql}: {err}"))?;
    }
    check(!journal.exists(), "nothing was recorded")?;
    check(
        !dir.path().join("data/veil").exists()
            || std::fs::read_dir(dir.path().join("data/veil/CRM/CORE"))
                .map(|d| d.count() == 0)
                .unwrap_or(true),
        "no data was left behind",
    )?;
    check(
        engine
            .workspace()
            .table(&col("CUSTOMER_5", "ID").table)
            .is_none(),
        "no table was declared",
    )
}

#[test]
fn a_garbled_table_created_event_is_an_error_naming_the_line() -> Result<(), Failed> {
    let dir = workspace();
    std::fs::create_dir_all(dir.path().join("state")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("state/catalog.jsonl"),
        "{\"time\":\"2026-12-03T06:30:00Z\",\"actor\":\"ADMIN\",\"kind\":\"table_created\",\"table\":\"CRM.CORE.T\",\"location\":\"../outside\",\"columns\":[{\"name\":\"ID\",\"type\":\"NUMBER(38,0)\"}]}\n",
    )
    .map_err(|e| e.to_string())?;
    let err = runtime()
        .block_on(Engine::load(dir.path()))
        .err()
        .ok_or("a location outside the workspace loads")?
        .to_string();
    check(
        err.contains("state/catalog.jsonl:1") && err.contains("inside the workspace"),
        err,
    )
}
