//! The stream [`super::Session::sql_stream`] returns: Snowflake column
//! names, the statement deadline, panics caught, errors sanitized, and one
//! audit record when it ends, fails or is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use crate::audit::{AuditRecord, QueryAudit};
use crate::error::VeilError;
use crate::model::TableName;

use super::bound::*;
use super::engine::*;

/// What the audit record of a streamed statement needs once it ends.
pub(super) struct StreamAudit {
    pub(super) engine: Engine,
    pub(super) user: String,
    pub(super) role: String,
    pub(super) purpose: Option<String>,
    pub(super) sql: String,
    pub(super) tables: Vec<TableName>,
    pub(super) policies: Vec<String>,
    pub(super) version: u64,
    pub(super) simulated_by: Option<String>,
    pub(super) started: Instant,
}

impl StreamAudit {
    fn record(self, result: std::result::Result<usize, &VeilError>) {
        self.engine.audit(AuditRecord::query(QueryAudit {
            user: &self.user,
            role: &self.role,
            purpose: self.purpose.as_deref(),
            sql: &self.sql,
            tables: &self.tables,
            policies: self.policies,
            result,
            duration: self.started.elapsed(),
            version: self.version,
            simulated_by: self.simulated_by.as_deref(),
        }));
    }
}

/// The stream [`super::Session::sql_stream`] returns: Snowflake column names, the
/// statement deadline, panics caught, errors sanitized, one audit record
/// when it ends. After an error it ends.
pub(super) struct GuardedStream {
    pub(super) inner: Option<SendableRecordBatchStream>,
    pub(super) schema: SchemaRef,
    pub(super) renamed: bool,
    pub(super) deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    pub(super) timeout: Duration,
    pub(super) bound: Arc<Bound>,
    pub(super) rows: usize,
    pub(super) audit: Option<StreamAudit>,
}

impl GuardedStream {
    /// Ends the stream with `error` (full text to the audit, sanitized to
    /// the caller).
    fn fail(&mut self, error: VeilError) -> DataFusionError {
        self.inner = None;
        if let Some(audit) = self.audit.take() {
            audit.record(Err(&error));
        }
        DataFusionError::from(crate::guard::user_error(error))
    }
}

impl futures::Stream for GuardedStream {
    type Item = datafusion::common::Result<RecordBatch>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.deadline.as_mut().poll(cx).is_ready() {
            let e = VeilError::Timeout(this.timeout);
            return Poll::Ready(Some(Err(this.fail(e))));
        }
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll_next_unpin(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(batch)))) => {
                this.rows += batch.num_rows();
                if !this.renamed {
                    return Poll::Ready(Some(Ok(batch)));
                }
                match crate::output::with_schema(batch, &this.schema) {
                    Ok(b) => Poll::Ready(Some(Ok(b))),
                    Err(e) => Poll::Ready(Some(Err(this.fail(e)))),
                }
            }
            Ok(Poll::Ready(Some(Err(e)))) => {
                let e = this.bound.map_error(e);
                Poll::Ready(Some(Err(this.fail(e))))
            }
            Ok(Poll::Ready(None)) => {
                this.inner = None;
                if let Some(audit) = this.audit.take() {
                    audit.record(Ok(this.rows));
                }
                Poll::Ready(None)
            }
            Err(panic) => {
                let e = crate::guard::panicked(&panic);
                Poll::Ready(Some(Err(this.fail(e))))
            }
        }
    }
}

impl datafusion::physical_plan::RecordBatchStream for GuardedStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        // Dropped before its end: audited with the rows delivered.
        if let Some(audit) = self.audit.take() {
            audit.record(Ok(self.rows));
        }
    }
}
