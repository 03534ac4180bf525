//! Administrators' writes through Veil, with their column lineage (SPEC
//! §7.1): `CREATE TABLE name AS SELECT ...` writes the result as Parquet
//! under the workspace (`data/veil/DB/SCHEMA/TABLE/part-*.parquet`) and
//! declares the table in the catalog journal; `INSERT INTO name [(cols)]
//! SELECT ...` appends a Parquet file to a table Veil created. Either way,
//! each written column's sources are read from the query's logical plan
//! ([`crate::sql::lineage`]) and recorded as lineage, and the tags its
//! sources carry now propagate to it: the data was copied from tagged
//! columns this moment, so the copy is protected from its first query.
//!
//! Nothing is half-done: the file is written under a temporary name,
//! checked to read back as the declared table, and renamed; if recording
//! the change fails, the file is removed again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::{LogicalPlan, TableScan};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, Query, Statement, TableObject};

use crate::error::{Result, VeilError};
use crate::load::data::{physical_name, raw_relation};
use crate::model::{ColumnRef, CreatedTable, SnowflakeType, Table, TableName, Workspace};
use crate::sql::ident::{object_name_parts, parse_statements, resolve_table};
use crate::sql::lineage::{Sources, column_lineage};

use super::Engine;
use super::state::fresh;

/// A write an administrator asked for.
#[derive(Debug)]
pub(crate) struct Write {
    /// The table written.
    target: TableName,
    /// `CREATE TABLE ... AS` (else `INSERT INTO`).
    create: bool,
    /// Names given to the written columns (`CREATE TABLE t (a, b) AS`,
    /// `INSERT INTO t (a, b)`), if any.
    columns: Vec<String>,
    /// The query whose rows are written.
    query: Box<Query>,
}

fn refused(message: String) -> VeilError {
    VeilError::Refused(message)
}

/// The write `sql` is, if it is `CREATE TABLE ... AS SELECT` or `INSERT
/// INTO ... SELECT`; `None` for any other statement.
pub(crate) fn parse_write(sql: &str, ws: &Workspace) -> Result<Option<Write>> {
    let first = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if first != "CREATE" && first != "INSERT" {
        return Ok(None);
    }
    let mut statements = parse_statements(sql)?;
    if statements.len() != 1 {
        return Ok(None);
    }
    let s = &ws.settings;
    let target = |name: &ast::ObjectName| {
        object_name_parts(name)
            .and_then(|p| resolve_table(&p, &s.default_database, &s.default_schema))
            .ok_or_else(|| refused(format!("'{name}' is not a table name (DB.SCHEMA.TABLE).")))
    };
    match statements.remove(0) {
        Statement::CreateTable(c) => {
            let Some(query) = c.query else {
                return Ok(None);
            };
            let name = target(&c.name)?;
            if c.or_replace || c.temporary || c.external || c.if_not_exists {
                return Err(refused(format!(
                    "CREATE TABLE {name}: Veil creates new tables only (no OR REPLACE, TEMPORARY, EXTERNAL or IF NOT EXISTS), so it never overwrites data."
                )));
            }
            let mut columns = Vec::with_capacity(c.columns.len());
            for d in &c.columns {
                if d.data_type != ast::DataType::Unspecified {
                    return Err(refused(format!(
                        "CREATE TABLE {name}: give column {} its type with a CAST in the SELECT; the column list may only rename.",
                        d.name
                    )));
                }
                columns.push(crate::sql::ident::ident_value(&d.name));
            }
            Ok(Some(Write {
                target: name,
                create: true,
                columns,
                query,
            }))
        }
        Statement::Insert(i) => {
            let TableObject::TableName(name) = &i.table else {
                return Ok(None);
            };
            let Some(query) = i.source else {
                return Ok(None);
            };
            let name = target(name)?;
            if i.overwrite {
                return Err(refused(format!(
                    "INSERT OVERWRITE INTO {name}: Veil only appends."
                )));
            }
            let columns = i
                .columns
                .iter()
                .map(|c| {
                    object_name_parts(c)
                        .and_then(|p| p.last().cloned())
                        .ok_or_else(|| refused(format!("'{c}' is not a column name.")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Write {
                target: name,
                create: false,
                columns,
                query,
            }))
        }
        _ => Ok(None),
    }
}

/// The declared type Veil gives a computed column of Arrow type `t`.
fn declared_type(t: &DataType) -> Option<SnowflakeType> {
    use DataType::*;
    Some(match t {
        Utf8 | LargeUtf8 | Utf8View => SnowflakeType::Varchar(veil_udfs::sftype::MAX_VARCHAR),
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => SnowflakeType::Number {
            precision: 38,
            scale: 0,
        },
        Decimal128(p, s) if *s >= 0 => SnowflakeType::Number {
            precision: *p,
            scale: *s as u8,
        },
        Float16 | Float32 | Float64 => SnowflakeType::Float,
        Boolean => SnowflakeType::Boolean,
        Date32 | Date64 => SnowflakeType::Date,
        Timestamp(_, None) => SnowflakeType::TimestampNtz,
        Dictionary(_, value) => return declared_type(value),
        _ => return None,
    })
}

/// Whether `name` can be a column name as DataFusion printed it (an
/// expression without `AS` gets its text, which is not).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ' ')
        && !name.starts_with(' ')
}

/// A path segment for a (normalized) name.
fn segment(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '$' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `batches` with the columns cast to `schema` (same order).
fn conform(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    table: &TableName,
) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(a, f)| {
                    cast(a, f.data_type()).map_err(|e| {
                        refused(format!(
                            "{table}: the values of column {} do not fit its type {} ({e}).",
                            f.name(),
                            f.data_type()
                        ))
                    })
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
        })
        .collect()
}

/// Writes `batches` as one Parquet file `path` (through a temporary name).
fn write_parquet(path: &Path, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    let fail = |e: String| {
        VeilError::workspace(
            path.display().to_string(),
            format!("cannot write the table's data: {e}"),
        )
    };
    let tmp = path.with_extension("parquet.tmp");
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| fail(e.to_string()))?;
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, Arc::clone(schema), None)
                .map_err(|e| fail(e.to_string()))?;
        for b in batches {
            writer.write(b).map_err(|e| fail(e.to_string()))?;
        }
        writer.close().map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Which scan source is which declared table's files.
fn source_id(scan: &TableScan) -> usize {
    Arc::as_ptr(&scan.source) as *const u8 as usize
}

/// The scan sources of the raw relations of `ws` in `state`, by
/// [`source_id`]: a query planned in `state` scans the same sources.
async fn raw_scans(state: &SessionState, ws: &Workspace) -> HashMap<usize, TableName> {
    let mut out = HashMap::new();
    let catalogs = state.catalog_list();
    for t in &ws.tables {
        let Some(schema) = catalogs
            .catalog(&t.name.database)
            .and_then(|c| c.schema(&t.name.schema))
        else {
            continue;
        };
        let Ok(Some(provider)) = schema.table(&t.name.table).await else {
            continue;
        };
        let Some(plan) = provider.get_logical_plan() else {
            continue;
        };
        let _ = plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                out.insert(source_id(scan), t.name.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    out
}

/// The written columns, names and declared types: a created table's from
/// the query (renamed by `named_columns`, if given), or the existing
/// table's `existing` in the order `named_columns` gives its columns.
fn written_columns(
    named_columns: &[String],
    existing: Option<&Table>,
    fields: &Fields,
    target: &TableName,
) -> Result<Vec<(String, SnowflakeType)>> {
    Ok(match existing {
        Some(t) => {
            let named: Vec<String> = if named_columns.is_empty() {
                t.columns.iter().map(|c| c.name.clone()).collect()
            } else {
                named_columns.to_vec()
            };
            if named.len() != fields.len() || named.len() != t.columns.len() {
                return Err(refused(format!(
                    "INSERT INTO {target}: the query gives {} columns for the table's {} (Veil appends whole rows).",
                    fields.len(),
                    t.columns.len()
                )));
            }
            named
                .iter()
                .map(|n| {
                    t.column(n)
                        .map(|c| (c.name.clone(), c.declared))
                        .ok_or_else(|| {
                            refused(format!(
                                "INSERT INTO {target}: the table has no column {n}."
                            ))
                        })
                })
                .collect::<Result<_>>()?
        }
        None => {
            if !named_columns.is_empty() && named_columns.len() != fields.len() {
                return Err(refused(format!(
                    "CREATE TABLE {target}: {} column names for a query of {} columns.",
                    named_columns.len(),
                    fields.len()
                )));
            }
            let mut out: Vec<(String, SnowflakeType)> = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                let name = named_columns
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| f.name().clone());
                if !plain_name(&name) {
                    return Err(refused(format!(
                        "CREATE TABLE {target}: column {} ('{name}') needs a name: add AS NAME to it.",
                        i + 1
                    )));
                }
                if out.iter().any(|(n, _)| *n == name) {
                    return Err(refused(format!(
                        "CREATE TABLE {target}: two columns are named {name}; give one another name with AS."
                    )));
                }
                let declared = declared_type(f.data_type()).ok_or_else(|| {
                    refused(format!(
                        "CREATE TABLE {target}: column {name} is of type {}, which a Veil table cannot declare (VARCHAR, NUMBER, FLOAT, BOOLEAN, DATE, TIMESTAMP_NTZ); CAST it.",
                        f.data_type()
                    ))
                })?;
                out.push((name, declared));
            }
            out
        }
    })
}

/// The one-row answer of a write, as Snowflake gives it.
fn answer(create: bool, target: &TableName, rows: usize) -> Result<Vec<RecordBatch>> {
    let (field, column): (Field, ArrayRef) = if create {
        (
            Field::new("status", DataType::Utf8, false),
            Arc::new(StringArray::from(vec![format!(
                "Table {} successfully created.",
                target.table
            )])),
        )
    } else {
        (
            Field::new("number of rows inserted", DataType::Int64, false),
            Arc::new(Int64Array::from(vec![rows as i64])),
        )
    };
    Ok(vec![RecordBatch::try_new(
        Arc::new(Schema::new(vec![field])),
        vec![column],
    )?])
}

impl Engine {
    /// Runs an administrator's write (see the module documentation) as
    /// `actor`, recording its lineage.
    pub(crate) async fn capture_write(
        &self,
        write: Write,
        actor: &str,
    ) -> Result<Vec<RecordBatch>> {
        let version = self.current();
        let ws = version.workspace();
        let target = &write.target;
        let existing = ws.table(target);
        let created_by_veil =
            existing.is_some_and(|t| t.origin.file == crate::model::journal::JOURNAL_FILE);
        match (write.create, existing) {
            (true, Some(t)) => {
                return Err(refused(format!(
                    "CREATE TABLE {target}: the table already exists (declared at {}).",
                    t.origin
                )));
            }
            (false, None) => {
                return Err(refused(format!("INSERT INTO {target}: no such table.")));
            }
            (false, Some(t)) if !created_by_veil => {
                return Err(refused(format!(
                    "INSERT INTO {target}: Veil appends only to tables it created with CREATE TABLE ... AS SELECT; {target} is declared at {} and its files are its owner's.",
                    t.origin
                )));
            }
            _ => {}
        }
        // Plan and run the query over the raw relations, on the planning
        // thread like every statement.
        let state = fresh(&version.internal);
        let planning_state = state.clone();
        let query = write.query;
        let (plan, physical) = crate::guard::on_planning_thread(move |handle| {
            let mut stmt = Statement::Query(query);
            crate::guard::shape_statement(&mut stmt)?;
            handle.block_on(async {
                let plan = planning_state
                    .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
                    .await?;
                let physical = planning_state.create_physical_plan(&plan).await?;
                Ok::<_, VeilError>((plan, physical))
            })
        })
        .await??;
        let scans = raw_scans(&state, ws).await;
        let leaf = |scan: &TableScan| {
            let table = ws.table(scans.get(&source_id(scan))?)?;
            let schema = scan.source.schema();
            Some(
                scan.projected_schema
                    .fields()
                    .iter()
                    .map(|f| {
                        table
                            .columns
                            .iter()
                            .find(|c| {
                                physical_name(&c.name, &schema)
                                    .is_some_and(|p| p.name() == f.name())
                            })
                            .map(|c| {
                                Sources::from([ColumnRef::new(table.name.clone(), c.name.clone())])
                            })
                            .unwrap_or_default()
                    })
                    .collect(),
            )
        };
        let lineage = column_lineage(&plan, &leaf);
        let batches = crate::guard::catch_panics(async {
            Ok(
                datafusion::physical_plan::collect(physical, Arc::new(TaskContext::from(&state)))
                    .await?,
            )
        })
        .await?;
        let fields = plan.schema().fields().clone();
        let columns = written_columns(&write.columns, existing, &fields, target)?;
        // Each column as its declared type stores it, so every file of the
        // table has one schema.
        let schema: SchemaRef = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, t)| Field::new(n, t.arrow_type(), true))
                .collect::<Vec<_>>(),
        ));
        let batches = conform(batches, &schema, target)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let query_id = format!("veil-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
        let location = match existing {
            Some(t) => t
                .location
                .strip_prefix(&ws.dir)
                .unwrap_or(&t.location)
                .display()
                .to_string(),
            None => format!(
                "data/veil/{}/{}/{}",
                segment(&target.database),
                segment(&target.schema),
                segment(&target.table)
            ),
        };
        let dir = ws.dir.join(&location);
        let made_dir = !dir.exists();
        if write.create
            && !made_dir
            && std::fs::read_dir(&dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(refused(format!(
                "CREATE TABLE {target}: its directory {location} already holds files; move them away first."
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| {
            VeilError::workspace(
                location.clone(),
                format!("cannot create the table's directory: {e}"),
            )
        })?;
        let file = dir.join(format!("part-{}.parquet", &query_id[5..]));
        let undo = |file: &PathBuf| {
            let _ = std::fs::remove_file(file);
            if made_dir {
                let _ = std::fs::remove_dir(&dir);
            }
        };
        if let Err(e) = write_parquet(&file, &schema, &batches) {
            undo(&file);
            return Err(e);
        }
        let created = CreatedTable {
            name: target.clone(),
            location,
            columns: columns.clone(),
            query_id: Some(query_id.clone()),
        };
        // The new data must read back as the declared table before the
        // journal says it is one.
        let table = created.to_table(&ws.dir);
        if let Err(e) = raw_relation(&state, &table, &created.location).await {
            undo(&file);
            return Err(e);
        }
        let recorded = self
            .record_catalog(actor, |r| {
                if write.create {
                    r.create_table(created)?;
                }
                for ((name, _), sources) in columns.iter().zip(&lineage) {
                    let sources: Vec<ColumnRef> = sources.iter().cloned().collect();
                    if !sources.is_empty() {
                        let column = ColumnRef::new(target.clone(), name.clone());
                        r.add_lineage(&column, &sources, Some(&query_id), true);
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            // The change may have failed after its lines were appended (a
            // new version that would not build): then the journal names
            // this file and it must stay; otherwise nothing refers to it.
            let journal = crate::load::journal::journal_path(&ws.dir);
            let appended =
                std::fs::read_to_string(journal).is_ok_and(|text| text.contains(query_id.as_str()));
            if !appended {
                undo(&file);
            }
            return Err(e);
        }
        answer(write.create, target, rows)
    }
}
