//! The client side: a [`PlanExecutor`] that sends each statement's physical
//! plan — planned here with the session's policies — to a Ballista
//! scheduler and streams the result back from the executors.

use std::fmt;
use std::sync::{Arc, Mutex};

use ballista_core::config::BallistaConfig;
use ballista_core::execution_plans::execute_physical_plan;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use veil_engine::PlanExecutor;

use crate::ClusterError;
use crate::codec::VeilCodec;
use crate::functions::Functions;

/// Submits planned statements to the scheduler at `df://HOST:PORT`.
pub struct ClusterClient {
    scheduler_url: String,
    codec: Arc<VeilCodec>,
    session_id: String,
    /// Every plan sent, as sent (kept only when asked, for tests).
    sent: Option<Arc<Mutex<Vec<Vec<u8>>>>>,
}

impl fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterClient")
            .field("scheduler", &self.scheduler_url)
            .finish()
    }
}

/// The host and port of `df://HOST:PORT` (or `HOST:PORT`).
pub fn scheduler_address(address: &str) -> Result<(String, u16), ClusterError> {
    let rest = address.strip_prefix("df://").unwrap_or(address);
    rest.rsplit_once(':')
        .filter(|(h, _)| !h.is_empty() && !h.contains('/'))
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| ClusterError::Address(address.to_string()))
}

/// `df://HOST:PORT` (or `HOST:PORT`) as the scheduler's gRPC URL.
pub fn scheduler_url(address: &str) -> Result<String, ClusterError> {
    let (host, port) = scheduler_address(address)?;
    Ok(format!("http://{host}:{port}"))
}

impl ClusterClient {
    /// A client of the scheduler at `address` (`df://HOST:PORT`), keying
    /// Veil's functions with the workspace `secret` (only its check travels).
    pub fn new(address: &str, secret: &str) -> Result<Self, ClusterError> {
        Ok(Self {
            scheduler_url: scheduler_url(address)?,
            codec: Arc::new(VeilCodec::new(Functions::keyed(secret, 0))),
            session_id: uuid::Uuid::now_v7().to_string(),
            sent: None,
        })
    }

    /// Keeps a copy of every plan this client sends (tests read it).
    pub fn record_plans(mut self) -> (Self, Arc<Mutex<Vec<Vec<u8>>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        self.sent = Some(Arc::clone(&sent));
        (self, sent)
    }
}

impl PlanExecutor for ClusterClient {
    fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = plan.schema();
        let url = self.scheduler_url.clone();
        // HOST:PORT: error text with a slash reads as a path to Veil's
        // sanitizer, which would hide the whole sentence.
        let address = url.trim_start_matches("http://").to_string();
        let codec = Arc::clone(&self.codec);
        let sent = self.sent.clone();
        let session_id = self.session_id.clone();
        let submitted = async move {
            let plan = crate::subqueries::inline(plan, &context).await?;
            if let Some(sent) = &sent {
                record(sent, &plan, codec.as_ref())?;
            }
            let config = context.session_config().clone();
            let ballista = BallistaConfig::default();
            execute_physical_plan::<PhysicalPlanNode>(
                url,
                &ballista,
                plan,
                codec.as_ref(),
                session_id,
                config,
            )
            .await
        };
        let stream = futures::stream::once(submitted)
            .try_flatten()
            .map_err(move |e| explain(e, &address))
            .boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Keeps a copy of `plan` as it is sent.
fn record(
    sent: &Mutex<Vec<Vec<u8>>>,
    plan: &Arc<dyn ExecutionPlan>,
    codec: &VeilCodec,
) -> Result<()> {
    let node = PhysicalPlanNode::try_from_physical_plan(Arc::clone(plan), codec)?;
    sent.lock()
        .map_err(|_| DataFusionError::Internal("plan record poisoned".into()))?
        .push(node.encode_to_vec());
    Ok(())
}

/// Says what to check when the cluster fails in ways Ballista reports
/// vaguely: a scheduler that does not answer, an executor refusing to
/// decode a task (keyed with another secret, or not `veil executor`).
fn explain(e: DataFusionError, address: &str) -> DataFusionError {
    let text = e.to_string();
    if text.contains("tcp connect error") || text.contains("transport error") {
        return DataFusionError::Execution(format!(
            "cannot reach the Veil cluster's scheduler at {address}: is `veil scheduler` running there?"
        ));
    }
    if text.contains("could not be prepared or was rejected by executor") {
        return DataFusionError::Execution(format!(
            "{text}; every executor must be `veil executor` with the workspace's secret (VEIL_SECRET)"
        ));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses() {
        assert_eq!(
            scheduler_url("df://127.0.0.1:50050").unwrap(),
            "http://127.0.0.1:50050"
        );
        assert_eq!(scheduler_url("host:1").unwrap(), "http://host:1");
        for bad in ["df://host", "df://:1", "df://h:port", "http://h:1/x"] {
            assert!(scheduler_url(bad).is_err(), "{bad}");
        }
    }
}
