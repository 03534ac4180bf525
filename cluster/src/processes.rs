//! `veil scheduler` and `veil executor`: Ballista's scheduler and executor
//! processes with Veil's codec, so one `veil` binary is all a cluster needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use crate::ClusterError;
use crate::codec::VeilCodec;
use crate::functions::Functions;

/// Runs a scheduler on `listener` until the process stops. It holds no
/// secret: Veil's functions pass through it as stand-ins that refuse to run.
pub async fn run_scheduler(listener: tokio::net::TcpListener) -> Result<(), ClusterError> {
    let address = listener.local_addr()?;
    let mut config = SchedulerConfig {
        bind_host: address.ip().to_string(),
        bind_port: address.port(),
        external_host: address.ip().to_string(),
        ..SchedulerConfig::default()
    };
    config.override_physical_codec = Some(VeilCodec::shared(Functions::unkeyed()));
    // Ballista swaps hash join sides after a stage ran, which DataFusion
    // refuses once a join built its dynamic filter: none on this scheduler,
    // whatever a client sends (Veil's clients plan without them too).
    config.override_config_producer = Some(Arc::new(|| {
        let mut c = SessionConfig::new_with_ballista();
        veil_engine::enforce::state::for_cluster(&mut c);
        c
    }));
    config.validate()?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config)).await?;
    start_grpc_service_with_listener(listener, scheduler).await?;
    Ok(())
}

/// How `veil executor` runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `df://HOST:PORT` or `HOST:PORT`.
    pub scheduler: String,
    /// Where the executor's Arrow Flight service listens (results and
    /// shuffle data are fetched from it).
    pub bind: SocketAddr,
    /// Shuffle files (a temporary directory when absent).
    pub work_dir: Option<PathBuf>,
    /// The hashing and encryption secret, from the executor's own
    /// environment; a plan planned with another secret is refused.
    pub secret: String,
    /// Tasks run at once (0: one per core).
    pub vcores: usize,
    /// Seconds to keep trying to reach the scheduler at start.
    pub connect_timeout_seconds: u16,
}

/// Runs an executor until the process stops (Ctrl-C, SIGTERM) or the
/// scheduler stops it.
pub async fn run_executor(options: ExecutorOptions) -> Result<(), ClusterError> {
    let (host, port) = crate::client::scheduler_address(&options.scheduler)?;
    wait_for(&host, port, options.connect_timeout_seconds).await?;
    let functions = Functions::keyed(&options.secret, veil_udfs::DEFAULT_MEMO_CAPACITY);
    let mut state = SessionStateBuilder::new().with_default_features().build();
    for f in functions.registry() {
        state.register_udf(f)?;
    }
    let registry = BallistaFunctionRegistry::from(&state);
    let ip = options.bind.ip().to_string();
    let config = ExecutorProcessConfig {
        bind_host: ip.clone(),
        external_host: (!options.bind.ip().is_unspecified()).then_some(ip),
        port: options.bind.port(),
        // Only used by push scheduling; Veil's scheduler pulls.
        grpc_port: options.bind.port().saturating_add(1),
        scheduler_host: host,
        scheduler_port: port,
        // Reached already (`wait_for`): one attempt.
        scheduler_connect_timeout_seconds: 0,
        vcores: options.vcores,
        work_dir: options.work_dir.as_ref().map(|d| d.display().to_string()),
        override_function_registry: Some(Arc::new(registry)),
        override_physical_codec: Some(VeilCodec::shared(functions)),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// Waits until the scheduler at `host:port` accepts connections, for up to
/// `seconds`.
async fn wait_for(host: &str, port: u16, seconds: u16) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds.into());
    loop {
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(ClusterError::Unreachable(format!("{host}:{port}"), e));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
