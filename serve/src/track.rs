//! One statement's life as the operators see it: it holds the server open
//! during a graceful shutdown (a [`StatementGuard`]) and is counted in the
//! metrics with its outcome and latency when it ends — after its last row,
//! not when its first batch is planned.

use std::time::{Duration, Instant};

use crate::metrics::{FailureReason, Metrics, Outcome};
use crate::shutdown::{Shutdown, StatementGuard};

/// A running statement of an authenticated login.
#[derive(Debug)]
pub struct StatementTrack {
    metrics: Metrics,
    user: String,
    started: Instant,
    finished: bool,
    _guard: StatementGuard,
}

impl StatementTrack {
    /// Starts tracking a statement of `user`; `None` once shutdown has
    /// begun (the protocol refuses it: SQLSTATE `57P01`, counted here).
    pub fn start(metrics: &Metrics, shutdown: &Shutdown, user: &str) -> Option<Self> {
        let Some(guard) = shutdown.statement() else {
            metrics.statement(
                user,
                Outcome::Failed(FailureReason::Shutdown),
                Duration::ZERO,
            );
            return None;
        };
        Some(Self {
            metrics: metrics.clone(),
            user: user.to_string(),
            started: Instant::now(),
            finished: false,
            _guard: guard,
        })
    }

    /// The statement ended with `outcome` (its last row sent, or an error).
    pub fn finish(mut self, outcome: Outcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Outcome) {
        if !self.finished {
            self.finished = true;
            self.metrics
                .statement(&self.user, outcome, self.started.elapsed());
        }
    }
}

impl Drop for StatementTrack {
    fn drop(&mut self) {
        // Dropped before its end: the client went away mid-result.
        self.record(Outcome::Failed(FailureReason::Cancelled));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_counts_once_and_holds_shutdown_while_it_runs() {
        let metrics = Metrics::new();
        let shutdown = Shutdown::new();
        let t = StatementTrack::start(&metrics, &shutdown, "ALICE").unwrap();
        assert_eq!(shutdown.running(), 1);
        t.finish(Outcome::Ok);
        assert_eq!(shutdown.running(), 0);
        let dropped = StatementTrack::start(&metrics, &shutdown, "ALICE").unwrap();
        drop(dropped);
        shutdown.begin();
        assert!(StatementTrack::start(&metrics, &shutdown, "ALICE").is_none());
        let text = metrics.encode();
        assert!(text.contains(r#"veil_statements_total{user="ALICE",status="ok"} 1"#));
        assert!(text.contains(r#"veil_statements_total{user="ALICE",status="failed"} 2"#));
        assert!(
            text.contains(r#"veil_statement_failures_total{user="ALICE",reason="cancelled"} 1"#)
        );
        assert!(
            text.contains(r#"veil_statement_failures_total{user="ALICE",reason="shutdown"} 1"#)
        );
    }
}
