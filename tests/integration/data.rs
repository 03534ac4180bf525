//! Broken data files: text in a number column, bytes that are not UTF-8,
//! ragged rows, dates that do not parse, numbers beyond `NUMBER(p,s)`. Each
//! fails every query on the table, in both enforcement modes, with a
//! sentence naming the table, file, line and column but never the value, and
//! `veil lint` reports each as an error at `file:line`.

use veil_engine::tools::lint::Severity;
use veil_engine::{EnforcementMode, Engine, SessionOptions};

use crate::common::{Failed, MODES, load, run, runtime, temp_workspace};

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// One table T (ID NUMBER(2,0), STATE NUMBER(2,0), BORN DATE, NAME
/// VARCHAR(10)) over `data/t.csv`, rows matched to the user's State
/// attribute: BOB's values include a number, ALICE's only text, so her
/// inlined row filter is `false` and reads no file.
const MANIFEST: &str = "\
settings: {default_database: ANALYTICS, default_schema: PUBLIC}
tables:
  - name: ANALYTICS.PUBLIC.T
    location: data/t.csv
    columns:
      - {name: ID, type: NUMBER(2,0)}
      - {name: STATE, type: NUMBER(2,0)}
      - {name: BORN, type: DATE}
      - {name: NAME, type: VARCHAR(10)}
roles:
  - {name: ANALYST, grants: [ANALYTICS.PUBLIC.T]}
users:
  - {name: BOB, roles: [ANALYST], groups: [Analysts], attributes: {State: ['NY', '12']}}
  - {name: ALICE, roles: [ANALYST], groups: [Analysts], attributes: {State: ['NY']}}
policies:
  - name: rows-by-state
    type: row
    on: {data_sources: [ANALYTICS.PUBLIC.T]}
    rule: {match_attribute: State, column: STATE}
  - name: analysts
    type: subscription
    on: {data_sources: [ANALYTICS.PUBLIC.T]}
    allow: {groups: [Analysts]}
";

const GOOD: &[u8] = b"id,state,born,name\n1,12,2020-01-01,Ann\n2,12,2020-02-02,Ben\n";

fn workspace(csv: &[u8]) -> tempfile::TempDir {
    let dir = temp_workspace(MANIFEST, &[]);
    write_csv(&dir, csv);
    dir
}

fn write_csv(dir: &tempfile::TempDir, csv: &[u8]) {
    let path = dir.path().join("data/t.csv");
    std::fs::create_dir_all(path.parent().expect("data dir")).expect("mkdir");
    std::fs::write(path, csv).expect("write csv");
}

fn query(engine: &Engine, user: &str, mode: EnforcementMode) -> Result<Vec<Vec<String>>, String> {
    let session = engine
        .session_with(SessionOptions {
            user: user.into(),
            role: None,
            purpose: None,
            mode: Some(mode),
            secondary_roles: None,
            statement_timeout: None,
        })
        .map_err(|e| e.to_string())?;
    run(&session, "SELECT id, state, born, name FROM t")
}

/// Every query on T fails, for both users in both modes, with exactly
/// `want`, and the message shows none of `hidden` (the bad value and its
/// row's data).
fn denied_with(engine: &Engine, want: &str, hidden: &[&str]) -> Result<(), Failed> {
    denied_for(engine, &["BOB", "ALICE"], want, hidden)
}

fn denied_for(engine: &Engine, users: &[&str], want: &str, hidden: &[&str]) -> Result<(), Failed> {
    for user in users {
        for mode in MODES {
            match query(engine, user, mode) {
                Ok(rows) => {
                    return Err(format!(
                        "{user} {mode:?}: the query returned {rows:?}; wanted {want:?}"
                    )
                    .into());
                }
                Err(e) => {
                    ensure(
                        e == want,
                        format!("{user} {mode:?}: got {e:?}\nwant {want:?}"),
                    )?;
                    for value in hidden {
                        ensure(
                            !e.contains(value),
                            format!("{user} {mode:?}: {e:?} shows {value:?}"),
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `veil lint` reports `code` as an error at `location` naming `needle`.
fn lint_finds(
    dir: &tempfile::TempDir,
    code: &str,
    location: &str,
    needle: &str,
) -> Result<(), Failed> {
    let engine = load(dir.path())?;
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&engine))?;
    ensure(
        findings.iter().any(|f| {
            f.code == code
                && f.severity == Severity::Error
                && f.location == location
                && f.message.contains(needle)
        }),
        format!(
            "no {code} error at {location} naming {needle:?} in:\n{}",
            findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    )
}

fn message(line: u32, column: Option<&str>, kind: &str) -> String {
    let column = column.map(|c| format!(": column {c}")).unwrap_or_default();
    format!(
        "Table ANALYTICS.PUBLIC.T: data file data/t.csv: line {line}{column}: {kind}; run `veil lint -w DIR` for details."
    )
}

#[test]
fn good_data_is_read() -> Result<(), Failed> {
    let dir = workspace(GOOD);
    let engine = load(dir.path())?;
    for mode in MODES {
        let rows = query(&engine, "BOB", mode)?;
        ensure(rows.len() == 2, format!("{mode:?}: {rows:?}"))?;
    }
    let findings = runtime().block_on(veil_engine::tools::lint::lint(&engine))?;
    ensure(
        findings.iter().all(|f| !f.code.starts_with("data-")),
        format!("{findings:?}"),
    )
}

/// Issue 14.4: text in a NUMBER column (the user's attribute is text too, so
/// the inlined row filter is `false` and the file is never scanned) is an
/// error naming table, file, line and column, not zero rows.
#[test]
fn text_in_a_number_column_fails_naming_table_column_and_file() -> Result<(), Failed> {
    let dir = workspace(b"id,state,born,name\n1,NY,2020-01-01,Ann\n2,CA,2020-02-02,Ben\n");
    let engine = load(dir.path())?;
    denied_with(
        &engine,
        &message(2, Some("STATE"), "not a valid NUMBER(2,0)"),
        &["NY", "CA", "Ann"],
    )?;
    lint_finds(
        &dir,
        "data-invalid-value",
        "data/t.csv:2",
        "column STATE: not a valid NUMBER(2,0) (and 1 more line(s)",
    )
}

#[test]
fn non_utf8_csv_fails_naming_file_line_and_column() -> Result<(), Failed> {
    let dir = workspace(b"id,state,born,name\n1,12,2020-01-01,Ann\n2,12,2020-02-02,B\xffn\n");
    let engine = load(dir.path())?;
    denied_with(
        &engine,
        &message(3, Some("NAME"), "not valid UTF-8 text"),
        &["Ann"],
    )?;
    lint_finds(
        &dir,
        "data-not-utf8",
        "data/t.csv:3",
        "column NAME: not valid UTF-8 text",
    )
}

#[test]
fn ragged_csv_row_fails_naming_file_and_line() -> Result<(), Failed> {
    let dir = workspace(b"id,state,born,name\n1,12,2020-01-01,Ann\n2,12,2020-02-02\n");
    let engine = load(dir.path())?;
    denied_with(
        &engine,
        &message(3, None, "the row has 3 field(s) where the header has 4"),
        &["Ann", "2020-02-02"],
    )?;
    lint_finds(
        &dir,
        "data-ragged-row",
        "data/t.csv:3",
        "the row has 3 field(s) where the header has 4",
    )
}

#[test]
fn unparsable_date_fails_naming_file_line_and_column() -> Result<(), Failed> {
    let dir = workspace(b"id,state,born,name\n1,12,2020-01-01,Ann\n2,12,2020-13-45,Ben\n");
    let engine = load(dir.path())?;
    denied_with(
        &engine,
        &message(3, Some("BORN"), "not a valid DATE"),
        &["2020-13-45", "Ben"],
    )?;
    lint_finds(
        &dir,
        "data-invalid-value",
        "data/t.csv:3",
        "column BORN: not a valid DATE",
    )
}

#[test]
fn number_over_its_precision_fails_naming_file_line_and_column() -> Result<(), Failed> {
    let dir = workspace(b"id,state,born,name\n1,12,2020-01-01,Ann\n123,12,2020-02-02,Ben\n");
    let engine = load(dir.path())?;
    denied_with(
        &engine,
        &message(3, Some("ID"), "a number too large for NUMBER(2,0)"),
        &["123", "Ben"],
    )?;
    lint_finds(
        &dir,
        "data-value-out-of-range",
        "data/t.csv:3",
        "column ID: a number too large for NUMBER(2,0)",
    )
}

/// NDJSON lines are checked the same way (here a date that does not parse).
#[test]
fn ndjson_unparsable_date_fails_naming_file_line_and_column() -> Result<(), Failed> {
    let manifest = MANIFEST.replace("data/t.csv", "data/t.ndjson");
    let dir = temp_workspace(
        &manifest,
        &[(
            "data/t.ndjson",
            "{\"id\": 1, \"state\": 12, \"born\": \"2020-01-01\", \"name\": \"Ann\"}\n\
             {\"id\": 2, \"state\": 12, \"born\": \"2020-02-30\", \"name\": \"Ben\"}\n",
        )],
    );
    let engine = load(dir.path())?;
    denied_with(
        &engine,
        "Table ANALYTICS.PUBLIC.T: data file data/t.ndjson: line 2: column BORN: not a valid DATE; run `veil lint -w DIR` for details.",
        &["2020-02-30", "Ben"],
    )?;
    lint_finds(
        &dir,
        "data-invalid-value",
        "data/t.ndjson:2",
        "column BORN: not a valid DATE",
    )
}

/// A file broken after the workspace loaded (or beyond what the load
/// checks) is diagnosed when its scan fails: the same sentence, not the
/// generic policy failure. (ALICE's inlined filter is `false`: her query
/// reads no file, so only the load check can catch it.)
#[test]
fn data_broken_after_load_is_named_when_the_scan_fails() -> Result<(), Failed> {
    let dir = workspace(GOOD);
    let engine = load(dir.path())?;
    write_csv(
        &dir,
        b"id,state,born,name\n1,12,2020-01-01,Ann\n2,12,2020-02-30,Ben\n",
    );
    denied_for(
        &engine,
        &["BOB"],
        &message(3, Some("BORN"), "not a valid DATE"),
        &["2020-02-30", "Ben"],
    )
}
