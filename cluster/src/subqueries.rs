//! Uncorrelated scalar subqueries, answered before a plan leaves. DataFusion
//! 55 runs them in a `ScalarSubqueryExec` whose results reach the
//! expressions that read them through memory shared in one process; once
//! Ballista splits the plan into stages, an expression and its exec land in
//! different stages and the executor cannot decode the task. Ballista's own
//! answer (planning them as left joins) turns a subquery that returns two
//! rows from an error into duplicated rows — for a policy reading a mapping
//! table, a row masked one way and shown another. So the client runs each
//! one here, with DataFusion's own rule (no row: NULL; two rows: an error),
//! and the plan carries its value as a literal. An error inside a policy is
//! reported as the policy barrier reports it, naming the table only.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::scalar_subquery::ScalarSubqueryExpr;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::scalar_subquery::ScalarSubqueryExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;
use veil_engine::VeilError;
use veil_engine::enforce::PolicyBarrierExec;

/// `plan` with every uncorrelated scalar subquery run here and replaced by
/// its value.
pub(crate) async fn inline(
    plan: Arc<dyn ExecutionPlan>,
    context: &Arc<TaskContext>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut found = Vec::new();
    gather(&plan, None, &mut found);
    if found.is_empty() {
        return Ok(plan);
    }
    for (exec, table) in &found {
        let Some(exec) = exec.downcast_ref::<ScalarSubqueryExec>() else {
            continue;
        };
        for link in exec.subqueries() {
            let value = match run(Arc::clone(&link.plan), context).await {
                Ok(v) => v,
                Err(e) => return Err(in_policy(e, table.as_deref())),
            };
            exec.results().set(link.index, value)?;
        }
    }
    let replaced = plan.transform_up(|node| {
        if let Some(exec) = node.downcast_ref::<ScalarSubqueryExec>() {
            return Ok(Transformed::yes(Arc::clone(exec.input())));
        }
        if let Some(filter) = node.downcast_ref::<FilterExec>() {
            let Some(predicate) = literal_for_subqueries(filter.predicate())? else {
                return Ok(Transformed::no(node));
            };
            let rebuilt = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
        }
        if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
            let mut changed = false;
            let mut exprs = Vec::with_capacity(projection.expr().len());
            for e in projection.expr() {
                let expr = match literal_for_subqueries(&e.expr)? {
                    Some(x) => {
                        changed = true;
                        x
                    }
                    None => Arc::clone(&e.expr),
                };
                exprs.push(ProjectionExpr::new(expr, e.alias.clone()));
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            let rebuilt = ProjectionExec::try_new_with_schema_metadata(
                exprs,
                Arc::clone(projection.input()),
                &projection.schema(),
            )?;
            return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
        }
        if reads_a_subquery(node.as_ref())? {
            return plan_err!(
                "{} reads a scalar subquery, which Veil cannot send to a cluster; run this statement without --cluster",
                node.name()
            );
        }
        Ok(Transformed::no(node))
    })?;
    Ok(replaced.data)
}

/// Every `ScalarSubqueryExec` reachable without entering another one's
/// subqueries (those run locally with their own), with the table of the
/// policy barrier above it, if any.
fn gather(
    node: &Arc<dyn ExecutionPlan>,
    table: Option<&str>,
    out: &mut Vec<(Arc<dyn ExecutionPlan>, Option<String>)>,
) {
    let table = node
        .downcast_ref::<PolicyBarrierExec>()
        .map(PolicyBarrierExec::table)
        .or(table);
    if let Some(exec) = node.downcast_ref::<ScalarSubqueryExec>() {
        out.push((Arc::clone(node), table.map(str::to_string)));
        gather(exec.input(), table, out);
        return;
    }
    for child in node.children() {
        gather(child, table, out);
    }
}

/// One subquery's value: NULL for no row, the value of one row, an error
/// for more (DataFusion's rule).
async fn run(plan: Arc<dyn ExecutionPlan>, context: &Arc<TaskContext>) -> Result<ScalarValue> {
    let schema = plan.schema();
    if schema.fields().len() != 1 {
        return exec_err!("Scalar subquery must return exactly one column");
    }
    let mut stream = execute_stream(plan, Arc::clone(context))?;
    let mut value = None;
    while let Some(batch) = stream.next().await.transpose()? {
        if batch.num_rows() == 0 {
            continue;
        }
        if value.is_some() || batch.num_rows() > 1 {
            return exec_err!("Scalar subquery returned more than one row");
        }
        value = Some(ScalarValue::try_from_array(batch.column(0), 0)?);
    }
    match value {
        Some(v) => Ok(v),
        None => ScalarValue::try_from(schema.field(0).data_type()),
    }
}

/// The error of a subquery inside the policy of `table`: the barrier's
/// sentence, with no value.
fn in_policy(e: DataFusionError, table: Option<&str>) -> DataFusionError {
    match table {
        Some(table) => DataFusionError::External(Box::new(VeilError::PolicyFailure(format!(
            "The policy on table {table} could not be evaluated for this row set; the query is denied."
        )))),
        None => e,
    }
}

/// `expr` with each scalar subquery replaced by its (now known) value, or
/// `None` when it reads none.
fn literal_for_subqueries(expr: &Arc<dyn PhysicalExpr>) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let rewritten = Arc::clone(expr).transform_up(|e| {
        let Some(subquery) = e.downcast_ref::<ScalarSubqueryExpr>() else {
            return Ok(Transformed::no(e));
        };
        let value = match subquery.evaluate(&empty)? {
            ColumnarValue::Scalar(v) => v,
            ColumnarValue::Array(a) if a.len() == 1 => ScalarValue::try_from_array(&a, 0)?,
            ColumnarValue::Array(_) => {
                return exec_err!("a scalar subquery's value is not one value");
            }
        };
        Ok(Transformed::yes(
            Arc::new(Literal::new(value)) as Arc<dyn PhysicalExpr>
        ))
    })?;
    Ok(rewritten.transformed.then_some(rewritten.data))
}

/// Whether one node's own expressions read a scalar subquery.
fn reads_a_subquery(node: &dyn ExecutionPlan) -> Result<bool> {
    let mut found = false;
    node.apply_expressions(&mut |e| {
        e.apply(|x| {
            if x.downcast_ref::<ScalarSubqueryExpr>().is_some() {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    Ok(found)
}
