//! `veil scheduler`, `veil executor` and `--cluster`: Veil on Apache
//! Ballista (SPEC §10). One `veil` binary is all a cluster needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use veil_engine::Engine;

use crate::Failure;

/// `veil scheduler`.
#[derive(clap::Args)]
pub(crate) struct SchedulerArgs {
    /// Address the scheduler's gRPC service listens on (clients and
    /// executors connect to it as df://HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
}

/// `veil executor`.
#[derive(clap::Args)]
pub(crate) struct ExecutorArgs {
    /// The scheduler, df://HOST:PORT.
    #[arg(long, default_value = "df://127.0.0.1:50050")]
    scheduler: String,
    /// Address the executor's Arrow Flight service listens on (results and
    /// shuffle data are fetched from it).
    #[arg(long, default_value = "127.0.0.1:50051")]
    bind: SocketAddr,
    /// Directory for shuffle files (default: a temporary directory).
    #[arg(long = "work-dir")]
    work_dir: Option<PathBuf>,
    /// Environment variable holding the hashing and encryption secret: the
    /// same value as the workspace's `settings.secret_env` on clients.
    #[arg(long = "secret-env", default_value = "VEIL_SECRET")]
    secret_env: String,
    /// Tasks run at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    vcores: usize,
}

/// Runs a scheduler until the process stops.
pub(crate) async fn scheduler(args: SchedulerArgs) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| Failure::Usage(format!("cannot listen on {}: {e}", args.bind)))?;
    eprintln!("veil scheduler listening on df://{}", args.bind);
    veil_cluster::run_scheduler(listener)
        .await
        .map_err(|e| Failure::Usage(format!("the scheduler stopped: {e}")))
}

/// Runs an executor until the process stops.
pub(crate) async fn executor(args: ExecutorArgs) -> Result<(), Failure> {
    let secret = match std::env::var(&args.secret_env) {
        Ok(s) if !s.is_empty() => s,
        _ => {
            eprintln!(
                "warning: {} is not set: this executor uses Veil's development secret and refuses statements planned with any other",
                args.secret_env
            );
            veil_engine::load::DEV_SECRET.to_string()
        }
    };
    eprintln!(
        "veil executor on {} for scheduler {}",
        args.bind, args.scheduler
    );
    veil_cluster::run_executor(veil_cluster::ExecutorOptions {
        scheduler: args.scheduler,
        bind: args.bind,
        work_dir: args.work_dir,
        secret,
        vcores: args.vcores,
        connect_timeout_seconds: 30,
    })
    .await
    .map_err(|e| Failure::Usage(format!("the executor stopped: {e}")))
}

/// Sends `engine`'s statements to the cluster at `address` (df://HOST:PORT).
pub(crate) fn attach(engine: &Engine, address: Option<&str>) -> Result<(), Failure> {
    let Some(address) = address else {
        return Ok(());
    };
    let secret = engine.current().workspace().settings.secret.clone();
    let client = veil_cluster::ClusterClient::new(address, &secret)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    engine.set_plan_executor(Some(Arc::new(client)));
    Ok(())
}
