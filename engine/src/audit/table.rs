//! `veil.audit`: the audit log as a table administrators query.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use super::log::AuditHandle;
use crate::error::Result;

use super::record::AuditRecord;

/// `veil.audit`: the audit log as a table, read when scanned. Lives only in
/// the internal catalog, so only administrators reach it.
#[derive(Debug)]
pub struct AuditTable {
    log: AuditHandle,
    schema: SchemaRef,
}

impl AuditTable {
    /// The table over `log`.
    pub fn new(log: AuditHandle) -> Self {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Arc::new(Schema::new(vec![
            text("ID"),
            text("TIMESTAMP"),
            text("ACTION"),
            text("ACTOR"),
            text("ROLE"),
            text("PURPOSE"),
            text("STATUS"),
            text("REASON"),
            text("TARGET_TYPE"),
            text("TARGETS"),
            text("SQL"),
            text("POLICIES_APPLIED"),
            Field::new("ROWS_RETURNED", DataType::Int64, true),
            Field::new("DURATION_MS", DataType::Float64, true),
            Field::new("POLICY_VERSION", DataType::Int64, true),
        ]));
        Self { log, schema }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let records = match self.log.get() {
            Some(log) => log.records()?,
            None => Vec::new(),
        };
        let text = |f: &dyn Fn(&AuditRecord) -> Option<String>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<StringArray>())
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|r| Some(r.id.clone())),
            text(&|r| Some(r.timestamp.clone())),
            text(&|r| Some(r.action.clone())),
            text(&|r| Some(r.actor.name.clone())),
            text(&|r| r.actor.role.clone()),
            text(&|r| r.actor.purpose.clone()),
            text(&|r| Some(r.action_status.clone())),
            text(&|r| r.action_status_reason.clone()),
            text(&|r| Some(r.target_type.clone())),
            text(&|r| Some(r.targets.join(", "))),
            text(&|r| r.sql.clone()),
            text(&|r| Some(r.policies_applied.join(", "))),
            Arc::new(
                records
                    .iter()
                    .map(|r| r.rows_returned.map(|n| n as i64))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                records
                    .iter()
                    .map(|r| r.duration_ms)
                    .collect::<Float64Array>(),
            ),
            Arc::new(
                records
                    .iter()
                    .map(|r| Some(r.policy_version as i64))
                    .collect::<Int64Array>(),
            ),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let batch = self
            .batch()
            .map_err(datafusion::error::DataFusionError::from)?;
        let table = MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
