//! The barrier: the execution node at the top of every policy relation. It
//! forwards batches unchanged but takes no filter, projection, limit or sort
//! from above, so no optimizer rule can move a user expression below the
//! policy (the `WHERE 1/(id-4) > 0` side channel), and it replaces any error
//! raised inside the policy by one that names the table and shows no value.
//! It reports the policy relation's statistics as estimates only: the planner
//! orders joins by size as it does on raw tables, but never answers a query
//! from them (an exact row count or minimum would skip the policy's
//! execution, and with it its errors).

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, StatisticsArgs,
};
use futures::StreamExt;

use crate::error::VeilError;
use crate::load::data_check::DataFiles;

/// Execution node that marks the top of a policy relation. It forwards
/// batches unchanged but accepts no filter, projection, limit or sort from
/// above, so optimizer rules cannot move user expressions into the policy;
/// errors raised inside the policy are replaced by one that names the table
/// and shows no value.
#[derive(Debug)]
pub struct PolicyBarrierExec {
    input: Arc<dyn ExecutionPlan>,
    table: String,
    properties: Arc<PlanProperties>,
    data: Option<Arc<DataFiles>>,
}

impl PolicyBarrierExec {
    pub(crate) fn new(
        input: Arc<dyn ExecutionPlan>,
        table: String,
        data: Option<Arc<DataFiles>>,
    ) -> Self {
        let properties = Arc::clone(input.properties());
        Self {
            input,
            table,
            properties,
            data,
        }
    }

    /// The barrier of `table` over `input`, as a cluster executor rebuilds
    /// it from a serialized plan: the same node, but an error inside the
    /// policy is reported with the generic sentence (the data problem that
    /// may explain it is known only where the workspace was loaded).
    pub fn rebuilt(input: Arc<dyn ExecutionPlan>, table: String) -> Self {
        Self::new(input, table, None)
    }

    /// The protected table, as errors name it.
    pub fn table(&self) -> &str {
        &self.table
    }
}

impl DisplayAs for PolicyBarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyBarrierExec: table={}", self.table)
    }
}

impl ExecutionPlan for PolicyBarrierExec {
    fn name(&self) -> &str {
        "PolicyBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> datafusion::common::Result<Arc<Statistics>> {
        Ok(Arc::new(match input_stats.first() {
            Some(s) => s.as_ref().clone().to_inexact(),
            None => Statistics::new_unknown(&self.schema()),
        }))
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!("PolicyBarrierExec has one child");
        }
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.table.clone(),
            self.data.clone(),
        )))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let table = self.table.clone();
        let data = self.data.clone();
        let schema = self.input.schema();
        let stream = self.input.execute(partition, context)?;
        let mapped = stream.map(move |r| {
            r.map_err(|e| {
                // Resource errors pass through; anything else from inside the
                // policy may carry raw values and is replaced: by the data
                // problem that explains it (no value), else a generic sentence.
                if matches!(e, DataFusionError::ResourcesExhausted(_)) {
                    return e;
                }
                let message = data.as_ref().and_then(|d| d.failure_message());
                DataFusionError::External(Box::new(VeilError::PolicyFailure(message.unwrap_or_else(|| format!(
                    "The policy on table {table} could not be evaluated for this row set; the query is denied."
                )))))
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, mapped)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::stats::Precision;
    use datafusion::physical_plan::empty::EmptyExec;

    use super::*;

    #[test]
    fn statistics_pass_through_as_estimates_only() {
        let schema = Arc::new(Schema::new(vec![Field::new("ID", DataType::Int64, true)]));
        let barrier = PolicyBarrierExec::new(
            Arc::new(EmptyExec::new(Arc::clone(&schema))),
            "DB.S.T".into(),
            None,
        );
        assert_eq!(barrier.child_stats_requests(None).len(), 1);
        let exact = Statistics::new_unknown(&schema).with_num_rows(Precision::Exact(42));
        let seen = barrier
            .statistics_from_inputs(&[Arc::new(exact)], &StatisticsArgs::new())
            .unwrap();
        // The planner sees the size; no rule may answer COUNT(*) from it.
        assert_eq!(seen.num_rows, Precision::Inexact(42));
    }
}
