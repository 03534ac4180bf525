//! The policy relation: [`PolicyTable`], a table as one session may see it
//! (its policy SQL planned over the raw relation, behind a
//! [`PolicyBarrierExec`]), and the rule for which user filters may be
//! evaluated below the policy (`safe_to_push`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::common::Column as DfColumn;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{
    Expr, Filter, LogicalPlan, LogicalPlanBuilder, Operator, Projection,
    TableProviderFilterPushDown, TableType, col, lit,
};
use datafusion::physical_plan::ExecutionPlan;
use veil_udfs::SnowflakeType;
use veil_udfs::round_range::{Comparison, RawRange, bucket, raw_range};

use veil_udfs::context::SessionContextFunc;

use crate::enforce::PolicyBarrierExec;
use crate::load::data_check::DataFiles;
use crate::model::TableName;

use super::state::*;

// ---------------------------------------------------------------------------
// The policy relation.

/// A table as one session may see it: its policy SQL planned over the raw
/// relation, executed behind a [`PolicyBarrierExec`].
#[derive(Debug)]
pub struct PolicyTable {
    pub(super) name: TableName,
    pub(super) schema: SchemaRef,
    /// The policy SQL's plan, analyzed.
    pub(super) plan: LogicalPlan,
    /// `plan` through the full logical optimizer, once, when its result
    /// cannot depend on the statement (see `reusable`); each scan then only
    /// pushes its filters, projection and limit into it (`PER_SCAN_RULES`).
    pub(super) optimized: Option<LogicalPlan>,
    /// Where it is planned: `relation_state` of the session's internal state.
    pub(super) state: SessionState,
    pub(super) pushdown_columns: HashSet<String>,
    /// The columns the relation's top projection rounds for this session
    /// (filters on them become ranges of the raw column: `rounded_filter`).
    pub(super) rounded: HashMap<String, RoundedColumn>,
    pub(super) data: Option<Arc<DataFiles>>,
}

/// A column a policy relation shows rounded: `veil_mask_round(raw, step,
/// declared)`, or in profile-join mode `CASE WHEN exempt THEN raw ELSE
/// veil_mask_round(raw, ...) END`.
#[derive(Debug, Clone)]
pub(super) struct RoundedColumn {
    /// The raw column, as the top projection's input names it.
    raw: Expr,
    raw_type: DataType,
    step: String,
    declared: SnowflakeType,
    /// When this holds the session sees the raw value.
    exempt: Option<Expr>,
}

/// The rounded columns of `plan`'s top projection, by output name.
fn rounded_columns(plan: &LogicalPlan) -> HashMap<String, RoundedColumn> {
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
        return HashMap::new();
    };
    let input = p.input.schema();
    let rounded = |e: &Expr| -> Option<RoundedColumn> {
        let (column, step, declared, exempt) = match e.clone().unalias_nested().data {
            Expr::Case(case) => match (case.expr, case.when_then_expr.as_slice(), case.else_expr) {
                (None, [(when, then)], Some(otherwise)) => {
                    let (c, step, declared) = mask(&otherwise)?;
                    if **then != Expr::Column(c.clone()) {
                        return None;
                    }
                    (
                        c.clone(),
                        step.to_string(),
                        declared,
                        Some(when.as_ref().clone()),
                    )
                }
                _ => return None,
            },
            other => {
                let (c, step, declared) = mask(&other)?;
                (c.clone(), step.to_string(), declared, None)
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
            raw_type,
            step,
            declared,
            exempt,
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
enum RawFilter {
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
        let bound = match (value, &self.raw_type) {
            (ScalarValue::Int64(Some(v)), DataType::Int64) => i128::from(*v),
            (ScalarValue::Decimal128(Some(v), _, s), DataType::Decimal128(_, raw_scale))
                if s == raw_scale =>
            {
                *v
            }
            (ScalarValue::Date32(Some(v)), DataType::Date32) => i128::from(*v),
            _ => return None,
        };
        let found = raw_range(&self.raw_type, &self.step, self.declared, op, bound)?;
        if self.exempt.is_some() {
            return Some(RawFilter::Implied(self.hull(op, bound, found)));
        }
        Some(RawFilter::Exact(match found {
            RawRange::Empty => lit(false),
            RawRange::Within { low, high } => {
                let mut parts = Vec::new();
                if let Some(low) = low {
                    parts.push(self.raw.clone().gt_eq(self.literal(low)?));
                }
                if let Some(high) = high {
                    parts.push(self.raw.clone().lt_eq(self.literal(high)?));
                }
                // Every value rounds to one that satisfies it: only NULL
                // (rounded to NULL) does not.
                balanced_conjunction(parts).unwrap_or_else(|| self.raw.clone().is_not_null())
            }
        }))
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
        let bucket = |v: i128| bucket(&self.raw_type, &self.step, self.declared, v);
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
        let at = |v: i128| self.literal(v);
        let mut parts = Vec::new();
        if let Some(low) = low {
            parts.push(self.raw.clone().gt_eq(at(low)?));
        }
        if let Some(high) = high {
            parts.push(self.raw.clone().lt_eq(at(high)?));
        }
        balanced_conjunction(parts)
    }

    /// `v` as a literal of the raw column's type.
    fn literal(&self, v: i128) -> Option<Expr> {
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

/// Whether a filter can be evaluated below the policy without ever failing
/// or reading a masked column: comparisons, `IN`, `IS NULL`, `LIKE`, `AND`,
/// `OR`, `NOT` over unmasked columns and literals. Anything else (casts,
/// arithmetic, functions) stays above the barrier.
pub(super) fn safe_to_push(expr: &Expr, unmasked: &HashSet<String>) -> bool {
    use datafusion::logical_expr::Operator::*;
    match expr {
        Expr::Column(c) => unmasked.contains(&c.name),
        Expr::Literal(_, _) => true,
        Expr::BinaryExpr(b) => {
            matches!(
                b.op,
                Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or | IsDistinctFrom | IsNotDistinctFrom
            ) && safe_to_push(&b.left, unmasked)
                && safe_to_push(&b.right, unmasked)
        }
        Expr::Not(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e) => safe_to_push(e, unmasked),
        Expr::InList(l) => {
            safe_to_push(&l.expr, unmasked)
                && l.list.iter().all(|e| matches!(e, Expr::Literal(_, _)))
        }
        Expr::Between(b) => {
            safe_to_push(&b.expr, unmasked)
                && safe_to_push(&b.low, unmasked)
                && safe_to_push(&b.high, unmasked)
        }
        Expr::Like(l) => {
            safe_to_push(&l.expr, unmasked) && matches!(l.pattern.as_ref(), Expr::Literal(_, _))
        }
        _ => false,
    }
}

/// The columns of a policy relation that user filters may reference when
/// pushed into it: the columns no masking policy applies to, and the columns
/// the policy replaces by a constant for this session (`constant`,
/// `nullify`: the relation's top projection gives them a literal). A filter
/// on a constant column reads nothing from the raw table: pushed into the
/// relation it becomes a predicate on the literal, which DataFusion folds
/// (`'REDACTED' LIKE '%REDACT%'` is true before any row is read), where
/// above the barrier it would run on every row.
pub(super) fn pushable_columns<'a>(
    unmasked: impl Iterator<Item = &'a str>,
    plan: &LogicalPlan,
) -> HashSet<String> {
    fn literal(e: &Expr) -> bool {
        match e {
            Expr::Literal(_, _) => true,
            Expr::Alias(a) => literal(&a.expr),
            Expr::Cast(c) => literal(&c.expr),
            Expr::TryCast(c) => literal(&c.expr),
            _ => false,
        }
    }
    let mut columns: HashSet<String> = unmasked.map(str::to_string).collect();
    if let LogicalPlan::Projection(p) = plan {
        columns.extend(
            p.expr
                .iter()
                .zip(p.schema.fields())
                .filter(|(e, _)| literal(e))
                .map(|(_, f)| f.name().clone()),
        );
    }
    columns
}

/// `a AND b AND ...` as a balanced tree (depth log2(n), not n).
pub(super) fn balanced_conjunction(mut predicates: Vec<Expr>) -> Option<Expr> {
    match predicates.len() {
        0 => None,
        1 => predicates.pop(),
        n => {
            let right = predicates.split_off(n / 2);
            Some(balanced_conjunction(predicates)?.and(balanced_conjunction(right)?))
        }
    }
}

pub(super) fn unqualify(expr: &Expr) -> datafusion::common::Result<Expr> {
    expr.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(DfColumn::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
}

/// Whether a policy relation's optimized plan may serve every statement of
/// its session: it calls no function whose value may change between
/// statements (`now()`, `current_date`: anything not immutable), which the
/// optimizer would fold to one statement's value. Everything else in it is
/// fixed for the session: its version and entitlements are rendered into
/// the policy SQL, and its context functions (`CURRENT_USER()`, ...) are
/// the session's own instances, bound to its one identity.
pub(super) fn reusable(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::Volatility;
    let mut reusable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                    && !f.func.inner().is::<SessionContextFunc>()
                {
                    reusable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    reusable
}

/// The logical optimizer a scan runs over a relation already optimized
/// whole (`PolicyTable::optimized`): what the scan adds on top is a filter
/// of safe predicates, a projection of columns and a limit, so it needs
/// pushing down (into the raw scans, where Parquet prunes on them),
/// folding (a predicate on a constant mask becomes a literal), and
/// projection pruning — not decorrelation, join rewriting or common
/// subexpressions, which the relation's one full pass did. A third of the
/// full optimizer's time on a point lookup in inlined mode, most of it in
/// profile-join mode, was that pass repeated on every statement.
fn per_scan_optimizer() -> &'static datafusion::optimizer::Optimizer {
    use datafusion::optimizer::eliminate_filter::EliminateFilter;
    use datafusion::optimizer::eliminate_limit::EliminateLimit;
    use datafusion::optimizer::optimize_projections::OptimizeProjections;
    use datafusion::optimizer::propagate_empty_relation::PropagateEmptyRelation;
    use datafusion::optimizer::push_down_filter::PushDownFilter;
    use datafusion::optimizer::push_down_limit::PushDownLimit;
    use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
    static OPTIMIZER: std::sync::OnceLock<datafusion::optimizer::Optimizer> =
        std::sync::OnceLock::new();
    OPTIMIZER.get_or_init(|| {
        datafusion::optimizer::Optimizer::with_rules(vec![
            Arc::new(PushDownLimit::new()),
            Arc::new(PushDownFilter::new()),
            Arc::new(SimplifyExpressions::new()),
            Arc::new(EliminateFilter::new()),
            Arc::new(EliminateLimit::new()),
            Arc::new(PropagateEmptyRelation::new()),
            Arc::new(OptimizeProjections::new()),
            Arc::new(crate::guard::RebalanceBooleanChains),
        ])
    })
}

impl PolicyTable {
    /// The relation of `plan` (the policy SQL, planned in `state`, a
    /// `relation_state`), analyzed once here: what `scan` adds on top
    /// (pushed filters, which arrive analyzed from the statement's plan, a
    /// projection of columns, a limit) needs no analysis, so each scan
    /// only optimizes. `pushdown` gives the columns filters may reference.
    pub(super) fn analyzed(
        name: TableName,
        plan: LogicalPlan,
        state: SessionState,
        pushdown: impl FnOnce(&LogicalPlan) -> HashSet<String>,
        data: Option<Arc<DataFiles>>,
    ) -> datafusion::common::Result<Self> {
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})?;
        // A plan the optimizer refuses here is left to each scan, which
        // reports the error with the statement that reached it.
        let optimized = reusable(&plan)
            .then(|| {
                let state = fresh(&state);
                state.optimizer().optimize(plan.clone(), &state, |_, _| {})
            })
            .and_then(|r| r.ok());
        Ok(Self {
            name,
            schema: Arc::new(plan.schema().as_arrow().clone()),
            pushdown_columns: pushdown(&plan),
            rounded: rounded_columns(optimized.as_ref().unwrap_or(&plan)),
            plan,
            optimized,
            state,
            data,
        })
    }

    /// The table this relation protects.
    pub fn table_name(&self) -> &TableName {
        &self.name
    }

    /// A user filter `rounded_column OP literal` as a predicate over the
    /// raw column, to run below the relation's top projection
    /// (`RoundedColumn::raw_filter`).
    fn rounded_filter(&self, filter: &Expr) -> Option<RawFilter> {
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
        let (column, op, value) = match (b.left.as_ref(), b.right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) => (c, op, v),
            (Expr::Literal(v, _), Expr::Column(c)) => (c, op.flipped(), v),
            _ => return None,
        };
        self.rounded.get(&column.name)?.raw_filter(op, value)
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                // Exact: `scan` applies every such filter to the policy's
                // output (unmasked columns hold the raw values there), so
                // DataFusion need not evaluate it again above the barrier.
                if safe_to_push(f, &self.pushdown_columns) {
                    return TableProviderFilterPushDown::Exact;
                }
                match self.rounded_filter(f) {
                    Some(RawFilter::Exact(_)) => TableProviderFilterPushDown::Exact,
                    Some(RawFilter::Implied(_)) => TableProviderFilterPushDown::Inexact,
                    None => TableProviderFilterPushDown::Unsupported,
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let base = self.optimized.as_ref().unwrap_or(&self.plan);
        // Only filters accepted by `supports_filters_pushdown` arrive here
        // (as exact: each must be applied); anything else is refused, so
        // nothing unsafe is ever evaluated below the policy. They
        // go in as one balanced conjunction: a Filter node per predicate
        // made the optimizer recurse once per predicate (BI tools push
        // hundreds).
        let mut pushed = Vec::new();
        let mut on_raw = Vec::new();
        for f in filters {
            if safe_to_push(f, &self.pushdown_columns) {
                pushed.push(unqualify(f)?);
            } else if let Some(raw) = self.rounded_filter(f) {
                match raw {
                    RawFilter::Exact(predicate) | RawFilter::Implied(Some(predicate)) => {
                        on_raw.push(predicate)
                    }
                    RawFilter::Implied(None) => {}
                }
            } else {
                return datafusion::common::internal_err!(
                    "a filter that may not run below the policy of {} reached its scan",
                    self.name
                );
            }
        }
        // Filters on rounded columns, as ranges of the raw column, go under
        // the top projection (the one `rounded` was read from).
        let mut builder = match (balanced_conjunction(on_raw), base) {
            (None, _) => LogicalPlanBuilder::from(base.clone()),
            (Some(predicate), LogicalPlan::Projection(p)) => {
                let input = LogicalPlan::Filter(Filter::try_new(predicate, Arc::clone(&p.input))?);
                LogicalPlanBuilder::from(LogicalPlan::Projection(Projection::try_new_with_schema(
                    p.expr.clone(),
                    Arc::new(input),
                    Arc::clone(&p.schema),
                )?))
            }
            (Some(_), _) => {
                return datafusion::common::internal_err!(
                    "the policy relation of {} has no projection to filter under",
                    self.name
                );
            }
        };
        if let Some(predicate) = balanced_conjunction(pushed) {
            builder = builder.filter(predicate)?;
        }
        if let Some(indices) = projection {
            let columns: Vec<Expr> = indices
                .iter()
                .map(|i| col(DfColumn::new_unqualified(self.schema.field(*i).name())))
                .collect();
            builder = builder.project(columns)?;
        }
        if let Some(n) = limit {
            builder = builder.limit(0, Some(n))?;
        }
        let plan = builder.build()?;
        // A relation that reads the clock is planned in a copy of its state
        // with this statement's start time, so `now()` folds once per
        // statement; one that does not needs no copy (cloning a session
        // state, with its function registry, is a tenth of a point
        // lookup's planning).
        let per_statement;
        let phase = crate::trace::phase("relation: optimize");
        let (state, optimized) = match self.optimized {
            Some(_) => (
                &self.state,
                per_scan_optimizer().optimize(plan, &self.state, |_, _| {})?,
            ),
            None => {
                per_statement = fresh(&self.state);
                let optimized =
                    per_statement
                        .optimizer()
                        .optimize(plan, &per_statement, |_, _| {})?;
                (&per_statement, optimized)
            }
        };
        phase.end();
        let phase = crate::trace::phase("relation: physical plan");
        let physical = state
            .query_planner()
            .create_physical_plan(&optimized, state)
            .await?;
        phase.end();
        Ok(Arc::new(PolicyBarrierExec::new(
            physical,
            self.name.to_string(),
            self.data.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::enforce::Engine;

    fn sample() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
    }

    /// Asserts `sql`'s plan for `session` runs its filter below the policy:
    /// a barrier, and no `FilterExec` above it (where it would run a second
    /// time, per row).
    async fn assert_filter_below_the_policy(session: &crate::enforce::Session, sql: &str) {
        let text = datafusion::arrow::util::pretty::pretty_format_batches(
            &session.sql(&format!("EXPLAIN {sql}")).await.unwrap(),
        )
        .unwrap()
        .to_string();
        let physical = text.split("physical_plan").nth(1).unwrap_or_default();
        assert!(physical.contains("PolicyBarrierExec"), "{text}");
        assert!(!physical.contains("FilterExec"), "{text}");
    }

    #[tokio::test]
    async fn safe_filters_run_once_below_the_policy() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        // Exact pushdown: no second evaluation of the filter above the barrier.
        assert_filter_below_the_policy(&bob, "SELECT id FROM customers WHERE region = 'EU'").await;
        let rows: usize = bob
            .sql("SELECT id FROM customers WHERE region = 'EU'")
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        let all: usize = bob
            .sql("SELECT id, region FROM customers")
            .await
            .unwrap()
            .iter()
            .map(|b| {
                let region = b.column(1);
                (0..b.num_rows())
                    .filter(|i| {
                        datafusion::arrow::util::display::array_value_to_string(region, *i)
                            .is_ok_and(|v| v == "EU")
                    })
                    .count()
            })
            .sum();
        assert!(rows > 0);
        assert_eq!(rows, all, "the pushed filter selects the EU rows bob sees");
    }

    #[tokio::test]
    async fn a_filter_on_a_constant_mask_is_folded_below_the_policy() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let count = |sql: &'static str| {
            let bob = &bob;
            async move {
                bob.sql(sql)
                    .await
                    .unwrap()
                    .iter()
                    .map(|b| b.num_rows())
                    .sum::<usize>()
            }
        };
        // bob sees NOTES as the constant REDACTED: the predicate is decided
        // on the literal, once, not per row above the barrier.
        assert_filter_below_the_policy(
            &bob,
            "SELECT id FROM customers WHERE notes LIKE '%REDACT%'",
        )
        .await;
        let all = count("SELECT id FROM customers").await;
        assert!(all > 0);
        assert_eq!(
            count("SELECT id FROM customers WHERE notes LIKE '%REDACT%'").await,
            all
        );
        // The raw notes are never what the predicate sees.
        assert_eq!(
            count("SELECT id FROM customers WHERE notes = 'vip customer'").await,
            0
        );
        assert_eq!(
            count("SELECT id FROM customers WHERE notes LIKE '%vip%' OR region = 'EU'").await,
            count("SELECT id FROM customers WHERE region = 'EU'").await
        );
    }

    #[tokio::test]
    async fn a_policy_relation_is_optimized_once_unless_it_reads_the_clock() {
        use crate::model::{EnforcementMode, SessionOptions, TableName};
        let engine = Engine::load(sample()).await.unwrap();
        for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
            let bob = engine
                .session_with(SessionOptions {
                    mode: Some(mode),
                    ..SessionOptions::user("bob")
                })
                .unwrap();
            let core = &bob.bound().unwrap().core;
            let relation = |table: &str| {
                let name = TableName {
                    database: "ANALYTICS".into(),
                    schema: "PUBLIC".into(),
                    table: table.into(),
                };
                async move { core.policy_table(&name).await.unwrap() }
            };
            // Customers' policies (and, in profile-join mode, bob's
            // CURRENT_USER()) are fixed for bob's session: optimized once.
            let customers = relation("CUSTOMERS").await;
            assert!(customers.optimized.is_some(), "{mode:?}");
            // Orders' time window compares with now(): folding it once would
            // keep the window where the session's first statement put it.
            let orders = relation("ORDERS").await;
            assert!(orders.optimized.is_none(), "{mode:?}");
            assert!(!super::reusable(&orders.plan), "{mode:?}");
        }
        // A clock read inside a subquery counts too.
        let state = datafusion::prelude::SessionContext::new().state();
        for (sql, reusable) in [
            ("SELECT 1 AS x WHERE 1 < 2", true),
            ("SELECT 1 AS x WHERE now() IS NOT NULL", false),
            (
                "SELECT 1 AS x WHERE EXISTS (SELECT 1 WHERE current_date() IS NOT NULL)",
                false,
            ),
        ] {
            let plan = state.create_logical_plan(sql).await.unwrap();
            assert_eq!(super::reusable(&plan), reusable, "{sql}");
        }
    }

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

    #[tokio::test]
    async fn a_policy_relation_reports_estimated_statistics() {
        use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let bound = bob.bound().unwrap();
        let checked = bound.check("SELECT ORDER_ID, AMOUNT FROM ORDERS").unwrap();
        let (state, plan) = bound.plan_user_statement(checked.statement).await.unwrap();
        let physical = state.create_physical_plan(&plan).await.unwrap();
        fn barrier(
            p: &std::sync::Arc<dyn ExecutionPlan>,
        ) -> Option<std::sync::Arc<dyn ExecutionPlan>> {
            if p.name() == "PolicyBarrierExec" {
                return Some(std::sync::Arc::clone(p));
            }
            p.children().into_iter().find_map(barrier)
        }
        let barrier = barrier(&physical).expect("the scan is a policy relation");
        let stats = StatisticsContext::new()
            .compute(barrier.as_ref(), &StatisticsArgs::new())
            .unwrap();
        // The Parquet row count reaches the planner (joins are ordered by
        // it), as an estimate only: nothing may answer COUNT(*) from it.
        assert!(
            stats.num_rows.get_value().is_some_and(|n| *n > 0),
            "{stats:?}"
        );
        assert!(!stats.num_rows.is_exact().unwrap_or(false), "{stats:?}");
        // An unmasked column's bounds come through (as estimates); the
        // masked amount carries none from the raw values.
        let id = &stats.column_statistics[0];
        assert!(id.min_value.get_value().is_some(), "{stats:?}");
        assert!(!id.min_value.is_exact().unwrap_or(false), "{stats:?}");
        let amount = &stats.column_statistics[1];
        assert!(amount.min_value.get_value().is_none(), "{stats:?}");
        assert!(amount.max_value.get_value().is_none(), "{stats:?}");
    }

    #[tokio::test]
    async fn unsafe_filters_stay_above_the_policy() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let plan = bob
            .logical_plan(
                "SELECT id FROM customers WHERE 1 / (id - 1) > 0 AND region = 'EU' AND ssn = 'x'",
            )
            .await
            .unwrap();
        let text = plan.display_indent().to_string();
        // The arithmetic and the masked-column predicates are not pushed into the scan.
        let scan = text
            .lines()
            .find(|l| l.contains("TableScan"))
            .unwrap_or_default();
        let pushed = scan.split("filters=").nth(1).unwrap_or_default();
        assert!(!pushed.contains(" / "), "{text}");
        assert!(!pushed.contains("SSN"), "{text}");
        assert!(
            pushed.contains("REGION"),
            "safe predicate on an unmasked column is pushed: {text}"
        );
    }
}
