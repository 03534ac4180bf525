//! A scheduler and executors in this process, on loopback: what the tests
//! and `veil bench --cluster local` run on. Every listener is on 127.0.0.1
//! at a port the system picks; dropping the cluster stops its tasks and
//! removes the executors' work directories.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

use crate::ClusterError;
use crate::processes::{ExecutorOptions, run_executor, run_scheduler};

/// A loopback cluster: one scheduler, `n` executors.
#[derive(Debug)]
pub struct LocalCluster {
    scheduler: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    _work: tempfile::TempDir,
}

impl LocalCluster {
    /// Starts a scheduler and `executors` executors of `vcores` task slots
    /// each, keyed with `secret`.
    pub async fn start(
        executors: usize,
        vcores: usize,
        secret: &str,
    ) -> Result<Self, ClusterError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let scheduler = listener.local_addr()?;
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = run_scheduler(listener).await {
                eprintln!("veil scheduler: {e}");
            }
        })];
        let work = tempfile::tempdir()?;
        for i in 0..executors {
            let options = ExecutorOptions {
                scheduler: scheduler.to_string(),
                bind: free_loopback_port()?,
                work_dir: Some(work.path().join(format!("executor-{i}"))),
                secret: secret.to_string(),
                vcores,
                connect_timeout_seconds: 10,
            };
            if let Some(dir) = &options.work_dir {
                std::fs::create_dir_all(dir)?;
            }
            tasks.push(tokio::spawn(async move {
                if let Err(e) = run_executor(options).await {
                    eprintln!("veil executor: {e}");
                }
            }));
        }
        Ok(Self {
            scheduler,
            tasks,
            _work: work,
        })
    }

    /// The scheduler's address, `df://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("df://{}", self.scheduler)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A loopback address whose port and the next one (an executor's task
/// service) are free right now.
fn free_loopback_port() -> std::io::Result<SocketAddr> {
    loop {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = probe.local_addr()?;
        let Some(next) = address.port().checked_add(1) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", next)).is_ok() {
            return Ok(address);
        }
    }
}
