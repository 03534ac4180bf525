//! Graceful shutdown (SPEC §9 "Operations"): on SIGTERM (or Ctrl-C) the
//! servers stop accepting connections, refuse new statements, let the
//! statements already running finish (up to a grace period), close the
//! connections and flush the audit log.
//!
//! Every listener holds a clone of one [`Shutdown`]: accept loops end on
//! [`Shutdown::stopping`], each statement holds a [`StatementGuard`] for as
//! long as it runs (its rows included), and connections end on
//! [`Shutdown::closing`] once the running statements are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use veil_engine::Engine;

/// The shutdown state shared by the listeners (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Cancelled when shutdown begins: stop accepting, refuse statements.
    stopping: CancellationToken,
    /// Cancelled once running statements are done: close connections.
    closing: CancellationToken,
    running: AtomicUsize,
    idle: Notify,
}

/// One running statement; shutdown waits until every guard is dropped.
#[derive(Debug)]
pub struct StatementGuard {
    inner: Arc<Inner>,
}

impl Drop for StatementGuard {
    fn drop(&mut self) {
        if self.inner.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl Shutdown {
    /// A server that is running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a statement about to run; `None` once shutdown has begun
    /// (the protocol refuses it: SQLSTATE `57P01`).
    pub fn statement(&self) -> Option<StatementGuard> {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let guard = StatementGuard {
            inner: Arc::clone(&self.inner),
        };
        // Checked after counting, so `begin` followed by `drained` never
        // misses a statement that slipped in between.
        if self.inner.stopping.is_cancelled() {
            return None;
        }
        Some(guard)
    }

    /// Statements running now.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.is_cancelled()
    }

    /// Resolves when shutdown begins (accept loops select on it).
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.inner.stopping.cancelled()
    }

    /// Resolves when connections must close (running statements are done,
    /// or the grace period is over).
    pub fn closing(&self) -> WaitForCancellationFuture<'_> {
        self.inner.closing.cancelled()
    }

    /// Owned futures for tasks that outlive a borrow of `self`.
    pub fn closing_token(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    /// Begins shutdown: listeners stop accepting and new statements are
    /// refused.
    pub fn begin(&self) {
        self.inner.stopping.cancel();
    }

    /// Waits until no statement is running or `grace` has passed; returns
    /// whether every statement finished.
    pub async fn drained(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.inner.idle.notified();
                if self.running() == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }

    /// The whole sequence after the signal: begin, wait for running
    /// statements (at most `grace`), close connections, flush the audit
    /// log. Returns how many statements were still running at the end of
    /// the grace period (0 when all finished).
    pub async fn run(&self, grace: Duration, engine: Option<&Engine>) -> usize {
        self.begin();
        self.drained(grace).await;
        let left = self.running();
        self.inner.closing.cancel();
        if let Some(log) = engine.and_then(Engine::audit_log)
            && let Err(e) = log.flush()
        {
            eprintln!("veil serve: {e}");
        }
        left
    }
}

/// Starts listening for SIGTERM and SIGINT (Ctrl-C) now — so a signal that
/// arrives before the returned future is first polled is not lost, and
/// does not kill the process with the default action — and resolves on the
/// first of them.
pub fn signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn running_statements_finish_before_connections_close() {
        let s = Shutdown::new();
        let guard = s.statement().expect("running server accepts statements");
        let closing = s.closing_token();
        let stopper = {
            let s = s.clone();
            tokio::spawn(async move { s.run(Duration::from_secs(60), None).await })
        };
        s.stopping().await;
        // Shutdown has begun: no new statement, connections still open
        // while the running statement holds its guard.
        assert!(s.statement().is_none());
        assert!(!closing.is_cancelled());
        drop(guard);
        closing.cancelled().await;
        assert_eq!(stopper.await.ok(), Some(0));
    }

    #[tokio::test]
    async fn the_grace_period_bounds_the_wait() {
        let s = Shutdown::new();
        let _stuck = s.statement().expect("running server accepts statements");
        let left = s.run(Duration::from_millis(20), None).await;
        assert_eq!(left, 1);
        assert!(s.closing_token().is_cancelled());
    }

    #[tokio::test]
    async fn refused_statements_do_not_hold_shutdown() {
        let s = Shutdown::new();
        s.begin();
        assert!(s.statement().is_none());
        assert_eq!(s.running(), 0);
        assert!(s.drained(Duration::from_secs(5)).await);
    }
}
