//! Where statements are parsed and planned: threads with a known, large
//! stack, and panics turned into errors.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::PLANNING_STACK;
use crate::error::{Result, VeilError};

thread_local! {
    /// Set on the threads [`on_planning_stack`] and [`on_planning_thread`]
    /// start, whose stack is [`PLANNING_STACK`] bytes.
    static ON_PLANNING_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on a thread with [`PLANNING_STACK`] bytes of stack, so deep
/// (but within the limits) statements never overflow the caller's stack; a
/// panic in `f` becomes an error.
pub fn on_planning_stack<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    // Already on a planning thread (a statement's check inside its
    // planning): its stack is the planning stack; catch panics here too.
    if ON_PLANNING_THREAD.get() {
        return std::panic::catch_unwind(AssertUnwindSafe(f))
            .unwrap_or_else(|panic| Err(panicked(&panic)));
    }
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("veil-planner".into())
            .stack_size(PLANNING_STACK)
            .spawn_scoped(scope, || {
                ON_PLANNING_THREAD.set(true);
                f()
            })
            .map_err(|e| {
                VeilError::Refused(format!("Veil could not start a planning thread: {e}."))
            })?;
        handle.join().unwrap_or_else(|panic| Err(panicked(&panic)))
    })
}

/// Runs `f` on a new thread with [`PLANNING_STACK`] bytes of stack and
/// awaits its result without blocking the caller's runtime; `f` gets the
/// caller's tokio runtime handle to drive async planning. A panic in `f`
/// becomes an error.
pub async fn on_planning_thread<T: Send + 'static>(
    f: impl FnOnce(&tokio::runtime::Handle) -> T + Send + 'static,
) -> Result<T> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| VeilError::Refused("Veil sessions run inside a tokio runtime.".to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("veil-planner".into())
        .stack_size(PLANNING_STACK)
        .spawn(move || {
            ON_PLANNING_THREAD.set(true);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&handle)));
            let _ = tx.send(result);
        })
        .map_err(|e| VeilError::Refused(format!("Veil could not start a planning thread: {e}.")))?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(panicked(&panic)),
        Err(_) => Err(VeilError::Internal(
            "the planning thread ended without a result".into(),
        )),
    }
}

/// Awaits `future`, turning a panic in it into an error.
pub async fn catch_panics<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => Err(panicked(&panic)),
    }
}

pub(crate) fn panicked(panic: &Box<dyn std::any::Any + Send>) -> VeilError {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    VeilError::Internal(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::on_planning_stack;

    #[test]
    fn planning_stack_is_reused_on_a_planning_thread() {
        let outer = on_planning_stack(|| {
            let here = std::thread::current().id();
            let inner = on_planning_stack(|| Ok(std::thread::current().id()))?;
            // A panic in the nested call is still an error, not an unwind.
            let panicked = on_planning_stack::<()>(|| panic!("nested"));
            Ok((here, inner, panicked.is_err()))
        })
        .unwrap();
        assert_eq!(outer.0, outer.1, "a second planning thread was started");
        assert!(outer.2);
        assert_ne!(outer.0, std::thread::current().id());
    }

    #[test]
    fn panics_become_errors() {
        let e = on_planning_stack::<()>(|| panic!("boom")).unwrap_err();
        assert!(
            matches!(e, VeilError::Internal(ref d) if d == "boom"),
            "{e:?}"
        );
    }
}
