//! What a service embedding Veil uses: `Session::sql_stream` streams the
//! same masked rows as `Session::sql` (same check, policies and column
//! names), refuses a statement before any batch, and is audited once when
//! its stream ends; `veil_engine::RecordBatch` and `veil_engine::arrow` are
//! the engine's own arrow.

use veil_engine::{EnforcementMode, RecordBatch, Session, SessionOptions};

use crate::common::{Failed, MODES, rows, runtime, sample, session};

/// Streams `sql` to its end: the batches, or the error text of the call
/// or of the stream.
fn stream(session: &Session, sql: &str) -> Result<(Vec<String>, Vec<RecordBatch>), String> {
    runtime().block_on(async {
        let stream = session.sql_stream(sql).await.map_err(|e| e.to_string())?;
        let names: Vec<String> = stream
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = datafusion::physical_plan::common::collect(stream)
            .await
            .map_err(|e| e.to_string())?;
        Ok((names, batches))
    })
}

#[test]
fn sql_stream_returns_the_masked_rows_of_sql() -> Result<(), Failed> {
    let sql = "select id, name, email, ssn, balance, upper(region) from customers order by id";
    for mode in MODES {
        let bob = session("bob", None, mode);
        let collected = runtime().block_on(bob.sql(sql))?;
        let (names, streamed) = stream(&bob, sql)?;
        let expected = rows(&collected);
        let got = rows(&streamed);
        if got != expected {
            return Err(format!("{mode:?}: streamed {got:?}, sql gave {expected:?}").into());
        }
        // BOB sees the three EU rows, SSNs masked to their last four digits.
        if got.len() != 3 || !got.iter().all(|r| r[3].starts_with("nnn-nn-")) {
            return Err(format!("{mode:?}: not BOB's masked rows: {got:?}").into());
        }
        let expected_names: Vec<String> = collected[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if names != expected_names || names[5] != "UPPER(REGION)" {
            return Err(format!("{mode:?}: columns {names:?}, sql's {expected_names:?}").into());
        }
    }
    Ok(())
}

#[test]
fn sql_stream_refuses_before_streaming() -> Result<(), Failed> {
    let refused = |user: &str, sql: &str, text: &str| -> Result<(), Failed> {
        let s = session(user, None, EnforcementMode::Inlined);
        match runtime().block_on(s.sql_stream(sql)) {
            Ok(_) => Err(format!("{user}: '{sql}' started a stream").into()),
            Err(e) if e.to_string().contains(text) => Ok(()),
            Err(e) => Err(format!("{user}: '{sql}': expected '{text}', got: {e}").into()),
        }
    };
    refused(
        "erin",
        "select * from customers",
        "does not exist or not authorized",
    )?;
    refused("bob", "delete from customers", "not allowed")?;
    refused("bob", "select nope from customers", "NOPE")?;
    Ok(())
}

#[test]
fn sql_stream_applies_the_statement_timeout() -> Result<(), Failed> {
    let s = sample().session_with(SessionOptions {
        statement_timeout: Some(std::time::Duration::ZERO),
        ..SessionOptions::user("bob")
    })?;
    match stream(&s, "select id from customers") {
        Err(e) if e.contains("statement timeout") => Ok(()),
        other => Err(format!("expected a timeout, got {other:?}").into()),
    }
}

#[test]
fn sql_stream_is_audited_when_the_stream_ends() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("audit.jsonl");
    let engine =
        runtime().block_on(veil_engine::Engine::load(crate::common::testdata("sample")))?;
    engine.set_audit_log(&log)?;
    let bob = engine.session("bob")?;
    let started = runtime().block_on(bob.sql_stream("select id from customers"))?;
    let before = std::fs::read_to_string(&log).unwrap_or_default();
    if !before.is_empty() {
        return Err(format!("audited before the stream ended: {before}").into());
    }
    let batches = runtime().block_on(datafusion::physical_plan::common::collect(started))?;
    let text = std::fs::read_to_string(&log)?;
    let records: Vec<&str> = text.lines().collect();
    if records.len() != 1 || !records[0].contains("CUSTOMERS") {
        return Err(format!("expected one record naming CUSTOMERS: {text}").into());
    }
    if crate::common::rows(&batches).len() != 3 || !records[0].contains("\"rowsReturned\":3") {
        return Err(format!("expected 3 rows audited: {text}").into());
    }
    // A refused statement is audited at once.
    if runtime()
        .block_on(bob.sql_stream("select * from orders_secret"))
        .is_ok()
    {
        return Err("an unknown table started a stream".into());
    }
    let text = std::fs::read_to_string(&log)?;
    if text.lines().count() != 2 {
        return Err(format!("the refusal was not audited: {text}").into());
    }
    Ok(())
}

#[test]
fn arrow_is_reexported() -> Result<(), Failed> {
    let schema = std::sync::Arc::new(veil_engine::arrow::datatypes::Schema::empty());
    let batch: veil_engine::RecordBatch = veil_engine::arrow::array::RecordBatch::new_empty(schema);
    // The same type as DataFusion's: no second arrow.
    let _: &datafusion::arrow::array::RecordBatch = &batch;
    Ok(())
}
