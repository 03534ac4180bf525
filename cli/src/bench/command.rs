//! `veil bench` from the command line: its arguments, and which run they
//! ask for (one run, one per core count, or single-node against a
//! cluster), with the reports written beside the data.

use std::path::PathBuf;

use crate::{Failure, emit_line};

/// `veil bench`'s arguments.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// TPC-H scale factor.
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Queries to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    queries: Vec<String>,
    /// Output directory: Parquet cache, generated workspace, reports.
    #[arg(long, default_value = "target/veil-bench")]
    out: PathBuf,
    /// Users in the generated workspace's user_profile.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Timed runs per query and way (after one checked warm-up run).
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Cores to run on, comma-separated (e.g. `1,2`): each count runs the
    /// whole benchmark pinned to that many cores (DataFusion partitions
    /// and tokio workers alike), then a table shows each query's
    /// scaling (default: every core, one run).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Instead: the enforced queries single-node and on the Ballista
    /// cluster whose scheduler is at df://HOST:PORT, results checked
    /// equal (see scripts/cluster.sh).
    #[arg(long, env = "VEIL_CLUSTER", conflicts_with = "threads")]
    cluster: Option<String>,
}

/// Runs the benchmark `args` ask for and writes its reports.
pub(crate) async fn bench(args: BenchArgs) -> Result<(), Failure> {
    let BenchArgs {
        sf,
        queries,
        out,
        users,
        iterations,
        threads,
        cluster,
    } = args;
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; run `cargo run --release -- bench` for real numbers"
        );
    }
    let options = crate::bench::BenchOptions {
        sf,
        queries,
        out: out.clone(),
        users,
        iterations,
        progress: true,
        threads: None,
    };
    if let Some(address) = cluster {
        let report = crate::bench::cluster::run(&options, &address).await?;
        let table = report.table();
        emit_line(&table)?;
        let path = out.join(format!(
            "report-sf{}-u{users}-cluster.md",
            crate::bench::tpch::sf_label(sf)
        ));
        std::fs::write(&path, table)
            .map_err(|e| Failure::Usage(format!("cannot write '{}': {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    let reports = if threads.is_empty() {
        vec![crate::bench::run(&options).await?]
    } else {
        let counts = threads.clone();
        tokio::task::spawn_blocking(move || {
            crate::bench::threads::run_per_thread_count(&options, &counts)
        })
        .await
        .map_err(|e| Failure::Usage(format!("the benchmark stopped: {e}")))??
    };
    let mut written = Vec::new();
    for report in &reports {
        let table = report.table();
        emit_line(&table)?;
        let mut stem = format!("report-sf{}-u{users}", crate::bench::tpch::sf_label(sf));
        if !threads.is_empty() {
            stem.push_str(&format!("-t{}", report.cores));
        }
        written.push((format!("{stem}.md"), table));
        written.push((format!("{stem}.json"), report.json()));
        written.push((format!("{stem}.svg"), report.svg()));
    }
    if reports.len() > 1 {
        let table = crate::bench::threads::scaling_table(&reports);
        emit_line(&table)?;
        let stem = format!("report-sf{}-u{users}", crate::bench::tpch::sf_label(sf));
        written.push((format!("{stem}-scaling.md"), table));
    }
    for (name, text) in written {
        let path = out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Failure::Usage(format!("cannot write '{}': {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
