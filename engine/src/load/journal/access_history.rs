//! Snowflake `ACCESS_HISTORY` rows → column lineage (SPEC §7.1).
//!
//! Input: a JSON array of rows or JSON Lines, one row per statement, with
//! `query_id`, `query_start_time` and `objects_modified` (column names in
//! either case, as `SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.ACCESS_HISTORY`
//! exports them; `objects_modified` may also be a string holding its JSON).
//! Each modified table column gives one lineage event: the column and the
//! table columns it came from (`directSources`; for a direct source that is
//! a view, that column's `baseSources`). Views have no lineage: a row
//! modifying a view is ignored. Names follow Snowflake identifier rules.
//! Tables or columns the workspace does not declare are reported and
//! skipped, never fatal; a malformed file is an error naming the line (or
//! the row), and nothing of it is recorded.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::error::{Result, VeilError};
use crate::model::{ColumnRef, Recorder, TableName, Workspace};

#[derive(Debug, Deserialize)]
struct Row {
    #[serde(default, alias = "QUERY_ID")]
    query_id: Option<String>,
    #[serde(default, alias = "QUERY_START_TIME")]
    #[allow(dead_code)]
    query_start_time: Option<serde_json::Value>,
    #[serde(default, alias = "OBJECTS_MODIFIED")]
    objects_modified: Option<ObjectsModified>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ObjectsModified {
    List(Vec<Modified>),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Modified {
    object_name: String,
    #[serde(default)]
    object_domain: Option<String>,
    #[serde(default)]
    columns: Vec<ModifiedColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModifiedColumn {
    column_name: String,
    #[serde(default)]
    direct_sources: Vec<Source>,
    #[serde(default)]
    base_sources: Vec<Source>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    object_name: String,
    #[serde(default)]
    column_name: Option<String>,
    #[serde(default)]
    object_domain: Option<String>,
}

/// One modified column's lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnLineage {
    /// The column written.
    pub column: ColumnRef,
    /// The table columns it came from.
    pub sources: Vec<ColumnRef>,
    /// The statement.
    pub query_id: Option<String>,
}

/// What an ingestion read and did.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Rows read.
    pub rows: usize,
    /// Column edges in the file (to and from declared table columns).
    pub edges: usize,
    /// Edges the journal did not know yet.
    pub new_edges: usize,
    /// Rows or objects ignored because they modify a view (or anything but
    /// a table).
    pub ignored_views: usize,
    /// Tables and columns the workspace does not declare (skipped).
    pub unknown: BTreeSet<String>,
    /// Tags propagated (with `--retroactive`).
    pub propagated: usize,
}

fn is_table(domain: Option<&str>) -> bool {
    domain.is_none_or(|d| d.eq_ignore_ascii_case("table"))
}

/// Reads `text` (from `file`, for errors): a JSON array of rows or JSON
/// Lines. Syntax and shape errors name the line.
fn parse_rows(text: &str, file: &str) -> Result<Vec<(usize, Row)>> {
    let at = |line: usize, message: String| VeilError::workspace(format!("{file}:{line}"), message);
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let rows: Vec<Row> = serde_json::from_str(text).map_err(|e| {
            at(
                e.line(),
                format!("not ACCESS_HISTORY rows ({e}); nothing was ingested"),
            )
        })?;
        return Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect());
    }
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line).map_err(|e| {
            at(
                i + 1,
                format!("not an ACCESS_HISTORY row ({e}); nothing was ingested"),
            )
        })?;
        rows.push((i + 1, row));
    }
    Ok(rows)
}

/// Resolves object names once each (the same names recur on every row).
struct Names<'a> {
    ws: &'a Workspace,
    declared: HashMap<&'a TableName, &'a crate::model::Table>,
    tables: HashMap<String, Option<TableName>>,
}

impl<'a> Names<'a> {
    fn new(ws: &'a Workspace) -> Self {
        Self {
            ws,
            declared: ws.tables.iter().map(|t| (&t.name, t)).collect(),
            tables: HashMap::new(),
        }
    }

    /// The declared table `name` names, or `None` (reported as unknown).
    fn table(&mut self, name: &str) -> std::result::Result<Option<TableName>, String> {
        if let Some(t) = self.tables.get(name) {
            return Ok(t.clone());
        }
        let s = &self.ws.settings;
        let parsed =
            crate::sql::ident::parse_table_name(name, &s.default_database, &s.default_schema)?;
        let found = self.declared.get(&parsed).map(|t| t.name.clone());
        self.tables.insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// The declared column `column` of `table`: the exact name first (as
    /// Snowflake stores it), else by the unquoted-identifier rule.
    fn column(&self, table: &TableName, column: &str) -> Option<String> {
        let t = self.declared.get(table)?;
        if t.column(column).is_some() {
            return Some(column.to_string());
        }
        let upper = crate::sql::ident::normalize_ident(column);
        t.column(&upper).map(|_| upper)
    }
}

/// Reads ACCESS_HISTORY `text` (`file` names it in errors) into column
/// lineage over the declared tables of `ws`, and what was skipped.
pub fn parse_access_history(
    ws: &Workspace,
    text: &str,
    file: &str,
) -> Result<(Vec<ColumnLineage>, IngestReport)> {
    let rows = parse_rows(text, file)?;
    let mut report = IngestReport {
        rows: rows.len(),
        ..IngestReport::default()
    };
    let mut names = Names::new(ws);
    let mut out = Vec::new();
    for (line, row) in rows {
        let bad = |m: String| {
            VeilError::workspace(
                format!("{file}:{line}"),
                format!(
                    "row{}: {m}; nothing was ingested",
                    row.query_id
                        .as_deref()
                        .map(|q| format!(" (query {q})"))
                        .unwrap_or_default()
                ),
            )
        };
        let modified = match &row.objects_modified {
            None => continue,
            Some(ObjectsModified::List(l)) => l,
            Some(ObjectsModified::Text(t)) if t.trim().is_empty() => continue,
            Some(ObjectsModified::Text(t)) => &serde_json::from_str::<Vec<Modified>>(t)
                .map_err(|e| bad(format!("objects_modified is not a list of objects ({e})")))?,
        };
        for object in modified {
            if !is_table(object.object_domain.as_deref()) {
                report.ignored_views += 1;
                continue;
            }
            let Some(target_table) = names.table(&object.object_name).map_err(&bad)? else {
                report
                    .unknown
                    .insert(format!("table {}", object.object_name));
                continue;
            };
            for c in &object.columns {
                let Some(target_column) = names.column(&target_table, &c.column_name) else {
                    report
                        .unknown
                        .insert(format!("column {target_table}.{}", c.column_name));
                    continue;
                };
                let via_view = c
                    .direct_sources
                    .iter()
                    .any(|s| !is_table(s.object_domain.as_deref()));
                let mut picked: Vec<&Source> = c
                    .direct_sources
                    .iter()
                    .filter(|s| is_table(s.object_domain.as_deref()))
                    .collect();
                if via_view || c.direct_sources.is_empty() {
                    picked.extend(
                        c.base_sources
                            .iter()
                            .filter(|s| is_table(s.object_domain.as_deref())),
                    );
                }
                let mut sources: Vec<ColumnRef> = Vec::new();
                for s in picked {
                    let Some(column_name) = &s.column_name else {
                        continue;
                    };
                    let Some(table) = names.table(&s.object_name).map_err(&bad)? else {
                        report.unknown.insert(format!("table {}", s.object_name));
                        continue;
                    };
                    let Some(column) = names.column(&table, column_name) else {
                        report
                            .unknown
                            .insert(format!("column {table}.{column_name}"));
                        continue;
                    };
                    let source = ColumnRef::new(table, column);
                    if !sources.contains(&source) {
                        sources.push(source);
                    }
                }
                if sources.is_empty() {
                    continue;
                }
                report.edges += sources.len();
                out.push(ColumnLineage {
                    column: ColumnRef::new(target_table.clone(), target_column),
                    sources,
                    query_id: row.query_id.clone(),
                });
            }
        }
    }
    Ok((out, report))
}

/// Records `lineage` with `recorder` (propagating existing tags only when
/// `retroactive`), completing `report`.
pub fn record_lineage(
    recorder: &mut Recorder<'_>,
    lineage: &[ColumnLineage],
    retroactive: bool,
    report: &mut IngestReport,
) {
    let before = recorder.events().len();
    let edges_before = recorder.workspace().journal.graph.edge_count();
    for l in lineage {
        recorder.add_lineage(&l.column, &l.sources, l.query_id.as_deref(), retroactive);
    }
    report.new_edges = recorder.workspace().journal.graph.edge_count() - edges_before;
    report.propagated = recorder.events()[before..]
        .iter()
        .filter(|e| e.is_propagation())
        .count();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_history_accepts_objects_modified_as_text() {
        let rows = parse_rows(
            "{\"QUERY_ID\":\"q\",\"OBJECTS_MODIFIED\":\"[]\"}\n",
            "ah.jsonl",
        )
        .unwrap();
        assert!(matches!(
            rows[0].1.objects_modified,
            Some(ObjectsModified::Text(_))
        ));
    }

    #[test]
    fn access_history_syntax_errors_name_the_line() {
        let err = parse_rows("{\"query_id\":\"a\"}\n{\"query_id\": \n", "ah.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ah.jsonl:2:"), "{err}");
        let err = parse_rows("[\n {\"query_id\": 1}\n]", "ah.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ah.json:2:"), "{err}");
    }
}
