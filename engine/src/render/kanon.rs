//! `k_anonymize: k` (SPEC rule 24): every column of a table whose winning
//! mask is `k_anonymize` is a quasi-identifier. The policy relation counts,
//! over the rows the user sees (after the row rules, with window functions),
//! how many rows share each combination of generalized quasi-identifiers at
//! each of five levels, all columns at the same level:
//!
//! | level | numbers | dates, timestamps | strings |
//! | --- | --- | --- | --- |
//! | 0 | the value | the value | the value |
//! | 1 | to 10 (toward zero) | the month | the first 4 characters |
//! | 2 | to 100 | the year | the first 2 |
//! | 3 | to 1 000 | the year | the first 1 |
//! | 4 | to 10 000 | the year | `''` |
//!
//! It picks the lowest level at which the rows in combinations rarer than
//! *k* are at most a tenth of the visible rows (or fewer than *k*), shows
//! every combination
//! that reaches *k* there, and suppresses (NULL) the quasi-identifiers of
//! the rest; when no level qualifies, every quasi-identifier is NULL. So
//! every non-NULL combination a user sees occurs at least *k* times among
//! the rows they see. Users the rule does not apply to see raw values.
//!
//! The relation is three nested selects over the usual policy relation
//! (which passes the quasi-identifiers through raw): the counts per level
//! and whether the rule applies (inner), the rare rows per level (middle),
//! the generalized or suppressed values (outer).

use datafusion::sql::sqlparser::ast::{Expr, Query, SelectItem};

use crate::compile::{CompiledColumn, CompiledTable};
use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ident::{parse_generated_expr, quoted};

use super::*;

/// Generalization levels (level `LEVELS` would be full suppression).
pub(super) const LEVELS: usize = 5;

/// The quasi-identifier columns of `table` and the table's k (the largest
/// of theirs).
pub(super) fn quasi_identifiers(table: &CompiledTable) -> (Vec<&CompiledColumn>, u32) {
    let mut k = 0;
    let columns = table
        .columns
        .iter()
        .filter(|c| {
            c.mask.as_ref().is_some_and(|m| match m.mask.spec {
                MaskSpec::KAnonymize(n) if m.mask.fallback.is_none() => {
                    k = k.max(n);
                    true
                }
                _ => false,
            })
        })
        .collect();
    (columns, k)
}

fn column_sql(name: &str) -> String {
    format!("\"t\".{}", quoted(name))
}

/// The SQL text of `column` generalized to `level`.
fn generalize(column: &CompiledColumn, level: usize) -> String {
    let c = column_sql(&column.name);
    if level == 0 {
        return c;
    }
    match column.declared {
        SnowflakeType::Number { .. } | SnowflakeType::Float => {
            let width = 10u64.pow(level as u32);
            format!(
                "CAST(trunc(CAST({c} AS DOUBLE) / {width}) * {width} AS {})",
                column.declared
            )
        }
        SnowflakeType::Date | SnowflakeType::TimestampNtz => {
            let unit = if level == 1 { "month" } else { "year" };
            let ty = if column.declared == SnowflakeType::Date {
                "DATE"
            } else {
                "TIMESTAMP"
            };
            format!("CAST(date_trunc('{unit}', {c}) AS {ty})")
        }
        _ => {
            let keep = [4, 2, 1, 0][(level - 1).min(3)];
            format!("substr({c}, 1, {keep})")
        }
    }
}

fn item(sql: &str, alias: &str) -> Result<SelectItem> {
    Ok(SelectItem::ExprWithAlias {
        expr: parse_generated_expr(sql)?,
        alias: quoted(alias),
    })
}

fn applies_alias(column: &str) -> String {
    format!("veil$a_{column}")
}

impl Renderer<'_> {
    /// The inner select's extra items: per level, how many visible rows
    /// share the row's generalized combination; per quasi-identifier,
    /// whether the rule applies to the user (NULL conditions mask).
    pub(super) fn kanon_inner_items(&self, qis: &[&CompiledColumn]) -> Result<Vec<SelectItem>> {
        let mut items = Vec::new();
        for level in 0..LEVELS {
            let partition: Vec<String> = qis.iter().map(|c| generalize(c, level)).collect();
            items.push(item(
                &format!("count(*) OVER (PARTITION BY {})", partition.join(", ")),
                &format!("veil$k{level}"),
            )?);
        }
        for c in qis {
            let Some(applied) = &c.mask else { continue };
            let applies = match &applied.applies {
                Applicability::Everyone => B::Lit(true),
                Applicability::EveryoneExcept(cond) => match self.condition(cond) {
                    B::Lit(b) => B::Lit(!b),
                    B::E(e) => B::E(case(e, B::Lit(false).into_expr(), B::Lit(true).into_expr())),
                },
                Applicability::EveryoneWho(cond) => match self.condition(cond) {
                    B::Lit(b) => B::Lit(b),
                    B::E(e) => B::E(case(
                        not(B::E(e)).into_expr(),
                        B::Lit(false).into_expr(),
                        B::Lit(true).into_expr(),
                    )),
                },
            };
            items.push(SelectItem::ExprWithAlias {
                expr: applies.into_expr(),
                alias: quoted(&applies_alias(&c.name)),
            });
        }
        Ok(items)
    }
}

/// Wraps the inner policy relation in the middle and outer selects.
pub(super) fn wrap(
    inner: Query,
    table: &CompiledTable,
    qis: &[&CompiledColumn],
    k: u32,
) -> Result<Query> {
    let passthrough = |names: &mut Vec<(String, Option<Expr>)>| {
        for c in &table.columns {
            names.push((c.name.clone(), None));
        }
    };
    let mut middle = Vec::new();
    passthrough(&mut middle);
    for c in qis {
        middle.push((applies_alias(&c.name), None));
    }
    for level in 0..LEVELS {
        middle.push((format!("veil$k{level}"), None));
        middle.push((
            format!("veil$s{level}"),
            Some(parse_generated_expr(&format!(
                "sum(CASE WHEN \"t\".\"veil$k{level}\" < {k} THEN 1 ELSE 0 END) OVER ()"
            ))?),
        ));
    }
    middle.push((
        "veil$n".to_string(),
        Some(parse_generated_expr("count(*) OVER ()")?),
    ));
    let middle = masked_projection(inner, middle)?;
    let mut outer = Vec::new();
    for c in &table.columns {
        if !qis.iter().any(|q| q.name == c.name) {
            outer.push((c.name.clone(), None));
            continue;
        }
        let mut whens = String::new();
        for level in 0..LEVELS {
            whens.push_str(&format!(
                " WHEN (\"t\".\"veil$s{level}\" * 10 <= \"t\".\"veil$n\" OR \"t\".\"veil$s{level}\" < {k}) THEN CASE WHEN \"t\".\"veil$k{level}\" >= {k} THEN {} END",
                generalize(c, level)
            ));
        }
        let sql = format!(
            "CASE WHEN \"t\".{applies} IS NOT TRUE THEN {raw} ELSE CASE{whens} END END",
            applies = quoted(&applies_alias(&c.name)),
            raw = column_sql(&c.name),
        );
        outer.push((c.name.clone(), Some(parse_generated_expr(&sql)?)));
    }
    masked_projection(middle, outer)
}

/// Refuses k-anonymity where Veil cannot compute it (the Snowflake export).
pub(super) fn refuse_export(table: &CompiledTable) -> Result<()> {
    let (qis, _) = quasi_identifiers(table);
    match qis.first() {
        Some(c) => Err(VeilError::PolicyFailure(format!(
            "policy '{}' on column {}.{}: k_anonymize has no Snowflake equivalent: it needs counts across rows, which a masking policy (one value at a time) cannot compute, so Veil refuses to export it",
            c.mask
                .as_ref()
                .map(|m| m.policy.as_str())
                .unwrap_or_default(),
            table.name,
            c.name
        ))),
        None => Ok(()),
    }
}
