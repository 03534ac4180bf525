//! Checking a table's CSV and NDJSON files against its declared columns: bytes that are
//! not UTF-8, rows with more or fewer fields than the header, values that do
//! not parse as the declared type, numbers beyond `NUMBER(p,s)`.
//!
//! Every problem names the table, the data file (relative to the workspace),
//! the line and the column, never the value: values may be hidden data.
//! `veil lint` reports all of them; a query on a table whose data has a
//! problem is denied with the first one (found at load for the first
//! [`LOAD_CHECK_BYTES`] of each table, or when a scan fails).

use std::fmt;
use std::path::{Path, PathBuf};

use datafusion::arrow::compute::kernels::cast_utils::{Parser, parse_decimal, string_to_datetime};
use datafusion::arrow::datatypes::{
    Date32Type, Decimal128Type, DecimalType, Float64Type, Int64Type,
};

use crate::model::{FileFormat, SnowflakeType, Table, TableName};

/// How much of each table's CSV data is checked when a workspace loads
/// (`veil lint` and a failed scan check all of it).
pub const LOAD_CHECK_BYTES: u64 = 64 * 1024 * 1024;

/// What is wrong with a value, a row or a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataProblemKind {
    /// Bytes that are not UTF-8 text.
    NotUtf8,
    /// A row with another number of fields than the header.
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// A value that does not parse as the column's declared type.
    NotA(SnowflakeType),
    /// A number with more digits than its `NUMBER(p,s)` holds.
    TooLarge(SnowflakeType),
    /// The file cannot be opened or parsed as CSV at all.
    Unreadable,
}

impl DataProblemKind {
    /// The `veil lint` rule reporting this kind of problem.
    pub fn lint_rule(&self) -> &'static str {
        match self {
            Self::NotUtf8 => "data-not-utf8",
            Self::FieldCount { .. } => "data-ragged-row",
            Self::NotA(_) => "data-invalid-value",
            Self::TooLarge(_) => "data-value-out-of-range",
            Self::Unreadable => "data-unreadable",
        }
    }
}

impl fmt::Display for DataProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not valid UTF-8 text"),
            Self::FieldCount { expected, found } => write!(
                f,
                "the row has {found} field(s) where the header has {expected}"
            ),
            Self::NotA(t) => write!(f, "not a valid {t}"),
            Self::TooLarge(t) => write!(f, "a number too large for {t}"),
            Self::Unreadable => f.write_str("the file cannot be read as CSV"),
        }
    }
}

/// One problem in a table's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataProblem {
    /// The table.
    pub table: TableName,
    /// The data file, relative to the workspace.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The column (declared name, or the header's for undeclared ones).
    pub column: Option<String>,
    /// What is wrong.
    pub kind: DataProblemKind,
    /// How many more lines of the file have the same problem in the same column.
    pub more: u64,
}

impl DataProblem {
    /// `data/t.csv:4` (or just the file).
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }

    /// What a user reads when a query meets this problem: the table, file,
    /// line, column and kind, no value.
    pub fn user_message(&self) -> String {
        format!(
            "Table {}: data file {}{}{}: {}; run `veil lint -w DIR` for details.",
            self.table,
            self.file,
            self.line.map(|l| format!(": line {l}")).unwrap_or_default(),
            self.column
                .as_ref()
                .map(|c| format!(": column {c}"))
                .unwrap_or_default(),
            self.kind
        )
    }
}

/// What checking a table's data needs, kept so a failed scan can say which
/// file, line and column is at fault.
#[derive(Debug, Clone)]
pub struct DataFiles {
    table: TableName,
    format: FileFormat,
    location: PathBuf,
    rel_location: String,
    columns: Vec<(String, SnowflakeType)>,
    inline: bool,
}

impl DataFiles {
    /// The data of `table`, whose location reads `rel_location` relative to
    /// the workspace.
    pub fn new(table: &Table, rel_location: &str) -> Self {
        Self {
            table: table.name.clone(),
            format: table.format,
            location: table.location.clone(),
            rel_location: rel_location.to_string(),
            columns: table
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.declared))
                .collect(),
            inline: table.rows.is_some(),
        }
    }

    /// The table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// Problems in the table's CSV and NDJSON files (none for Parquet and
    /// Arrow, whose files carry their types), at most one per file, column
    /// and kind (with a count of the further lines), checking at most
    /// `budget` bytes of data when given.
    pub fn problems(&self, budget: Option<u64>) -> Vec<DataProblem> {
        let ext = match self.format {
            _ if self.inline => return Vec::new(),
            FileFormat::Csv => ".csv",
            FileFormat::NdJson => ".ndjson",
            FileFormat::Parquet | FileFormat::Arrow => return Vec::new(),
        };
        let mut out = Vec::new();
        let mut left = budget;
        for (path, rel) in self.data_files(ext) {
            if left == Some(0) {
                break;
            }
            let used = match self.format {
                FileFormat::NdJson => self.check_ndjson_file(&path, &rel, left, &mut out),
                _ => self.check_file(&path, &rel, left, &mut out),
            };
            left = left.map(|l| l.saturating_sub(used));
        }
        out
    }

    /// The first problem within the load budget, if any.
    pub fn first_problem_at_load(&self) -> Option<DataProblem> {
        self.problems(Some(LOAD_CHECK_BYTES))
            .into_iter()
            .min_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)))
    }

    /// The message for a scan of this table that failed: its first data
    /// problem, if checking all of its data finds one.
    pub fn failure_message(&self) -> Option<String> {
        self.problems(None)
            .into_iter()
            .min_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)))
            .map(|p| p.user_message())
    }

    fn data_files(&self, ext: &str) -> Vec<(PathBuf, String)> {
        if self.location.is_file() {
            return vec![(self.location.clone(), self.rel_location.clone())];
        }
        let Ok(entries) = std::fs::read_dir(&self.location) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let rel = Path::new(&self.rel_location).join(name);
                (p, rel.display().to_string())
            })
            .collect()
    }

    /// Checks one file, appending its problems; returns the bytes read.
    fn check_file(
        &self,
        path: &Path,
        rel: &str,
        budget: Option<u64>,
        out: &mut Vec<DataProblem>,
    ) -> u64 {
        let problem = |line: Option<u64>, column: Option<String>, kind| DataProblem {
            table: self.table.clone(),
            file: rel.to_string(),
            line,
            column,
            kind,
            more: 0,
        };
        let Ok(file) = std::fs::File::open(path) else {
            out.push(problem(None, None, DataProblemKind::Unreadable));
            return 0;
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(std::io::BufReader::new(file));
        let mut record = csv::ByteRecord::new();
        // The header, and the declared type of each of its fields.
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                out.push(problem(line, None, DataProblemKind::Unreadable));
                return 0;
            }
        }
        let mut header: Vec<(String, Option<SnowflakeType>)> = Vec::with_capacity(record.len());
        for field in record.iter() {
            let Ok(name) = std::str::from_utf8(field) else {
                out.push(problem(Some(1), None, DataProblemKind::NotUtf8));
                return 0;
            };
            let declared = self.declared_for(name, &record);
            match declared {
                Some((declared_name, t)) => header.push((declared_name, Some(t))),
                None => header.push((name.to_string(), None)),
            }
        }
        let first = out.len();
        let report = |out: &mut Vec<DataProblem>, p: DataProblem| {
            if let Some(seen) = out[first..]
                .iter_mut()
                .find(|q| q.column == p.column && q.kind == p.kind)
            {
                seen.more += 1;
            } else {
                out.push(p);
            }
        };
        let mut bytes = 0;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map(|p| p.line());
                    report(out, problem(line, None, DataProblemKind::Unreadable));
                    break;
                }
            }
            let position = record.position();
            let line = position.map(|p| p.line());
            bytes = position.map_or(bytes, |p| p.byte());
            if record.len() != header.len() {
                let kind = DataProblemKind::FieldCount {
                    expected: header.len(),
                    found: record.len(),
                };
                report(out, problem(line, None, kind));
            } else {
                for (field, (name, declared)) in record.iter().zip(&header) {
                    let kind = match std::str::from_utf8(field) {
                        Err(_) => Some(DataProblemKind::NotUtf8),
                        Ok(text) => declared.and_then(|t| value_problem(t, text)),
                    };
                    if let Some(kind) = kind {
                        report(out, problem(line, Some(name.clone()), kind));
                    }
                }
            }
            if budget.is_some_and(|b| bytes >= b) {
                break;
            }
        }
        bytes
    }

    /// Checks one NDJSON file, appending its problems; returns the bytes read.
    fn check_ndjson_file(
        &self,
        path: &Path,
        rel: &str,
        budget: Option<u64>,
        out: &mut Vec<DataProblem>,
    ) -> u64 {
        use std::io::BufRead;
        let problem = |line: u64, column: Option<String>, kind| DataProblem {
            table: self.table.clone(),
            file: rel.to_string(),
            line: Some(line),
            column,
            kind,
            more: 0,
        };
        let Ok(file) = std::fs::File::open(path) else {
            out.push(DataProblem {
                line: None,
                ..problem(0, None, DataProblemKind::Unreadable)
            });
            return 0;
        };
        let first = out.len();
        let report = |out: &mut Vec<DataProblem>, p: DataProblem| {
            if let Some(seen) = out[first..]
                .iter_mut()
                .find(|q| q.column == p.column && q.kind == p.kind)
            {
                seen.more += 1;
            } else {
                out.push(p);
            }
        };
        let mut bytes = 0u64;
        for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
            let number = i as u64 + 1;
            let Ok(line) = line else {
                report(out, problem(number, None, DataProblemKind::Unreadable));
                break;
            };
            bytes += line.len() as u64 + 1;
            let Ok(text) = std::str::from_utf8(&line) else {
                report(out, problem(number, None, DataProblemKind::NotUtf8));
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let Ok(serde_json::Value::Object(object)) = serde_json::from_str(text) else {
                report(out, problem(number, None, DataProblemKind::Unreadable));
                continue;
            };
            for (name, declared) in &self.columns {
                let value = object.get(name.as_str()).or_else(|| {
                    let mut same = object
                        .iter()
                        .filter(|(k, _)| name.to_uppercase() == *name && k.to_uppercase() == *name);
                    match (same.next(), same.next()) {
                        (Some((_, v)), None) => Some(v),
                        _ => None,
                    }
                });
                if let Some(kind) = value.and_then(|v| json_value_problem(*declared, v)) {
                    report(out, problem(number, Some(name.clone()), kind));
                }
            }
            if budget.is_some_and(|b| bytes >= b) {
                break;
            }
        }
        bytes
    }

    /// The declared column a header field holds, by the rule the raw
    /// relation uses (exact, or case-insensitive for upper-case names).
    fn declared_for(
        &self,
        field: &str,
        header: &csv::ByteRecord,
    ) -> Option<(String, SnowflakeType)> {
        if let Some((n, t)) = self.columns.iter().find(|(n, _)| n == field) {
            return Some((n.clone(), *t));
        }
        let upper = field.to_uppercase();
        let (n, t) = self
            .columns
            .iter()
            .find(|(n, _)| n.to_uppercase() == *n && *n == upper)?;
        // An exact match elsewhere in the header, or two fields matching
        // case-insensitively: the raw relation does not pick this field.
        let same: usize = header
            .iter()
            .filter_map(|f| std::str::from_utf8(f).ok())
            .filter(|f| f.to_uppercase() == upper)
            .count();
        let exact = header.iter().any(|f| f == n.as_bytes());
        (same == 1 && !exact).then(|| (n.clone(), *t))
    }
}

/// What is wrong with CSV text `text` as a value of `declared`, read the way
/// the CSV reader does (an empty field is NULL).
pub fn value_problem(declared: SnowflakeType, text: &str) -> Option<DataProblemKind> {
    if text.is_empty() {
        return None;
    }
    let ok = match declared {
        SnowflakeType::Varchar(_) => true,
        SnowflakeType::Number { precision, scale } => {
            let value = if declared.arrow_type() == datafusion::arrow::datatypes::DataType::Int64 {
                Int64Type::parse(text).map(i128::from)
            } else {
                parse_decimal::<Decimal128Type>(text, 38, scale as i8).ok()
            };
            return match value {
                // Digits the parser cannot hold at all are a number too large.
                None if plain_number(text) => Some(DataProblemKind::TooLarge(declared)),
                None => Some(DataProblemKind::NotA(declared)),
                Some(v) if !Decimal128Type::is_valid_decimal_precision(v, precision) => {
                    Some(DataProblemKind::TooLarge(declared))
                }
                Some(_) => None,
            };
        }
        SnowflakeType::Float => Float64Type::parse(text).is_some(),
        SnowflakeType::Boolean => {
            text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false")
        }
        SnowflakeType::Date => Date32Type::parse(text).is_some(),
        SnowflakeType::TimestampNtz => string_to_datetime(&chrono::Utc, text)
            .ok()
            .and_then(|d| d.timestamp_nanos_opt())
            .is_some(),
    };
    (!ok).then_some(DataProblemKind::NotA(declared))
}

/// What is wrong with JSON value `value` as a value of `declared`.
fn json_value_problem(
    declared: SnowflakeType,
    value: &serde_json::Value,
) -> Option<DataProblemKind> {
    use serde_json::Value;
    match (value, declared) {
        (Value::Null, _) | (_, SnowflakeType::Varchar(_)) => None,
        (Value::String(s), _) => value_problem(declared, s),
        (Value::Number(n), SnowflakeType::Number { .. } | SnowflakeType::Float) => {
            value_problem(declared, &n.to_string())
        }
        (Value::Bool(_), SnowflakeType::Boolean) => None,
        _ => Some(DataProblemKind::NotA(declared)),
    }
}

/// Whether `text` is a plain decimal number: a sign, digits, at most one point.
fn plain_number(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.matches('.').count() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: SnowflakeType = SnowflakeType::Date;

    fn number(precision: u8, scale: u8) -> SnowflakeType {
        SnowflakeType::Number { precision, scale }
    }

    #[test]
    fn numbers_beyond_their_precision_are_too_large() {
        assert_eq!(value_problem(number(2, 0), "99"), None);
        assert_eq!(value_problem(number(2, 0), "-99"), None);
        assert_eq!(
            value_problem(number(2, 0), "100"),
            Some(DataProblemKind::TooLarge(number(2, 0)))
        );
        assert_eq!(value_problem(number(4, 2), "12.34"), None);
        assert_eq!(
            value_problem(number(4, 2), "123.4"),
            Some(DataProblemKind::TooLarge(number(4, 2)))
        );
        assert_eq!(
            value_problem(number(38, 0), "1".repeat(39).as_str()),
            Some(DataProblemKind::TooLarge(number(38, 0)))
        );
    }

    #[test]
    fn text_in_number_and_date_columns_is_not_a_value() {
        assert_eq!(
            value_problem(number(2, 0), "NY"),
            Some(DataProblemKind::NotA(number(2, 0)))
        );
        assert_eq!(value_problem(DATE, "2020-01-31"), None);
        assert_eq!(
            value_problem(DATE, "2020-13-45"),
            Some(DataProblemKind::NotA(DATE))
        );
        assert_eq!(value_problem(DATE, ""), None);
        assert_eq!(
            value_problem(SnowflakeType::TimestampNtz, "2021-03-04 10:15:00"),
            None
        );
        assert_eq!(
            value_problem(SnowflakeType::Boolean, "yes"),
            Some(DataProblemKind::NotA(SnowflakeType::Boolean))
        );
    }

    #[test]
    fn every_problem_kind_has_a_lint_rule() {
        for kind in [
            DataProblemKind::NotUtf8,
            DataProblemKind::FieldCount {
                expected: 2,
                found: 1,
            },
            DataProblemKind::NotA(DATE),
            DataProblemKind::TooLarge(number(2, 0)),
            DataProblemKind::Unreadable,
        ] {
            assert!(
                crate::model::LINT_RULES.contains(&kind.lint_rule()),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn json_values_are_checked_against_declared_types() {
        use serde_json::json;
        assert_eq!(json_value_problem(number(2, 0), &json!(12)), None);
        assert_eq!(
            json_value_problem(number(2, 0), &json!(123)),
            Some(DataProblemKind::TooLarge(number(2, 0)))
        );
        assert_eq!(json_value_problem(DATE, &json!(null)), None);
        assert_eq!(
            json_value_problem(DATE, &json!("2020-02-30")),
            Some(DataProblemKind::NotA(DATE))
        );
        assert_eq!(
            json_value_problem(SnowflakeType::Boolean, &json!(1)),
            Some(DataProblemKind::NotA(SnowflakeType::Boolean))
        );
    }

    #[test]
    fn user_message_names_table_file_line_column_not_value() {
        let p = DataProblem {
            table: TableName {
                database: "ANALYTICS".into(),
                schema: "PUBLIC".into(),
                table: "T".into(),
            },
            file: "data/t.csv".into(),
            line: Some(4),
            column: Some("BORN".into()),
            kind: DataProblemKind::NotA(DATE),
            more: 0,
        };
        assert_eq!(
            p.user_message(),
            "Table ANALYTICS.PUBLIC.T: data file data/t.csv: line 4: column BORN: not a valid DATE; run `veil lint -w DIR` for details."
        );
    }
}
