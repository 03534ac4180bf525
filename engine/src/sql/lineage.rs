//! Column lineage of a query, read from its DataFusion logical plan: for
//! each output column, the declared table columns its value is computed
//! from (SPEC §7.1, lineage captured when an administrator runs `CREATE
//! TABLE ... AS SELECT` or `INSERT INTO ... SELECT` through Veil).
//!
//! Like Snowflake's `ACCESS_HISTORY` `directSources`, a column's sources
//! are the columns its *value* derives from: projections, aggregates,
//! window functions and the inputs of a `UNION`, not the columns a `WHERE`,
//! `JOIN ... ON` or `GROUP BY` only tests. A plan node Veil does not know
//! in detail is read conservatively: each of its output columns derives
//! from every column of its inputs (more lineage, so tags reach further,
//! never less).

use std::collections::BTreeSet;

use datafusion::common::JoinType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan, TableScan};

use crate::model::ColumnRef;

/// The sources of one output column.
pub type Sources = BTreeSet<ColumnRef>;

/// The sources of each output column of `plan`, in order. `leaf` gives
/// the sources of the columns a scan of a declared table's files reads
/// (`None` for any other scan, whose own plan, if it has one, is read
/// instead).
pub fn column_lineage(
    plan: &LogicalPlan,
    leaf: &dyn Fn(&TableScan) -> Option<Vec<Sources>>,
) -> Vec<Sources> {
    let width = plan.schema().fields().len();
    // Each input once, whatever reading of this node follows.
    let inputs: Vec<Vec<Sources>> = plan
        .inputs()
        .into_iter()
        .map(|input| column_lineage(input, leaf))
        .collect();
    match node_lineage(plan, &inputs, leaf) {
        Some(out) if out.len() == width => out,
        // Every output column from every column of every input (the
        // conservative reading).
        _ => vec![inputs.into_iter().flatten().flatten().collect(); width],
    }
}

/// The sources of `expr`, whose columns are output columns of `input`
/// (with lineage `lineage`); a scalar subquery's value derives from its
/// own output column.
fn expr_sources(
    expr: &Expr,
    input: &LogicalPlan,
    lineage: &[Sources],
    leaf: &dyn Fn(&TableScan) -> Option<Vec<Sources>>,
) -> Sources {
    let schema = input.schema();
    let mut out = Sources::new();
    let _ = expr.apply(|e| {
        if let Expr::ScalarSubquery(s) = e {
            out.extend(column_lineage(&s.subquery, leaf).into_iter().flatten());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    for column in expr.column_refs() {
        match schema.maybe_index_of_column(column) {
            Some(i) if i < lineage.len() => out.extend(lineage[i].iter().cloned()),
            // A name Veil cannot place: every input column, to be safe.
            _ => out.extend(lineage.iter().flatten().cloned()),
        }
    }
    out
}

fn exprs_sources(
    exprs: &[Expr],
    input: &LogicalPlan,
    lineage: &[Sources],
    leaf: &dyn Fn(&TableScan) -> Option<Vec<Sources>>,
) -> Vec<Sources> {
    exprs
        .iter()
        .map(|e| expr_sources(e, input, lineage, leaf))
        .collect()
}

/// The lineage of the nodes read in detail, from their inputs' lineage
/// `inputs` (in [`LogicalPlan::inputs`] order); `None` for the others.
fn node_lineage(
    plan: &LogicalPlan,
    inputs: &[Vec<Sources>],
    leaf: &dyn Fn(&TableScan) -> Option<Vec<Sources>>,
) -> Option<Vec<Sources>> {
    let first = || inputs.first().cloned();
    Some(match plan {
        LogicalPlan::TableScan(scan) => {
            if let Some(columns) = leaf(scan) {
                columns
            } else {
                let inner = scan.source.get_logical_plan()?;
                let inner = column_lineage(&inner, leaf);
                match &scan.projection {
                    Some(p) => p
                        .iter()
                        .map(|i| inner.get(*i).cloned().unwrap_or_default())
                        .collect(),
                    None => inner,
                }
            }
        }
        LogicalPlan::Projection(p) => exprs_sources(&p.expr, &p.input, inputs.first()?, leaf),
        LogicalPlan::Aggregate(a) => {
            let input = inputs.first()?;
            let mut out = exprs_sources(&a.group_expr, &a.input, input, leaf);
            out.extend(exprs_sources(&a.aggr_expr, &a.input, input, leaf));
            // A grouping-set id column, if any, derives from nothing.
            out.resize(plan.schema().fields().len(), Sources::new());
            out
        }
        LogicalPlan::Window(w) => {
            let input = inputs.first()?;
            let mut out = input.clone();
            out.extend(exprs_sources(&w.window_expr, &w.input, input, leaf));
            out
        }
        LogicalPlan::Join(j) => {
            let [left, right] = inputs else {
                return None;
            };
            let (left, right) = (left.clone(), right.clone());
            match j.join_type {
                JoinType::LeftSemi | JoinType::LeftAnti => left,
                JoinType::RightSemi | JoinType::RightAnti => right,
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    left.into_iter().chain(right).collect()
                }
                _ => return None,
            }
        }
        LogicalPlan::Union(_) => {
            let mut out = vec![Sources::new(); plan.schema().fields().len()];
            for input in inputs {
                for (o, s) in out.iter_mut().zip(input) {
                    o.extend(s.iter().cloned());
                }
            }
            out
        }
        LogicalPlan::Distinct(Distinct::On(d)) => {
            exprs_sources(&d.select_expr, &d.input, inputs.first()?, leaf)
        }
        LogicalPlan::Distinct(Distinct::All(_))
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Repartition(_) => first()?,
        LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
            vec![Sources::new(); plan.schema().fields().len()]
        }
        _ => return None,
    })
}
