//! Start-up and statement phase timings on stderr, for profiling: set
//! `VEIL_TRACE_STARTUP=1` and each phase (workspace load, compile, engine
//! version, session binding, planning, execution, audit) prints one line
//! `veil-trace: PHASE  1.234 ms` as it ends. Off by default: the check is
//! one cached environment read.

use std::sync::OnceLock;
use std::time::Instant;

/// Whether phase timings are printed (`VEIL_TRACE_STARTUP` set and not `0`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("VEIL_TRACE_STARTUP").is_some_and(|v| v != "0"))
}

/// A phase being timed; prints its duration when [`Phase::end`] is called
/// or it is dropped.
#[derive(Debug)]
pub struct Phase {
    name: &'static str,
    started: Option<Instant>,
}

/// Starts timing `name` (a no-op unless [`enabled`]).
pub fn phase(name: &'static str) -> Phase {
    Phase {
        name,
        started: enabled().then(Instant::now),
    }
}

impl Phase {
    /// Ends the phase now.
    pub fn end(self) {}
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(started) = self.started.take() {
            eprintln!(
                "veil-trace: {:<28} {:8.3} ms",
                self.name,
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
