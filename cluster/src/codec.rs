//! The physical extension codec every Veil cluster process uses: Ballista's
//! own (shuffle readers and writers), plus Veil's policy barrier and Veil's
//! functions (see [`crate::functions`]). The client and executors hold the
//! secret; the scheduler does not.

use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use veil_engine::enforce::PolicyBarrierExec;

use crate::functions::Functions;

/// Marks a serialized policy barrier; the protected table's name follows.
const BARRIER: &[u8] = b"veil-barrier/1\n";

/// Ballista's codec with Veil's barrier and functions.
#[derive(Debug)]
pub struct VeilCodec {
    ballista: BallistaPhysicalExtensionCodec,
    functions: Functions,
}

impl VeilCodec {
    /// A codec whose Veil functions are keyed with `functions`' secret (or
    /// are stand-ins, for the scheduler).
    pub fn new(functions: Functions) -> Self {
        Self {
            ballista: BallistaPhysicalExtensionCodec::default(),
            functions,
        }
    }

    /// The codec as a shared trait object, as Ballista's configuration
    /// takes it.
    pub fn shared(functions: Functions) -> Arc<dyn PhysicalExtensionCodec> {
        Arc::new(Self::new(functions))
    }
}

impl PhysicalExtensionCodec for VeilCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(table) = buf.strip_prefix(BARRIER) else {
            return self.ballista.try_decode(buf, inputs, ctx, proto_converter);
        };
        let [input] = inputs else {
            return internal_err!("a policy barrier arrived with {} inputs", inputs.len());
        };
        let table = String::from_utf8_lossy(table).into_owned();
        Ok(Arc::new(PolicyBarrierExec::rebuilt(
            Arc::clone(input),
            table,
        )))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(barrier) = node.downcast_ref::<PolicyBarrierExec>() {
            buf.extend_from_slice(BARRIER);
            buf.extend_from_slice(barrier.table().as_bytes());
            return Ok(());
        }
        self.ballista.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match self.functions.decode(name, buf)? {
            Some(f) => Ok(f),
            None => self.ballista.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.functions.encode(node, buf)? {
            return Ok(());
        }
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.ballista.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.ballista.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udwf(node, buf)
    }
}
