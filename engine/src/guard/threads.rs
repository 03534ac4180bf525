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

/// Runs `f` on a planning thread with [`PLANNING_STACK`] bytes of stack and
/// awaits its result without blocking the caller's runtime; `f` gets the
/// caller's tokio runtime handle to drive async planning. A panic in `f`
/// becomes an error. Planning threads are kept for the next statement (up
/// to [`IDLE_PLANNERS`] idle): a new thread's stack and malloc arena are
/// cold, and the page faults of a statement's first allocations on one cost
/// a short statement more than its parse.
pub async fn on_planning_thread<T: Send + 'static>(
    f: impl FnOnce(&tokio::runtime::Handle) -> T + Send + 'static,
) -> Result<T> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| VeilError::Refused("Veil sessions run inside a tokio runtime.".to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    run_on_planner(Box::new(move || {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&handle)));
        let _ = tx.send(result);
    }))?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => Err(panicked(&panic)),
        Err(_) => Err(VeilError::Internal(
            "the planning thread ended without a result".into(),
        )),
    }
}

/// Most planning threads kept idle between statements.
pub(crate) const IDLE_PLANNERS: usize = 8;

/// Work for a planning thread; it catches its own panics.
type PlannerJob = Box<dyn FnOnce() + Send>;

/// The idle planning threads, each waiting for its next job.
static IDLE: std::sync::Mutex<Vec<std::sync::mpsc::Sender<PlannerJob>>> =
    std::sync::Mutex::new(Vec::new());

fn idle_planners() -> std::sync::MutexGuard<'static, Vec<std::sync::mpsc::Sender<PlannerJob>>> {
    // The list stays consistent even if a holder panicked: it is only
    // pushed to and popped from.
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `job` to an idle planning thread, or starts one.
fn run_on_planner(mut job: PlannerJob) -> Result<()> {
    loop {
        let Some(planner) = idle_planners().pop() else {
            break;
        };
        match planner.send(job) {
            Ok(()) => return Ok(()),
            // That thread is gone: take the job back and try the next.
            Err(std::sync::mpsc::SendError(back)) => job = back,
        }
    }
    std::thread::Builder::new()
        .name("veil-planner".into())
        .stack_size(PLANNING_STACK)
        .spawn(move || {
            ON_PLANNING_THREAD.set(true);
            let (own, next) = std::sync::mpsc::channel::<PlannerJob>();
            let mut job = job;
            loop {
                job();
                {
                    let mut idle = idle_planners();
                    if idle.len() >= IDLE_PLANNERS {
                        return;
                    }
                    idle.push(own.clone());
                }
                // `own` stays here, so the queue never closes while waiting.
                match next.recv() {
                    Ok(j) => job = j,
                    Err(_) => return,
                }
            }
        })
        .map_err(|e| VeilError::Refused(format!("Veil could not start a planning thread: {e}.")))?;
    Ok(())
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn planning_threads_are_reused_and_survive_panics() {
        let first = on_planning_thread(|_| std::thread::current().id())
            .await
            .unwrap();
        // A panic becomes an error and leaves the thread serving.
        let e = on_planning_thread::<()>(|_| panic!("planner"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, VeilError::Internal(ref d) if d == "planner"),
            "{e:?}"
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let (id, nested, on_planner) = on_planning_thread(|_| {
                let id = std::thread::current().id();
                let nested = on_planning_stack(|| Ok(std::thread::current().id()));
                (id, nested, ON_PLANNING_THREAD.get())
            })
            .await
            .unwrap();
            assert!(on_planner);
            assert_eq!(
                nested.unwrap(),
                id,
                "a planning thread plans on its own stack"
            );
            seen.insert(id);
        }
        assert_ne!(first, std::thread::current().id());
        // Other tests plan concurrently in this process; sequential
        // statements here still reuse a handful of threads, not 20.
        assert!(
            seen.len() <= IDLE_PLANNERS,
            "{} planning threads",
            seen.len()
        );
        // Concurrent statements each get a thread.
        let both = futures::future::join_all((0..4).map(|_| {
            on_planning_thread(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::thread::current().id()
            })
        }))
        .await;
        let ids: std::collections::HashSet<_> = both.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(ids.len(), 4);
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
