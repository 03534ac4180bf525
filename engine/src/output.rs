//! Formatting query results as a table, CSV or JSON, and Snowflake's
//! column names for them (enforce layer: sessions and tools use it).

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::sql::sqlparser::ast::{Expr, Select, SelectItem, SetExpr, Spanned, Statement};
use datafusion::sql::sqlparser::tokenizer::Location;

use crate::error::Result;

/// Results as a text table.
pub fn table(batches: &[RecordBatch]) -> Result<String> {
    Ok(pretty_format_batches(batches)?.to_string())
}

/// Results as CSV with a header.
pub fn csv(batches: &[RecordBatch]) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut buf);
        for b in batches {
            writer.write(b)?;
        }
    }
    Ok(String::from_utf8_lossy(&buf).to_string())
}

/// Results as a JSON array of objects.
pub fn json(batches: &[RecordBatch]) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut buf);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs)?;
        writer.finish()?;
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    Ok(if text.is_empty() {
        "[]".to_string()
    } else {
        text
    })
}

/// Total rows.
pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// Gives the result columns of a query's unaliased expressions the names
/// Snowflake prints: the expression's SQL text as written, upper-cased
/// outside double-quoted identifiers (`SELECT 1, a+1` → `1`, `A+1`), where
/// DataFusion would print `Int64(1)`. Plain column references, aliased
/// items and statements other than queries keep their names; the values are
/// untouched.
pub fn with_snowflake_names(batches: Vec<RecordBatch>, sql: &str) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(batches);
    };
    let Some(renamed) = snowflake_schema(&first.schema(), sql) else {
        return Ok(batches);
    };
    batches
        .into_iter()
        .map(|b| with_schema(b, &renamed))
        .collect()
}

/// `schema` with the Snowflake names of `sql`'s unaliased expression items
/// (see [`with_snowflake_names`]), or `None` when no name changes.
pub(crate) fn snowflake_schema(schema: &SchemaRef, sql: &str) -> Option<SchemaRef> {
    // Re-parsing recurses as deep as the statement nests.
    crate::guard::on_planning_stack(|| Ok(SnowflakeNames::of_text(sql)))
        .ok()?
        .schema(schema)
}

/// The Snowflake names of a statement's result columns (see
/// [`with_snowflake_names`]), worked out once from its text and parse tree
/// (before Veil shapes it) and applied to the width of each result: kept
/// with the statement in the session's statement cache, so a statement
/// is not parsed again to name its columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SnowflakeNames {
    /// Per item of the leftmost SELECT: the Snowflake name of an unaliased
    /// expression (not a plain column reference), or `None`.
    items: Vec<Option<String>>,
    /// The first and last wildcard items (`first` is `items.len()` without).
    first_wildcard: usize,
    last_wildcard: Option<usize>,
}

impl SnowflakeNames {
    /// The names of `statement`, parsed from `sql`; none unless it is a
    /// query.
    pub(crate) fn of(sql: &str, statement: &Statement) -> Self {
        let Statement::Query(query) = statement else {
            return Self::default();
        };
        let Some(select) = leftmost_select(&query.body) else {
            return Self::default();
        };
        let items = &select.projection;
        let wildcard = |i: &SelectItem| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        };
        Self {
            items: items
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(expr)
                        if !matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) =>
                    {
                        Some(expression_name(sql, expr))
                    }
                    _ => None,
                })
                .collect(),
            first_wildcard: items.iter().position(wildcard).unwrap_or(items.len()),
            last_wildcard: items.iter().rposition(wildcard),
        }
    }

    /// The names of the one statement `sql` holds (none when it does not
    /// parse to one), parsing it.
    fn of_text(sql: &str) -> Self {
        match crate::sql::ident::parse_statements(sql).as_deref() {
            Ok([statement]) => Self::of(sql, statement),
            _ => Self::default(),
        }
    }

    /// `schema` under these names, or `None` when no name changes.
    pub(crate) fn schema(&self, schema: &SchemaRef) -> Option<SchemaRef> {
        let names = self.for_width(schema.fields().len());
        if names.iter().all(Option::is_none) {
            return None;
        }
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(&names)
            .map(|(f, n)| match n {
                Some(n) => f.as_ref().clone().with_name(n),
                None => f.as_ref().clone(),
            })
            .collect();
        Some(Arc::new(Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )))
    }

    /// Per result column (of `width`), the Snowflake name of an unaliased
    /// expression item, or `None` to keep DataFusion's name. Items before
    /// the first and after the last wildcard map to their positions.
    fn for_width(&self, width: usize) -> Vec<Option<String>> {
        let mut names = vec![None; width];
        let count = self.items.len();
        if self.last_wildcard.is_none() && count != width {
            return names;
        }
        for (i, name) in self.items.iter().enumerate() {
            let position = if i < self.first_wildcard {
                Some(i)
            } else if self.last_wildcard.is_some_and(|w| i > w) {
                (width + i).checked_sub(count)
            } else {
                None
            };
            if let (Some(p), Some(name)) = (position, name)
                && p < width
            {
                names[p] = Some(name.clone());
            }
        }
        names
    }
}

/// `batch`'s columns under `schema` (same types, other names).
pub(crate) fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        batch.columns().to_vec(),
        &options,
    )?)
}

fn leftmost_select(body: &SetExpr) -> Option<&Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::Query(q) => leftmost_select(&q.body),
        SetExpr::SetOperation { left, .. } => leftmost_select(left),
        _ => None,
    }
}

/// The text `expr` was written as, when its span re-parses to the same
/// expression; otherwise its printed form. Spans may stop short of closing
/// parentheses, so a few more characters are tried too.
fn expression_name(sql: &str, expr: &Expr) -> String {
    let span = expr.span();
    let printed = expr.to_string();
    for extra in 0..=8 {
        if let Some(text) = span_text(sql, span.start, span.end, extra)
            && crate::sql::ident::parse_expr(&text).is_ok_and(|e| e.to_string() == printed)
        {
            return upper_outside_quotes(text.trim());
        }
    }
    upper_outside_quotes(&printed)
}

/// The text between two 1-based locations (`end` exclusive, plus `extra`
/// characters).
fn span_text(sql: &str, start: Location, end: Location, extra: usize) -> Option<String> {
    if start.line == 0 || end.line < start.line {
        return None;
    }
    let offset = |at: Location| -> Option<usize> {
        let line_start: usize = sql
            .split_inclusive('\n')
            .take(usize::try_from(at.line).ok()?.checked_sub(1)?)
            .map(str::len)
            .sum();
        let line = sql.get(line_start..)?;
        let column = usize::try_from(at.column).ok()?.checked_sub(1)?;
        let within = match line.char_indices().nth(column) {
            Some((i, _)) => i,
            None => line.len(),
        };
        Some(line_start + within)
    };
    let from = offset(start)?;
    let to = offset(end)?;
    let rest = sql.get(to..)?;
    let to = to + rest.chars().take(extra).map(char::len_utf8).sum::<usize>();
    sql.get(from..to).map(str::to_string)
}

fn upper_outside_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if quoted {
            out.push(c);
        } else {
            out.extend(c.to_uppercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str, width: usize) -> Vec<Option<String>> {
        SnowflakeNames::of_text(sql).for_width(width)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn unaliased_expressions_are_named_as_written_and_upper_cased() {
        assert_eq!(
            names("select 1, a+1, b, count(*) as n, sum( x ) from t", 5),
            vec![some("1"), some("A+1"), None, None, some("SUM( X )")]
        );
        assert_eq!(names("select \"a\"+1 from t", 1), vec![some("\"a\"+1")]);
        assert_eq!(names("select 1 union all select 2", 1), vec![some("1")]);
        assert_eq!(
            names("select\n  lower(n)\n    from t", 1),
            vec![some("LOWER(N)")]
        );
    }

    #[test]
    fn items_around_wildcards_keep_their_positions() {
        assert_eq!(
            names("select 1, *, 2 from t", 5),
            vec![some("1"), None, None, None, some("2")]
        );
        assert_eq!(names("select * from t", 3), vec![None, None, None]);
        // Not a query, or a width that does not match: nothing renamed.
        assert_eq!(names("show tables", 2), vec![None, None]);
        assert_eq!(names("select 1, 2", 3), vec![None, None, None]);
    }
}
