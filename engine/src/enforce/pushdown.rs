//! Which user filters a policy relation takes below its barrier, and as
//! what ([`Pushdown`]): a filter that cannot fail over columns that hold
//! the raw value or a constant runs as it is (`safe_to_push`), a
//! comparison with a rounded column runs as a range of the raw column
//! (`rounded`), and anything else stays above the barrier, where it sees
//! only what the session sees.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::Column as DfColumn;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{
    Expr, Filter, LogicalPlan, Projection, TableProviderFilterPushDown,
};

use super::rounded::{
    RawFilter, RoundedColumns, rounded_columns, rounded_filter, rounded_pushdown,
};

/// What a policy relation takes below its barrier.
#[derive(Debug, Default)]
pub(super) struct Pushdown {
    /// Columns filters may reference as they are (`pushable_columns`).
    columns: HashSet<String>,
    /// Columns the relation's top projection rounds: comparisons with them
    /// become ranges of the raw column.
    rounded: RoundedColumns,
}

/// The filters of one scan, split by where they run.
#[derive(Debug, Default)]
pub(super) struct Pushed {
    /// Over the relation's output (unmasked and constant columns).
    pub(super) on_output: Option<Expr>,
    /// Under its top projection, over the raw columns.
    pub(super) on_raw: Option<Expr>,
}

impl Pushdown {
    /// Nothing below the barrier (a view: its rows are its owner's query,
    /// and no user predicate runs on rows it leaves out).
    pub(super) fn none() -> Self {
        Self::default()
    }

    /// What the relation `plan` takes below its barrier, `unmasked` being
    /// the columns no masking policy applies to.
    pub(super) fn of<'a>(unmasked: impl Iterator<Item = &'a str>, plan: &LogicalPlan) -> Self {
        Self {
            columns: pushable_columns(unmasked, plan),
            rounded: rounded_columns(plan),
        }
    }

    /// How DataFusion may push `filter` into the relation: exact where the
    /// relation applies it (DataFusion need not evaluate it again above the
    /// barrier), inexact where the relation only narrows its rows by it.
    pub(super) fn accepts(&self, filter: &Expr) -> TableProviderFilterPushDown {
        if safe_to_push(filter, &self.columns) {
            return TableProviderFilterPushDown::Exact;
        }
        rounded_pushdown(&self.rounded, filter).unwrap_or(TableProviderFilterPushDown::Unsupported)
    }

    /// The filters DataFusion pushed into a scan, split by where they run,
    /// each group one balanced conjunction (a Filter node per predicate
    /// made the optimizer recurse once per predicate; BI tools push
    /// hundreds). A filter `accepts` refused is an error: nothing unsafe is
    /// ever evaluated below the policy.
    pub(super) fn split(&self, filters: &[Expr]) -> Option<Pushed> {
        let mut on_output = Vec::new();
        let mut on_raw = Vec::new();
        for f in filters {
            if safe_to_push(f, &self.columns) {
                on_output.push(unqualify(f).ok()?);
                continue;
            }
            match rounded_filter(&self.rounded, f)? {
                RawFilter::Exact(p) | RawFilter::Implied(Some(p)) => on_raw.push(p),
                RawFilter::Implied(None) => {}
            }
        }
        Some(Pushed {
            on_output: balanced_conjunction(on_output),
            on_raw: balanced_conjunction(on_raw),
        })
    }
}

/// `plan` with `predicate` applied under its top projection (the one
/// `rounded_columns` read), or `None` when its top is not a projection.
pub(super) fn under_top_projection(plan: &LogicalPlan, predicate: Expr) -> Option<LogicalPlan> {
    let LogicalPlan::Projection(p) = plan else {
        return None;
    };
    let input = LogicalPlan::Filter(Filter::try_new(predicate, Arc::clone(&p.input)).ok()?);
    Projection::try_new_with_schema(p.expr.clone(), Arc::new(input), Arc::clone(&p.schema))
        .ok()
        .map(LogicalPlan::Projection)
}

/// Whether a filter can be evaluated below the policy without ever failing
/// or reading a masked column: comparisons, `IN`, `IS NULL`, `LIKE`, `AND`,
/// `OR`, `NOT` over unmasked columns and literals. Anything else (casts,
/// arithmetic, functions) stays above the barrier.
fn safe_to_push(expr: &Expr, unmasked: &HashSet<String>) -> bool {
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
fn pushable_columns<'a>(
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

fn unqualify(expr: &Expr) -> datafusion::common::Result<Expr> {
    expr.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(DfColumn::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
}

#[cfg(test)]
pub(super) mod tests {
    use crate::enforce::Engine;

    pub(in crate::enforce) fn sample() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
    }

    /// Asserts `sql`'s plan for `session` runs its filter below the policy:
    /// a barrier, and no `FilterExec` above it (where it would run a second
    /// time, per row).
    pub(in crate::enforce) async fn assert_filter_below_the_policy(
        session: &crate::enforce::Session,
        sql: &str,
    ) {
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
