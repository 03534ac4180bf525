//! `veil bench --threads N,M,...`: the benchmark on a given number of
//! cores, and how each query scales from the fewest cores to the most.
//!
//! Each count runs the whole benchmark in its own OS thread pinned to that
//! many of the cores the process may use, with a tokio runtime of that many
//! worker threads. Pinning is what makes the count hold everywhere at once:
//! DataFusion's target partitions follow the cores a thread may use
//! (`available_parallelism`), both in the plain contexts the benchmark opens
//! and in the engine's own sessions, so "1 thread" means one core doing all
//! the work, not one partition racing a second idle worker.

use std::fmt::Write as _;

use veil_engine::{Result, VeilError};

use super::{BenchOptions, BenchReport, run};

/// Runs the benchmark once per entry of `threads`, each pinned to that many
/// cores, in the order given; the reports come back in the same order.
pub(crate) fn run_per_thread_count(
    options: &BenchOptions,
    threads: &[usize],
) -> Result<Vec<BenchReport>> {
    let available = allowed_cores()?;
    let mut reports = Vec::new();
    for &n in threads {
        if n == 0 || n > available.len() {
            return Err(VeilError::Bench(format!(
                "--threads {n} is out of range: this process may use {} cores",
                available.len()
            )));
        }
        let cores = available[..n].to_vec();
        let options = BenchOptions {
            threads: Some(n),
            ..options.clone()
        };
        let handle = std::thread::Builder::new()
            .name(format!("veil-bench-{n}"))
            .spawn(move || -> Result<BenchReport> {
                pin_to(&cores)?;
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        VeilError::Bench(format!("cannot start a runtime of {n} threads: {e}"))
                    })?;
                runtime.block_on(run(&options))
            })
            .map_err(|e| VeilError::Bench(format!("cannot start the benchmark thread: {e}")))?;
        let report = handle.join().map_err(|_| {
            VeilError::Bench(format!("the benchmark on {n} threads stopped unexpectedly"))
        })??;
        reports.push(report);
    }
    Ok(reports)
}

/// The cores this process may run on, in order.
#[cfg(target_os = "linux")]
fn allowed_cores() -> Result<Vec<usize>> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(|e| {
        VeilError::Bench(format!("cannot read the cores this process may use: {e}"))
    })?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Pins the calling thread (and every thread it starts) to `cores`, and
/// checks that DataFusion will see exactly that many.
#[cfg(target_os = "linux")]
fn pin_to(cores: &[usize]) -> Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    for &c in cores {
        set.set(c)
            .map_err(|e| VeilError::Bench(format!("core {c} cannot be selected: {e}")))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|e| VeilError::Bench(format!("cannot pin the benchmark to {cores:?}: {e}")))?;
    let seen = std::thread::available_parallelism().map_or(0, |n| n.get());
    if seen != cores.len() {
        return Err(VeilError::Bench(format!(
            "pinned to {} cores but DataFusion would see {seen}",
            cores.len()
        )));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn allowed_cores() -> Result<Vec<usize>> {
    Err(VeilError::Bench(
        "--threads pins the benchmark to cores, which Veil does on Linux only".into(),
    ))
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_cores: &[usize]) -> Result<()> {
    allowed_cores().map(|_| ())
}

/// Per query and way, the median time on the fewest and on the most cores
/// and the speed-up between them (time on the fewest ÷ time on the most).
pub(crate) fn scaling_table(reports: &[BenchReport]) -> String {
    let mut s = String::new();
    let (Some(low), Some(high)) = (
        reports.iter().min_by_key(|r| r.cores),
        reports.iter().max_by_key(|r| r.cores),
    ) else {
        return s;
    };
    let _ = writeln!(
        s,
        "Scaling from {} to {} cores · TPC-H SF {} · median ms · speed-up = time on {} ÷ time on {}\n",
        low.cores, high.cores, low.sf, low.cores, high.cores
    );
    let _ = writeln!(
        s,
        "| query | unenforced | views | inlined | profile-join | speed-up unenforced | speed-up views | speed-up inlined | speed-up profile-join |"
    );
    let _ = writeln!(
        s,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for q in &low.queries {
        let Some(h) = high.queries.iter().find(|h| h.name == q.name) else {
            continue;
        };
        let pairs = [
            (q.unenforced_ms, h.unenforced_ms),
            (q.views_ms, h.views_ms),
            (q.inlined_ms, h.inlined_ms),
            (q.profile_join_ms, h.profile_join_ms),
        ];
        let _ = write!(s, "| {} |", q.name);
        for (a, b) in pairs {
            let _ = write!(s, " {a:.1} → {b:.1} |");
        }
        for (a, b) in pairs {
            let _ = write!(s, " {:.2}× |", a / b);
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::QueryReport;

    fn report(cores: usize, ms: f64) -> BenchReport {
        BenchReport {
            sf: 0.1,
            users: 10,
            iterations: 1,
            cores,
            generate_s: 0.0,
            load_s: 0.0,
            queries: vec![QueryReport {
                name: "q1".into(),
                about: String::new(),
                rows: 4,
                unenforced_ms: ms,
                inlined_ms: 2.0 * ms,
                profile_join_ms: 3.0 * ms,
                views_ms: ms,
                veil_rewrite_us: 1.0,
                enforced_planning_us: 1.0,
                unenforced_planning_us: 1.0,
            }],
        }
    }

    #[test]
    fn scaling_divides_the_fewest_cores_by_the_most() {
        let table = scaling_table(&[report(2, 50.0), report(1, 90.0)]);
        assert!(table.contains("from 1 to 2 cores"), "{table}");
        assert!(table.contains("| q1 | 90.0 → 50.0 |"), "{table}");
        assert!(table.contains("1.80×"), "{table}");
    }

    #[test]
    fn more_threads_than_cores_is_refused() {
        let options = BenchOptions {
            sf: 0.01,
            queries: vec![],
            out: std::env::temp_dir(),
            users: 1,
            iterations: 1,
            progress: false,
            threads: None,
        };
        let err = run_per_thread_count(&options, &[100_000])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--threads 100000"), "{err}");
    }
}
