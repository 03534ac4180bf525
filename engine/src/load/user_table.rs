//! Users from a table: an entry `{location: users.parquet}` (or a CSV file)
//! under `users:` declares one user per row, beside the users written out in
//! YAML — how a directory export of 100 000 users is best kept.
//!
//! Columns, matched case-insensitively: `NAME` (required), `STATUS`
//! (`active`, `staged`, `disabled`; empty is `active`), `ROLES`, `GROUPS`,
//! `PURPOSES`; every other column is an attribute named as its header. A
//! list column is a Parquet list of strings or text with values separated
//! by `;` (the first role is the default role). Empty cells are nothing.
//! Errors name the file and the row (a CSV file's line).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Result, VeilError};
use crate::model::{FileFormat, Origin, User, UserStatus};
use crate::sql::ident::normalize_ident;

/// What a column of the users table holds.
enum Role {
    Name,
    Status,
    Roles,
    Groups,
    Purposes,
    Attribute(String),
}

fn role_of(header: &str) -> Role {
    match header.to_ascii_uppercase().as_str() {
        "NAME" => Role::Name,
        "STATUS" => Role::Status,
        "ROLES" => Role::Roles,
        "GROUPS" => Role::Groups,
        "PURPOSES" => Role::Purposes,
        _ => Role::Attribute(header.to_string()),
    }
}

fn read_batches(path: &Path, format: FileFormat) -> std::result::Result<Vec<RecordBatch>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    match format {
        FileFormat::Parquet => {
            use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.with_batch_size(8192).build())
                .map_err(|e| format!("is not a readable Parquet file: {e}"))?;
            reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("is not a readable Parquet file: {e}"))
        }
        FileFormat::Csv => {
            use datafusion::arrow::csv::ReaderBuilder;
            use datafusion::arrow::csv::reader::Format;
            let (header, _) = Format::default()
                .with_header(true)
                .infer_schema(&file, Some(0))
                .map_err(|e| format!("has no readable CSV header: {e}"))?;
            // Every column as text: names, lists and attribute values.
            let schema = Arc::new(Schema::new(
                header
                    .fields()
                    .iter()
                    .map(|f| Field::new(f.name(), DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            ));
            let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
            ReaderBuilder::new(schema)
                .with_header(true)
                .with_batch_size(8192)
                .build(file)
                .map_err(|e| format!("is not a readable CSV file: {e}"))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("is not a readable CSV file: {e}"))
        }
        other => Err(format!(
            "users come from CSV or Parquet files, not {other:?}"
        )),
    }
}

/// One column of a users table, as text: read once per batch, so each
/// cell is a slice, not a cast.
enum Cells {
    /// Text (or anything cast to text); lists are `;`-separated.
    Text(StringArray),
    /// A list of strings.
    List(ListArray),
}

impl Cells {
    fn of(column: &ArrayRef) -> std::result::Result<Self, String> {
        let list_of_text = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        Ok(match column.data_type() {
            DataType::List(_) | DataType::LargeList(_) => Self::List(
                cast(column, &list_of_text)
                    .map_err(|e| e.to_string())?
                    .as_list::<i32>()
                    .clone(),
            ),
            _ => Self::Text(
                cast(column, &DataType::Utf8)
                    .map_err(|e| e.to_string())?
                    .as_string::<i32>()
                    .clone(),
            ),
        })
    }

    /// The text of row `row` (empty when NULL).
    fn text(&self, row: usize) -> String {
        match self {
            Self::Text(a) if a.is_valid(row) => a.value(row).trim().to_string(),
            Self::Text(_) => String::new(),
            Self::List(_) => self.values(row).join(";"),
        }
    }

    /// The values of row `row`: a list's non-empty items, or the
    /// `;`-separated parts of a text.
    fn values(&self, row: usize) -> Vec<String> {
        let keep = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        };
        match self {
            Self::Text(a) if a.is_valid(row) => a.value(row).split(';').filter_map(keep).collect(),
            Self::List(l) if l.is_valid(row) => l
                .value(row)
                .as_string::<i32>()
                .iter()
                .flatten()
                .filter_map(keep)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The users of the table at `location` (relative to `dir`; `format` from
/// the entry or the file's extension). `declared_at` is the YAML entry.
pub(crate) fn read_users(
    dir: &Path,
    location: &str,
    format: Option<&str>,
    declared_at: &Origin,
) -> Result<Vec<User>> {
    let path = dir.join(location);
    let fail = |m: String| {
        VeilError::workspace(
            declared_at.to_string(),
            format!("users table '{location}' {m}"),
        )
    };
    let format = match format {
        Some(f) => super::data::format_from_name(f)
            .ok_or_else(|| fail(format!("has format '{f}', which is not csv or parquet")))?,
        None => super::data::format_from_path(&path)
            .ok_or_else(|| fail("has no .csv or .parquet extension; add format:".into()))?,
    };
    let batches = read_batches(&path, format).map_err(fail)?;
    let mut users = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    let mut row_number = 0usize;
    for batch in &batches {
        let schema = batch.schema();
        let mut roles: Vec<(Role, Cells)> = Vec::with_capacity(batch.num_columns());
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            let role = role_of(f.name());
            if matches!(&role, Role::Attribute(key) if key.contains('=')) {
                return Err(fail(format!(
                    "has attribute column '{}', and an attribute key may not contain '='",
                    f.name()
                )));
            }
            let cells = Cells::of(c)
                .map_err(|e| fail(format!("column {} cannot be read as text: {e}", f.name())))?;
            roles.push((role, cells));
        }
        if !roles.iter().any(|(r, _)| matches!(r, Role::Name)) {
            return Err(fail("has no NAME column".into()));
        }
        for row in 0..batch.num_rows() {
            row_number += 1;
            let origin = Origin {
                file: location.to_string(),
                // A CSV file's line (the header is line 1); a Parquet row.
                line: if format == FileFormat::Csv {
                    row_number + 1
                } else {
                    row_number
                },
            };
            let at = |m: String| VeilError::workspace(origin.to_string(), m);
            let mut user = User {
                name: String::new(),
                status: UserStatus::Active,
                roles: Vec::new(),
                groups: BTreeSet::new(),
                attributes: BTreeMap::new(),
                purposes: BTreeSet::new(),
                origin: origin.clone(),
            };
            for (role, cells) in &roles {
                match role {
                    Role::Name => user.name = normalize_ident(&cells.text(row)),
                    Role::Status => {
                        user.status = match cells.text(row).as_str() {
                            "" | "active" => UserStatus::Active,
                            "staged" => UserStatus::Staged,
                            "disabled" => UserStatus::Disabled,
                            other => {
                                return Err(at(format!(
                                    "status '{other}' must be active, staged or disabled"
                                )));
                            }
                        }
                    }
                    Role::Roles => {
                        user.roles = cells
                            .values(row)
                            .iter()
                            .map(|r| normalize_ident(r))
                            .collect();
                    }
                    Role::Groups => user.groups = cells.values(row).into_iter().collect(),
                    Role::Purposes => user.purposes = cells.values(row).into_iter().collect(),
                    Role::Attribute(key) => {
                        let v = cells.values(row);
                        if !v.is_empty() {
                            user.attributes.insert(key.clone(), v.into_iter().collect());
                        }
                    }
                }
            }
            if user.name.is_empty() {
                return Err(at("a user needs a NAME".into()));
            }
            users.push(user);
        }
    }
    Ok(users)
}
