//! Filters on a column the session sees rounded, as ranges of the raw
//! column ([`RoundedColumn`]): `balance >= 510` runs below the policy as
//! `raw >= 505`, where Parquet prunes on it and only the rows it keeps are
//! masked. The ranges come from `veil_udfs::round_range`, which finds them
//! over the mask's own exact path; the README (enforcement mechanism) says
//! why they reveal nothing beyond the masked predicate's own answer.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column as DfColumn;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlan, Operator, TableProviderFilterPushDown, lit};
use veil_udfs::SnowflakeType;
use veil_udfs::round_range::{Comparison, RawRange, Rounding};

use super::pushdown::balanced_conjunction;

/// A column a policy relation shows rounded: `veil_mask_round(raw, step,
/// declared)`, or in profile-join mode `CASE WHEN exempt THEN raw ELSE
/// veil_mask_round(raw, ...) END`.
#[derive(Debug, Clone)]
pub(super) struct RoundedColumn {
    /// The raw column, as the top projection's input names it.
    raw: Expr,
    raw_type: DataType,
    /// The mask over the raw type, worked out once per relation.
    rounding: Rounding,
    /// Whether an exemption may show the session the raw value (the CASE).
    exemptible: bool,
}

/// The rounded columns of `plan`'s top projection, by output name.
pub(super) fn rounded_columns(plan: &LogicalPlan) -> RoundedColumns {
    fn text(e: &Expr) -> Option<&str> {
        match e {
            Expr::Literal(
                ScalarValue::Utf8(Some(t))
                | ScalarValue::Utf8View(Some(t))
                | ScalarValue::LargeUtf8(Some(t)),
                _,
            ) => Some(t),
            _ => None,
        }
    }
    // `veil_mask_round(raw, 'step', 'declared')` over a plain column.
    fn mask(e: &Expr) -> Option<(&DfColumn, &str, SnowflakeType)> {
        let Expr::ScalarFunction(f) = e else {
            return None;
        };
        match (f.func.name(), f.args.as_slice()) {
            ("veil_mask_round", [Expr::Column(c), step, declared]) => {
                Some((c, text(step)?, SnowflakeType::parse(text(declared)?).ok()?))
            }
            _ => None,
        }
    }
    let LogicalPlan::Projection(p) = plan else {
        return RoundedColumns::new();
    };
    let input = p.input.schema();
    let rounded = |e: &Expr| -> Option<RoundedColumn> {
        let (column, step, declared, exemptible) = match e.clone().unalias_nested().data {
            Expr::Case(case) => match (case.expr, case.when_then_expr.as_slice(), case.else_expr) {
                (None, [(_, then)], Some(otherwise)) => {
                    let (c, step, declared) = mask(&otherwise)?;
                    if **then != Expr::Column(c.clone()) {
                        return None;
                    }
                    (c.clone(), step.to_string(), declared, true)
                }
                _ => return None,
            },
            other => {
                let (c, step, declared) = mask(&other)?;
                (c.clone(), step.to_string(), declared, false)
            }
        };
        let raw_type = input
            .qualified_field_from_column(&column)
            .ok()?
            .1
            .data_type()
            .clone();
        Some(RoundedColumn {
            raw: Expr::Column(column),
            rounding: Rounding::new(&raw_type, &step, declared)?,
            raw_type,
            exemptible,
        })
    };
    p.expr
        .iter()
        .zip(p.schema.fields())
        .filter_map(|(e, f)| Some((f.name().clone(), rounded(e)?)))
        .collect()
}

/// What a filter on a rounded column becomes under the policy relation's
/// top projection.
#[derive(Debug)]
pub(super) enum RawFilter {
    /// A predicate selecting exactly the rows the filter selects: it
    /// replaces the filter.
    Exact(Expr),
    /// A predicate selecting at least those rows (`None`: every row): the
    /// filter still runs above the policy, on the rounded values.
    Implied(Option<Expr>),
}

impl RoundedColumn {
    /// `rounded OP value` over the raw column (see `veil_udfs::round_range`).
    /// Where every session sees the column rounded, exactly: the rows it
    /// selects are those whose rounded value satisfies the comparison, so
    /// it may run below the policy, where Parquet prunes on it and only the
    /// rows it keeps are masked. Where an exemption may show the raw value
    /// (profile-join mode's CASE), implied: a range holding both what the
    /// exempt and what the masked session would select (`hull`), which
    /// goes down past the profile join to the raw scan, while the filter
    /// itself still runs on the values the session sees (as a join filter
    /// against the profile row, it would run per row on both branches).
    /// Either is a comparison with rounding boundaries: it never fails and
    /// tells two raw values apart only when their rounded values differ.
    /// `None`: not a comparison this applies to.
    fn raw_filter(&self, op: Comparison, value: &ScalarValue) -> Option<RawFilter> {
        let bound = self.bound(value)?;
        let found = self.rounding.range(op, bound);
        if self.exemptible {
            return Some(RawFilter::Implied(self.hull(op, bound, found)));
        }
        Some(RawFilter::Exact(match found {
            RawRange::Empty => lit(false),
            RawRange::Within { low, high } => {
                let mut parts = Vec::new();
                if let Some(low) = low {
                    parts.push(self.raw.clone().gt_eq(self.raw_literal(low)?));
                }
                if let Some(high) = high {
                    parts.push(self.raw.clone().lt_eq(self.raw_literal(high)?));
                }
                // Every value rounds to one that satisfies it: only NULL
                // (rounded to NULL) does not.
                balanced_conjunction(parts).unwrap_or_else(|| self.raw.clone().is_not_null())
            }
        }))
    }

    /// How a comparison with `value` may be pushed: exactly where every
    /// session sees the column rounded, as an implied range where an
    /// exemption may show the raw value; `None` when `value` is not of the
    /// raw column's type. As cheap as DataFusion's repeated asking needs:
    /// the range itself is worked out once, by `scan`.
    fn pushdown(&self, value: &ScalarValue) -> Option<TableProviderFilterPushDown> {
        self.bound(value)?;
        Some(if self.exemptible {
            TableProviderFilterPushDown::Inexact
        } else {
            TableProviderFilterPushDown::Exact
        })
    }

    /// `value` in the raw column's representation, if it is of its type.
    fn bound(&self, value: &ScalarValue) -> Option<i128> {
        match (value, &self.raw_type) {
            (ScalarValue::Int64(Some(v)), DataType::Int64) => Some(i128::from(*v)),
            (ScalarValue::Decimal128(Some(v), _, s), DataType::Decimal128(_, raw_scale))
                if s == raw_scale =>
            {
                Some(*v)
            }
            (ScalarValue::Date32(Some(v)), DataType::Date32) => Some(i128::from(*v)),
            _ => None,
        }
    }
}

impl RoundedColumn {
    /// A range of the raw column holding both `raw OP bound` (what an
    /// exempt session's filter selects) and `found` (what a masked one's
    /// selects), widened to whole rounding buckets, so that, like `found`,
    /// it tells raw values apart only by their rounded values. `None`:
    /// unbounded both sides, or a bucket cannot be worked out.
    fn hull(&self, op: Comparison, bound: i128, found: RawRange) -> Option<Expr> {
        // `raw OP bound` as (low, high), `None` being unbounded.
        let (low, high) = match op {
            Comparison::GtEq => (Some(bound), None),
            Comparison::Gt => (Some(bound.checked_add(1)?), None),
            Comparison::LtEq => (None, Some(bound)),
            Comparison::Lt => (None, Some(bound.checked_sub(1)?)),
            Comparison::Eq => (Some(bound), Some(bound)),
        };
        let (low, high) = match found {
            RawRange::Empty => (low, high),
            RawRange::Within {
                low: found_low,
                high: found_high,
            } => (
                low.zip(found_low).map(|(a, b)| a.min(b)),
                high.zip(found_high).map(|(a, b)| a.max(b)),
            ),
        };
        let bucket = |v: i128| self.rounding.bucket(v);
        let low = match low {
            None => None,
            Some(v) => match bucket(v)? {
                RawRange::Within { low, .. } => low,
                RawRange::Empty => return None,
            },
        };
        let high = match high {
            None => None,
            Some(v) => match bucket(v)? {
                RawRange::Within { high, .. } => high,
                RawRange::Empty => return None,
            },
        };
        let mut parts = Vec::new();
        if let Some(low) = low {
            parts.push(self.raw.clone().gt_eq(self.raw_literal(low)?));
        }
        if let Some(high) = high {
            parts.push(self.raw.clone().lt_eq(self.raw_literal(high)?));
        }
        balanced_conjunction(parts)
    }

    /// `v` as a literal of the raw column's type.
    fn raw_literal(&self, v: i128) -> Option<Expr> {
        Some(Expr::Literal(
            match &self.raw_type {
                DataType::Int64 => ScalarValue::Int64(Some(i64::try_from(v).ok()?)),
                DataType::Decimal128(p, s) => ScalarValue::Decimal128(Some(v), *p, *s),
                DataType::Date32 => ScalarValue::Date32(Some(i32::try_from(v).ok()?)),
                _ => return None,
            },
            None,
        ))
    }
}

/// The rounded columns of a relation, by output name.
pub(super) type RoundedColumns = HashMap<String, RoundedColumn>;

/// A user filter `rounded_column OP literal` (either way round) as what it
/// becomes below the policy; `None`: not such a filter.
pub(super) fn rounded_filter(columns: &RoundedColumns, filter: &Expr) -> Option<RawFilter> {
    let (column, op, value) = comparison(filter)?;
    columns.get(&column.name)?.raw_filter(op, value)
}

/// How `filter` may be pushed as a filter on a rounded column (see
/// `RoundedColumn::pushdown`).
pub(super) fn rounded_pushdown(
    columns: &RoundedColumns,
    filter: &Expr,
) -> Option<TableProviderFilterPushDown> {
    let (column, _, value) = comparison(filter)?;
    columns.get(&column.name)?.pushdown(value)
}

/// `column OP literal`, or `literal OP column` read the other way round.
fn comparison(filter: &Expr) -> Option<(&DfColumn, Comparison, &ScalarValue)> {
    let Expr::BinaryExpr(b) = filter else {
        return None;
    };
    let op = match b.op {
        Operator::Eq => Comparison::Eq,
        Operator::Lt => Comparison::Lt,
        Operator::LtEq => Comparison::LtEq,
        Operator::Gt => Comparison::Gt,
        Operator::GtEq => Comparison::GtEq,
        _ => return None,
    };
    match (b.left.as_ref(), b.right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => Some((c, op, v)),
        (Expr::Literal(v, _), Expr::Column(c)) => Some((c, op.flipped(), v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::enforce::Engine;
    use crate::enforce::pushdown::tests::{assert_filter_below_the_policy, sample};

    #[tokio::test]
    async fn a_filter_on_a_rounded_column_selects_what_the_user_sees() {
        use crate::model::{EnforcementMode, SessionOptions};
        use datafusion::arrow::array::{AsArray, RecordBatch};
        use datafusion::arrow::datatypes::Int64Type;
        use datafusion::datasource::MemTable;
        use datafusion::prelude::SessionContext;
        let engine = Engine::load(sample()).await.unwrap();
        let count = |batches: &[RecordBatch]| -> i64 {
            batches
                .iter()
                .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
                .sum()
        };
        // BALANCE (NUMBER(3,0)) rounded to 10, AMOUNT (NUMBER(10,2)) to 10,
        // ORDER_DATE to its month; CAROL is exempt from all three.
        let cases: [(&str, &[&str], &[&str]); 2] = [
            (
                "CUSTOMERS",
                &["BALANCE", "REGION"],
                &[
                    "BALANCE >= 100",
                    "BALANCE > 95",
                    "BALANCE < 60",
                    "BALANCE <= 55",
                    "BALANCE = 100",
                    "BALANCE = 101",
                    "100 <= BALANCE",
                    "BALANCE BETWEEN 20 AND 200",
                    "BALANCE >= 100 AND REGION = 'EU'",
                    "BALANCE > -1000",
                    "BALANCE < -1000",
                    // Raw values on the ends of the ranges: 505 is the
                    // first balance rounding to 510, 754 the last to 750
                    // (NUMBER(3,0) clamps 996 to 990 too).
                    "BALANCE <= 750",
                    "BALANCE < 760",
                    "BALANCE = 750",
                    "BALANCE >= 510",
                    "BALANCE > 500",
                    "BALANCE < 510",
                    "BALANCE <= 990",
                    "BALANCE < 1000",
                    "BALANCE = 990",
                    "BALANCE = 510",
                ],
            ),
            (
                "ORDERS",
                &["AMOUNT", "ORDER_DATE", "REGION"],
                &[
                    "AMOUNT >= 100.00",
                    "AMOUNT < 250.5",
                    "AMOUNT = 120.00",
                    "ORDER_DATE >= DATE '2024-02-01'",
                    "ORDER_DATE < DATE '2024-03-15'",
                    "ORDER_DATE = DATE '2024-02-01'",
                    "ORDER_DATE = DATE '2024-02-02'",
                    // 2025-04-01 starts its month, 2024-06-30 ends its.
                    "ORDER_DATE >= DATE '2025-04-01'",
                    "ORDER_DATE > DATE '2025-03-01'",
                    "ORDER_DATE < DATE '2025-04-01'",
                    "ORDER_DATE <= DATE '2024-06-01'",
                    "ORDER_DATE = DATE '2024-06-01'",
                    "AMOUNT >= 20",
                    "AMOUNT <= 1230",
                ],
            ),
        ];
        // Each analyst sees one region's rows: between them, every row.
        for user in ["alice", "bob", "dana", "carol"] {
            for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
                let session = engine
                    .session_with(SessionOptions {
                        mode: Some(mode),
                        ..SessionOptions::user(user)
                    })
                    .unwrap();
                for (table, columns, predicates) in cases {
                    // What the user sees, unfiltered, in a plain table: the
                    // oracle the filtered query must agree with.
                    let seen = session
                        .sql(&format!("SELECT {} FROM {table}", columns.join(", ")))
                        .await
                        .unwrap();
                    let ctx = SessionContext::new();
                    let schema = seen[0].schema();
                    ctx.register_table(
                        "seen",
                        std::sync::Arc::new(MemTable::try_new(schema, vec![seen]).unwrap()),
                    )
                    .unwrap();
                    for predicate in predicates {
                        let enforced = count(
                            &session
                                .sql(&format!("SELECT COUNT(*) FROM {table} WHERE {predicate}"))
                                .await
                                .unwrap(),
                        );
                        // Quoted: a plain context folds unquoted names to
                        // lower case.
                        let oracle_predicate =
                            columns.iter().fold(predicate.to_string(), |p, c| {
                                p.replace(c, &format!("\"{c}\""))
                            });
                        let expected = count(
                            &ctx.sql(&format!(
                                "SELECT COUNT(*) FROM seen WHERE {oracle_predicate}"
                            ))
                            .await
                            .unwrap()
                            .collect()
                            .await
                            .unwrap(),
                        );
                        assert_eq!(enforced, expected, "{user} {mode:?} {table}: {predicate}");
                    }
                }
            }
        }
        // bob's filter on his rounded balance runs below the policy (no
        // FilterExec above the barrier), as a range of raw balances.
        let bob = engine.session("bob").unwrap();
        assert_filter_below_the_policy(&bob, "SELECT id FROM customers WHERE balance >= 100").await;
    }
}
