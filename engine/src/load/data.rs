//! Attaching data files (CSV, Parquet, NDJSON, Arrow IPC) to declared tables.
//!
//! Each table becomes a *raw relation*: a DataFusion scan of its files with
//! the declared columns selected by Snowflake identifier rules and cast to
//! the declared types. Raw relations live only in Veil's internal catalog;
//! users never see them, only the policy relations built on top.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::Column as DfColumn;
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::file_format::arrow::ArrowFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col};

use crate::error::{Result, VeilError};
use crate::model::{FileFormat, Table};

/// The format named `name`.
pub fn format_from_name(name: &str) -> Option<FileFormat> {
    match name.to_ascii_lowercase().as_str() {
        "csv" => Some(FileFormat::Csv),
        "parquet" => Some(FileFormat::Parquet),
        "ndjson" | "json" | "jsonl" => Some(FileFormat::NdJson),
        "arrow" | "ipc" | "feather" => Some(FileFormat::Arrow),
        _ => None,
    }
}

/// The entries of a directory, sorted.
fn sorted_entries(dir: &Path) -> Option<Vec<std::path::PathBuf>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    Some(entries)
}

/// The format of a file, from its extension (directories: their first file).
pub fn format_from_path(path: &Path) -> Option<FileFormat> {
    if path.is_dir() {
        return sorted_entries(path)?
            .iter()
            .find_map(|p| format_from_path(p));
    }
    format_from_name(path.extension()?.to_str()?)
}

fn extension(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Csv => ".csv",
        FileFormat::Parquet => ".parquet",
        FileFormat::NdJson => ".ndjson",
        FileFormat::Arrow => ".arrow",
    }
}

fn first_file(path: &Path, ext: &str) -> Option<std::path::PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    sorted_entries(path)?
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(ext))
}

/// Finds the physical column matching a declared column: an exact match
/// first, then (for upper-case declared names, i.e. unquoted ones) a
/// case-insensitive match.
pub(crate) fn physical_name<'a>(declared: &str, physical: &'a Schema) -> Option<&'a Field> {
    if let Ok(f) = physical.field_with_name(declared) {
        return Some(f);
    }
    if declared.to_uppercase() != declared {
        return None;
    }
    let mut matches = physical
        .fields()
        .iter()
        .filter(|f| f.name().to_uppercase() == declared);
    let first = matches.next()?;
    if matches.next().is_some() {
        return None;
    }
    Some(first.as_ref())
}

/// Builds the raw relation of `table`: its files, declared columns, declared
/// types. Errors name the table, the column and the file.
pub async fn raw_relation(
    state: &SessionState,
    table: &Table,
    rel_location: &str,
) -> Result<LogicalPlan> {
    let here = |message: String| {
        VeilError::workspace(
            table.origin.to_string(),
            format!("table {}: {message}", table.name),
        )
    };
    if let Some(rows) = &table.rows {
        return inline_relation(table, rows).map_err(|e| here(e.to_string()));
    }
    if !table.location.exists() {
        return Err(here(format!(
            "data location '{rel_location}' does not exist"
        )));
    }
    let absolute = std::fs::canonicalize(&table.location)
        .map_err(|e| here(format!("cannot read data location '{rel_location}': {e}")))?;
    let mut url_text = absolute.to_string_lossy().to_string();
    if absolute.is_dir() && !url_text.ends_with('/') {
        url_text.push('/');
    }
    let url = ListingTableUrl::parse(&url_text)
        .map_err(|e| here(format!("bad data location '{rel_location}': {e}")))?;
    let ext = extension(table.format);
    let file_format: Arc<dyn DfFileFormat> = match table.format {
        FileFormat::Csv => Arc::new(CsvFormat::default().with_has_header(true)),
        FileFormat::Parquet => Arc::new(ParquetFormat::default()),
        FileFormat::NdJson => Arc::new(JsonFormat::default()),
        FileFormat::Arrow => Arc::new(ArrowFormat),
    };
    let file_ext = if absolute.is_file() {
        absolute
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default()
    } else {
        ext.to_string()
    };
    let options = ListingOptions::new(file_format).with_file_extension(file_ext.clone());
    let config = ListingTableConfig::new(url).with_listing_options(options);
    let config = match table.format {
        FileFormat::Csv => {
            // CSV: read the header and give each declared column its declared type.
            let file = first_file(&absolute, &file_ext)
                .ok_or_else(|| here(format!("no CSV file in '{rel_location}'")))?;
            let reader = std::fs::File::open(&file)
                .map_err(|e| here(format!("cannot read '{rel_location}': {e}")))?;
            let (header, _) = datafusion::arrow::csv::reader::Format::default()
                .with_header(true)
                .infer_schema(reader, Some(0))
                .map_err(|e| {
                    here(format!(
                        "cannot read the CSV header of '{rel_location}': {e}"
                    ))
                })?;
            let fields: Vec<Field> = header
                .fields()
                .iter()
                .map(|f| {
                    let declared = table.columns.iter().find(|c| {
                        physical_name(&c.name, &Schema::new(vec![f.as_ref().clone()])).is_some()
                    });
                    let data_type = declared
                        .map(|c| c.declared.arrow_type())
                        .unwrap_or(DataType::Utf8);
                    Field::new(f.name(), data_type, true)
                })
                .collect();
            config.with_schema(Arc::new(Schema::new(fields)))
        }
        _ => config
            .infer_schema(state)
            .await
            .map_err(|e| here(format!("cannot read the schema of '{rel_location}': {e}")))?,
    };
    let provider = ListingTable::try_new(config)
        .map_err(|e| here(format!("cannot open '{rel_location}': {e}")))?;
    let physical: SchemaRef = provider.schema();
    let mut exprs: Vec<Expr> = Vec::with_capacity(table.columns.len());
    for c in &table.columns {
        let Some(field) = physical_name(&c.name, &physical) else {
            return Err(here(format!(
                "declared column {} is not in '{rel_location}'",
                c.name
            )));
        };
        if !c.declared.holds(field.data_type()) {
            return Err(here(format!(
                "column {} is declared {} but '{rel_location}' stores {}",
                c.name,
                c.declared,
                field.data_type()
            )));
        }
        let column = col(DfColumn::new_unqualified(field.name()));
        let target = c.declared.arrow_type();
        let expr = if c.declared.is_string() || *field.data_type() == target {
            column
        } else {
            cast(column, target)
        };
        exprs.push(expr.alias(&c.name));
    }
    let plan = LogicalPlanBuilder::scan(
        table.name.table.clone(),
        provider_as_source(Arc::new(provider) as Arc<dyn TableProvider>),
        None,
    )?
    .project(exprs)?
    .build()?;
    Ok(plan)
}

/// The relation of a table a DDL script created and filled with `INSERT ...
/// VALUES`: each literal cast to its column's declared type.
fn inline_relation(table: &Table, rows: &[Vec<Option<String>>]) -> Result<LogicalPlan> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::compute::{CastOptions, cast_with_options};
    use datafusion::datasource::MemTable;
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut fields = Vec::with_capacity(table.columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (i, c) in table.columns.iter().enumerate() {
        let text: StringArray = rows.iter().map(|r| r.get(i).cloned().flatten()).collect();
        let target = c.declared.arrow_type();
        let array = cast_with_options(&text, &target, &options).map_err(|e| {
            VeilError::PolicyFailure(format!(
                "an inserted value of column {} is not a {}: {e}",
                c.name, c.declared
            ))
        })?;
        fields.push(Field::new(&c.name, target, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    let provider = MemTable::try_new(schema, vec![vec![batch]])?;
    Ok(LogicalPlanBuilder::scan(
        table.name.table.clone(),
        provider_as_source(Arc::new(provider) as Arc<dyn TableProvider>),
        None,
    )?
    .build()?)
}
