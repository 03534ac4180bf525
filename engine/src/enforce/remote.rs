//! Where a session's planned statements run. By default in this process;
//! an engine given a [`PlanExecutor`] (Veil's Ballista client, in the
//! `veil-cluster` crate) hands it each statement's physical plan instead.
//!
//! The plan handed over is the one this process planned for the session:
//! policy relations resolved and under their barriers, the identity folded
//! to literals. The executor only moves it; it never sees SQL or a policy
//! to interpret. `EXPLAIN`, `SHOW TABLES` and `DESCRIBE` are answered here.

use std::fmt;
use std::sync::Arc;

use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;

/// Runs physical plans Veil planned for a session somewhere else (a
/// cluster). Errors it returns pass through the same sanitizer as local
/// execution errors.
pub trait PlanExecutor: Send + Sync + fmt::Debug {
    /// Starts `plan`; the stream yields its result batches. `context` is the
    /// session's task context (its configuration, the statement's start
    /// time).
    fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream>;
}

/// Starts `plan` on `executor`, or in this process when there is none.
pub(super) fn start(
    executor: Option<&Arc<dyn PlanExecutor>>,
    plan: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
) -> datafusion::common::Result<SendableRecordBatchStream> {
    match executor {
        Some(e) => e.execute(plan, context),
        None => datafusion::physical_plan::execute_stream(plan, context),
    }
}

/// Runs `plan` to the end on `executor`, or in this process.
pub(super) async fn collect(
    executor: Option<&Arc<dyn PlanExecutor>>,
    plan: Arc<dyn ExecutionPlan>,
    context: Arc<TaskContext>,
) -> datafusion::common::Result<Vec<datafusion::arrow::array::RecordBatch>> {
    match executor {
        Some(e) => datafusion::physical_plan::common::collect(e.execute(plan, context)?).await,
        None => datafusion::physical_plan::collect(plan, context).await,
    }
}
