//! `veil test`: policy tests as code, in sqllogictest files.
//!
//! A policy test file is a sqllogictest file whose blocks run as named
//! sessions. A comment line
//!
//! ```text
//! # veil-session: user=ALICE role=ANALYST purpose=Fraud Analysis
//! ```
//!
//! starts a block: the records after it run as that user (`role` and
//! `purpose` are optional; `purpose` takes the rest of the line). Records are
//! the usual `query <types> [rowsort]` with expected rows after `----` (NULL
//! as `NULL`, empty strings as `(empty)`), and `statement error <regex>` for
//! denials — including a session that may not open (`User 'DAVE' is
//! disabled.`). The project's own per-user golden files are in this format.
//!
//! [`run_file`] reports each failing record with a diff of expected vs
//! actual rows; [`complete_file`] rewrites the expected output from what the
//! engine returns now (`veil test --complete`); [`TestReport::junit`] renders
//! JUnit XML for CI.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType, Record};

use crate::enforce::{Engine, Session, SessionOptions};
use crate::error::{Result, VeilError};
use crate::model::EnforcementMode;

/// The comment that starts a session block.
pub const SESSION_HEADER: &str = "veil-session:";

/// The comment `veil test --complete` writes at the top of a test file of a
/// workspace whose results depend on the hashing secret:
/// `# veil-secret-fingerprint: <16 hex digits>`.
pub const SECRET_FINGERPRINT_HEADER: &str = "veil-secret-fingerprint:";

/// A fingerprint of the hashing secret: the first 16 hex digits of SHA-256
/// over a Veil-specific prefix and the secret. It tells secrets apart
/// without revealing them.
pub fn secret_fingerprint(secret: &str) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"veil-secret-fingerprint\0");
    hasher.update(secret.as_bytes());
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The secret fingerprint a test file records, if it records one.
fn recorded_fingerprint(records: &[Record<DefaultColumnType>]) -> Option<String> {
    records.iter().find_map(|r| match r {
        Record::Comment(lines) => lines.iter().find_map(|l| {
            l.trim()
                .strip_prefix(SECRET_FINGERPRINT_HEADER)
                .map(|f| f.trim().to_string())
        }),
        _ => None,
    })
}

/// Parses `user=ALICE role=ANALYST purpose=Fraud Analysis` (the text after
/// `# veil-session:`). `purpose` takes the rest of the line.
pub fn parse_session_header(text: &str) -> std::result::Result<SessionOptions, String> {
    let mut options = SessionOptions::default();
    let text = text.trim();
    let (head, purpose) = match text.split_once("purpose=") {
        Some((head, p)) => (head, Some(p.trim().to_string())),
        None => (text, None),
    };
    for word in head.split_whitespace() {
        match word.split_once('=') {
            Some(("user", v)) => options.user = v.to_string(),
            Some(("role", v)) => options.role = Some(v.to_string()),
            Some(("mode", "inlined")) => options.mode = Some(EnforcementMode::Inlined),
            Some(("mode", "profile_join" | "profile-join")) => {
                options.mode = Some(EnforcementMode::ProfileJoin)
            }
            _ => {
                return Err(format!(
                    "'{word}' is not user=, role=, mode=inlined|profile_join or purpose="
                ));
            }
        }
    }
    if options.user.is_empty() {
        return Err("the session header names no user (user=NAME)".to_string());
    }
    options.purpose = purpose.filter(|p| !p.is_empty());
    Ok(options)
}

/// The session a block runs as: opened, or the error that refused it (which
/// every record of the block then returns, so `statement error` can test it).
type Current = Arc<Mutex<Option<std::result::Result<Arc<Session>, String>>>>;

/// A sqllogictest database that runs each statement as the current block's
/// session.
pub struct VeilDb {
    current: Current,
}

/// An error as the test file sees it: the sentence the user would see.
#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DefaultColumnType::Integer,
        DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => {
            DefaultColumnType::FloatingPoint
        }
        _ => DefaultColumnType::Text,
    }
}

/// Result rows as display strings (`NULL` for nulls).
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Batches as sqllogictest output: `NULL` for nulls, `(empty)` for empty
/// strings.
pub fn to_output(batches: &[RecordBatch]) -> Result<DBOutput<DefaultColumnType>> {
    let types = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| column_type(f.data_type()))
                .collect()
        })
        .unwrap_or_default();
    let rows = rows(batches)?
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| {
                    if v.is_empty() {
                        "(empty)".to_string()
                    } else {
                        v
                    }
                })
                .collect()
        })
        .collect();
    Ok(DBOutput::Rows { types, rows })
}

#[async_trait]
impl sqllogictest::AsyncDB for VeilDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(
        &mut self,
        sql: &str,
    ) -> std::result::Result<DBOutput<DefaultColumnType>, DbError> {
        let session = {
            let current = self
                .current
                .lock()
                .map_err(|_| DbError("session lock poisoned".into()))?;
            match current.as_ref() {
                None => {
                    return Err(DbError(format!(
                        "no '# {SESSION_HEADER} user=NAME' line before this record"
                    )));
                }
                Some(Err(e)) => return Err(DbError(e.clone())),
                Some(Ok(s)) => Arc::clone(s),
            }
        };
        let batches = session.sql(sql).await.map_err(|e| DbError(e.to_string()))?;
        to_output(&batches).map_err(|e| DbError(e.to_string()))
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "veil"
    }
}

/// Switches `current` to the session a header comment names, if `record` is
/// one. Returns an error for a malformed header.
fn switch_session(
    record: &Record<DefaultColumnType>,
    engine: &Engine,
    mode: Option<EnforcementMode>,
    current: &Current,
) -> std::result::Result<(), String> {
    let Record::Comment(lines) = record else {
        return Ok(());
    };
    for line in lines {
        let Some(header) = line.trim().strip_prefix(SESSION_HEADER) else {
            continue;
        };
        let mut options = parse_session_header(header)?;
        if options.mode.is_none() {
            options.mode = mode;
        }
        let opened = engine
            .session_with(options)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        if let Ok(mut slot) = current.lock() {
            *slot = Some(opened);
        }
    }
    Ok(())
}

fn runner(
    current: &Current,
) -> sqllogictest::Runner<VeilDb, impl sqllogictest::MakeConnection<Conn = VeilDb>> {
    let current = Arc::clone(current);
    sqllogictest::Runner::new(move || {
        let current = Arc::clone(&current);
        async move { Ok::<_, DbError>(VeilDb { current }) }
    })
}

fn parse(path: &Path) -> Result<Vec<Record<DefaultColumnType>>> {
    sqllogictest::parse_file(path).map_err(|e| {
        VeilError::workspace(
            path.display().to_string(),
            format!("not a valid test file: {e}"),
        )
    })
}

/// The outcome of one test file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Statements and queries run.
    pub records: usize,
    /// One entry per failing record: location, and expected vs actual.
    pub failures: Vec<String>,
    /// Wall time.
    pub duration: Duration,
}

/// The outcome of a `veil test` run.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    /// Per file, in the order run.
    pub files: Vec<FileReport>,
}

impl TestReport {
    /// Whether every record of every file passed.
    pub fn passed(&self) -> bool {
        self.files.iter().all(|f| f.failures.is_empty())
    }

    /// Human-readable report: each failure with its diff, then a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let status = if f.failures.is_empty() {
                "ok"
            } else {
                "FAILED"
            };
            out.push_str(&format!(
                "{} ... {status} ({} records, {:.0} ms)\n",
                f.path.display(),
                f.records,
                f.duration.as_secs_f64() * 1000.0
            ));
            for failure in &f.failures {
                for line in failure.lines() {
                    out.push_str("    ");
                    out.push_str(line);
                    out.push('\n');
                }
                out.push('\n');
            }
        }
        let records: usize = self.files.iter().map(|f| f.records).sum();
        let failed: usize = self.files.iter().map(|f| f.failures.len()).sum();
        out.push_str(&format!(
            "\ntest result: {}. {} files, {records} records, {failed} failed\n",
            if self.passed() { "ok" } else { "FAILED" },
            self.files.len()
        ));
        out
    }

    /// JUnit XML: one test suite, one test case per file.
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new("veil test");
        let mut suite = quick_junit::TestSuite::new("veil policy tests");
        for f in &self.files {
            let status = if f.failures.is_empty() {
                quick_junit::TestCaseStatus::success()
            } else {
                let mut s =
                    quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Failure);
                s.set_message(format!("{} failing record(s)", f.failures.len()));
                s.set_description(f.failures.join("\n\n"));
                s
            };
            let mut case = quick_junit::TestCase::new(f.path.display().to_string(), status);
            case.set_time(f.duration);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot render JUnit XML: {e} -->"))
    }
}

/// Runs one test file on `engine`; `mode` overrides the workspace's
/// enforcement mode unless a header names one.
pub async fn run_file(
    engine: &Engine,
    path: &Path,
    mode: Option<EnforcementMode>,
) -> Result<FileReport> {
    let started = Instant::now();
    let records = parse(path)?;
    let current: Current = Arc::new(Mutex::new(None));
    let mut runner = runner(&current);
    let mut report = FileReport {
        path: path.to_path_buf(),
        records: 0,
        failures: Vec::new(),
        duration: Duration::ZERO,
    };
    let current_version = engine.current();
    let ws = current_version.workspace();
    if let Some(recorded) = recorded_fingerprint(&records)
        && ws.uses_secret()
        && recorded != secret_fingerprint(&ws.settings.secret)
    {
        report.failures.push(format!(
            "{}: this file was completed with another hashing secret than the one in use now (from {}); run it with that secret, or re-complete it with `veil test --complete`.",
            path.display(),
            ws.settings.secret_env
        ));
        report.duration = started.elapsed();
        return Ok(report);
    }
    for record in records {
        if let Err(e) = switch_session(&record, engine, mode, &current) {
            report
                .failures
                .push(format!("{}: bad session header: {e}", path.display()));
            continue;
        }
        if matches!(record, Record::Statement { .. } | Record::Query { .. }) {
            report.records += 1;
        }
        if let Err(e) = runner.run_async(record).await {
            report.failures.push(e.display(false).to_string());
        }
    }
    report.duration = started.elapsed();
    Ok(report)
}

/// Runs test files in order.
pub async fn run_files(
    engine: &Engine,
    paths: &[PathBuf],
    mode: Option<EnforcementMode>,
) -> Result<TestReport> {
    let mut report = TestReport::default();
    for p in paths {
        report.files.push(run_file(engine, p, mode).await?);
    }
    Ok(report)
}

/// Rewrites the expected output of every record in `path` from what the
/// engine returns now (`veil test --complete`). Comments, headers and
/// record order are kept.
pub async fn complete_file(
    engine: &Engine,
    path: &Path,
    mode: Option<EnforcementMode>,
) -> Result<()> {
    let records = parse(path)?;
    let current: Current = Arc::new(Mutex::new(None));
    let mut runner = runner(&current);
    let mut out = String::new();
    let current_version = engine.current();
    let ws = current_version.workspace();
    if ws.uses_secret() {
        out.push_str(&format!(
            "# {SECRET_FINGERPRINT_HEADER} {}\n",
            secret_fingerprint(&ws.settings.secret)
        ));
    }
    for mut record in records {
        if matches!(record, Record::Injected(_)) {
            continue;
        }
        if let Record::Comment(lines) = &mut record {
            lines.retain(|l| !l.trim().starts_with(SECRET_FINGERPRINT_HEADER));
            if lines.is_empty() {
                continue;
            }
        }
        switch_session(&record, engine, mode, &current)
            .map_err(|e| VeilError::workspace(path.display().to_string(), e))?;
        let output = runner.apply_record(record.clone()).await;
        let updated = sqllogictest::update_record_with_output(
            &record,
            &output,
            " ",
            sqllogictest::default_validator,
            sqllogictest::default_normalizer,
            sqllogictest::default_column_validator,
        )
        .unwrap_or(record);
        out.push_str(&updated.to_string());
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    std::fs::write(path, out).map_err(|e| {
        VeilError::workspace(
            path.display().to_string(),
            format!("cannot write the test file: {e}"),
        )
    })
}

/// The test files of a workspace: every `*.slt` under it, sorted.
pub fn workspace_test_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let pattern = dir.join("**").join("*.slt");
    let mut files: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
        .map_err(|e| {
            VeilError::workspace(
                dir.display().to_string(),
                format!("cannot list test files: {e}"),
            )
        })?
        .filter_map(|p| p.ok())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_headers_parse() {
        let o = parse_session_header(" user=alice role=ANALYST purpose=Fraud Analysis").unwrap();
        assert_eq!(o.user, "alice");
        assert_eq!(o.role.as_deref(), Some("ANALYST"));
        assert_eq!(o.purpose.as_deref(), Some("Fraud Analysis"));
        assert!(parse_session_header("role=X").is_err());
        assert!(parse_session_header("user=A colour=blue").is_err());
        let o = parse_session_header("user=A mode=profile-join").unwrap();
        assert_eq!(o.mode, Some(EnforcementMode::ProfileJoin));
    }

    #[test]
    fn secret_fingerprints_tell_secrets_apart_without_showing_them() {
        let a = secret_fingerprint("one secret");
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, secret_fingerprint("one secret"));
        assert_ne!(a, secret_fingerprint("another secret"));
        assert!(!a.contains("secret"));
    }
}
