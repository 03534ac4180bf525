//! `veil bench --cluster df://HOST:PORT`: the TPC-H policy queries enforced
//! on a Ballista cluster against the same queries single-node, in both
//! enforcement modes. The first run of each is checked: the cluster's
//! result must equal the single-node result, or the benchmark fails. Then
//! the four ways run interleaved, `iterations` times each, and the table
//! shows medians and the cluster ÷ single-node ratio.

use std::fmt::Write as _;
use std::sync::Arc;

use veil_engine::{EnforcementMode, Engine, Result, Session, SessionOptions, VeilError};

use super::{BenchOptions, first_difference, interleaved, prepare, rows_of, select_queries, tpch};

/// One query's medians (ms): single-node and cluster, each mode.
pub(crate) struct ClusterRow {
    name: &'static str,
    rows: usize,
    ms: [f64; 4],
}

/// The cluster benchmark's result.
pub(crate) struct ClusterReport {
    sf: f64,
    address: String,
    iterations: usize,
    rows: Vec<ClusterRow>,
}

const WAYS: [&str; 4] = [
    "inlined, single-node",
    "inlined, cluster",
    "profile-join, single-node",
    "profile-join, cluster",
];

/// Runs the selected queries single-node and on the cluster at `address`.
pub(crate) async fn run(options: &BenchOptions, address: &str) -> Result<ClusterReport> {
    let queries = select_queries(&options.queries)?;
    let (local, _, _, _) = prepare(options).await?;
    let remote = Engine::from_workspace(local.workspace()).await?;
    let secret = remote.workspace().settings.secret.clone();
    let client = veil_cluster::ClusterClient::new(address, &secret)
        .map_err(|e| VeilError::Bench(e.to_string()))?;
    remote.set_plan_executor(Some(Arc::new(client)));
    let session = |engine: &Engine, mode| {
        engine.session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user(tpch::BENCH_USER)
        })
    };
    let sessions: [Session; 4] = [
        session(&local, EnforcementMode::Inlined)?,
        session(&remote, EnforcementMode::Inlined)?,
        session(&local, EnforcementMode::ProfileJoin)?,
        session(&remote, EnforcementMode::ProfileJoin)?,
    ];
    let mut rows = Vec::new();
    for q in &queries {
        if options.progress {
            eprintln!("{}: checking the cluster's result", q.name);
        }
        let mut warm = Vec::new();
        for (way, s) in WAYS.iter().zip(&sessions) {
            let batches = s
                .sql(q.sql)
                .await
                .map_err(|e| VeilError::Bench(format!("{} ({way}) failed: {e}", q.name)))?;
            warm.push(rows_of(&batches));
        }
        for (single, cluster) in [(0, 1), (2, 3)] {
            if let Some(diff) = first_difference(&warm[single], &warm[cluster], "single-node") {
                return Err(VeilError::Bench(format!(
                    "{}: the cluster's result ({}) differs from the single-node result: {diff}",
                    q.name, WAYS[cluster]
                )));
            }
        }
        let ms = interleaved(
            options.iterations,
            async |j| sessions[j].sql(q.sql).await,
            || {},
        )
        .await?;
        rows.push(ClusterRow {
            name: q.name,
            rows: warm[0].len(),
            ms,
        });
    }
    Ok(ClusterReport {
        sf: options.sf,
        address: address.to_string(),
        iterations: options.iterations,
        rows,
    })
}

impl ClusterReport {
    /// The Markdown table: medians and cluster ÷ single-node per mode.
    pub(crate) fn table(&self) -> String {
        let mut out = format!(
            "TPC-H SF {} enforced by Veil, single-node vs the cluster at {} (median of {} runs, ms; results checked equal)\n\n",
            tpch::sf_label(self.sf),
            self.address,
            self.iterations
        );
        out.push_str("| query | rows | inlined | inlined, cluster | ÷ | profile-join | profile-join, cluster | ÷ |\n");
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} |",
                r.name,
                r.rows,
                r.ms[0],
                r.ms[1],
                r.ms[1] / r.ms[0],
                r.ms[2],
                r.ms[3],
                r.ms[3] / r.ms[2]
            );
        }
        out
    }
}
