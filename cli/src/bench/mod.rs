//! `veil bench`: what Veil's policies cost on TPC-H.
//!
//! Each query runs four ways in one process, interleaved so drift hits all
//! alike: with no policies (the raw Parquet in a plain DataFusion context),
//! enforced by Veil in inlined mode, enforced in profile-join mode, and over
//! hand-written secure views (the same policies as plain SQL views, the
//! baseline a careful user would write). The first run of each query is a
//! checked warm-up: both enforced results must equal the views' result, or
//! the benchmark fails — a wrong fast answer is not a result.

pub(crate) mod cluster;
pub(crate) mod command;
pub(crate) mod report;
pub(crate) mod threads;
pub(crate) mod tpch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use indicatif::{ProgressBar, ProgressStyle};

pub(crate) use report::{BenchReport, QueryReport};
use tpch::BenchQuery;
use veil_engine::EnforcementMode;
use veil_engine::{Engine, Session, SessionOptions};
use veil_engine::{Result, VeilError};

/// What `veil bench` runs.
#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    /// TPC-H scale factor.
    pub(crate) sf: f64,
    /// Query names to run (all when empty).
    pub(crate) queries: Vec<String>,
    /// Output directory: Parquet cache, generated workspace, reports.
    pub(crate) out: PathBuf,
    /// Users in the generated workspace.
    pub(crate) users: usize,
    /// Timed runs per query and variant.
    pub(crate) iterations: usize,
    /// Show progress bars.
    pub(crate) progress: bool,
    /// The cores the run is pinned to (see [`threads`]); `None`: every core.
    pub(crate) threads: Option<usize>,
}

/// The four ways a query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Unenforced,
    Views,
    Inlined,
    ProfileJoin,
}

const VARIANTS: [Variant; 4] = [
    Variant::Unenforced,
    Variant::Views,
    Variant::Inlined,
    Variant::ProfileJoin,
];

/// Everything a run needs, opened once.
struct Contexts {
    raw: SessionContext,
    views: SessionContext,
    inlined: Session,
    profile_join: Session,
}

impl Contexts {
    async fn run(&self, variant: Variant, sql: &str) -> Result<Vec<RecordBatch>> {
        match variant {
            Variant::Unenforced => Ok(self.raw.sql(sql).await?.collect().await?),
            Variant::Views => Ok(self.views.sql(sql).await?.collect().await?),
            Variant::Inlined => self.inlined.sql(sql).await,
            Variant::ProfileJoin => self.profile_join.sql(sql).await,
        }
    }
}

/// The queries `names` selects (all when empty); unknown names are an error.
pub(crate) fn select_queries(names: &[String]) -> Result<Vec<BenchQuery>> {
    if names.is_empty() {
        return Ok(tpch::QUERIES.to_vec());
    }
    names
        .iter()
        .map(|n| {
            tpch::QUERIES
                .iter()
                .find(|q| q.name.eq_ignore_ascii_case(n.trim()))
                .copied()
                .ok_or_else(|| {
                    VeilError::Bench(format!(
                        "unknown benchmark query '{n}'; known: {}",
                        tpch::QUERIES
                            .iter()
                            .map(|q| q.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        })
        .collect()
}

/// Generates (or reuses) the data, runs every selected query four ways,
/// checks the enforced results against the views', and returns the report.
pub(crate) async fn run(options: &BenchOptions) -> Result<BenchReport> {
    let queries = select_queries(&options.queries)?;
    let (engine, data, generate_s, load_s) = prepare(options).await?;
    // Under `--threads` the thread is pinned, so this is that count, as the
    // engine's sessions see it too.
    let cores = options.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let contexts = open(&engine, &data, cores).await?;

    let bar = if options.progress {
        let bar =
            ProgressBar::new((queries.len() * VARIANTS.len() * (options.iterations + 1)) as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len} runs")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut reports = Vec::new();
    for q in &queries {
        bar.set_message(q.name);
        reports.push(run_query(&contexts, q, options.iterations, &bar).await?);
    }
    bar.finish_and_clear();
    Ok(BenchReport {
        sf: options.sf,
        users: options.users,
        iterations: options.iterations,
        cores,
        generate_s,
        load_s,
        queries: reports,
    })
}

/// Generates (or reuses) the data and writes the workspace; returns its
/// engine, the data directory, and the generation and load times (s).
pub(crate) async fn prepare(options: &BenchOptions) -> Result<(Engine, PathBuf, f64, f64)> {
    if !(options.sf.is_finite() && options.sf > 0.0 && options.sf <= 100.0) {
        return Err(VeilError::Bench(format!(
            "scale factor {} is out of range (0 < sf ≤ 100)",
            options.sf
        )));
    }
    if options.users == 0 || options.iterations == 0 {
        return Err(VeilError::Bench(
            "--users and --iterations must be at least 1".into(),
        ));
    }
    let label = tpch::sf_label(options.sf);
    let data = options.out.join("data").join(format!("sf{label}"));
    let started = Instant::now();
    let generated = {
        let data = data.clone();
        let sf = options.sf;
        tokio::task::spawn_blocking(move || tpch::generate(&data, sf))
            .await
            .map_err(|e| VeilError::Bench(format!("data generation stopped: {e}")))??
    };
    let generate_s = if generated {
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let ws_dir = options
        .out
        .join(format!("workspace-sf{label}-u{}", options.users));
    tpch::write_workspace(&ws_dir, &data, options.users)?;
    let started = Instant::now();
    let engine = Engine::load(&ws_dir).await?;
    Ok((engine, data, generate_s, started.elapsed().as_secs_f64()))
}

/// Opens the plain contexts (raw tables; raw tables plus the hand-written
/// views) and the two enforced sessions.
async fn open(engine: &Engine, data: &std::path::Path, cores: usize) -> Result<Contexts> {
    let config = || SessionConfig::new().with_target_partitions(cores);
    let raw = SessionContext::new_with_config(config());
    let views = SessionContext::new_with_config(config());
    for t in tpch::table_names() {
        let path = data.join(t);
        let path = path.to_string_lossy();
        raw.register_parquet(t, path.as_ref(), ParquetReadOptions::default())
            .await?;
        views
            .register_parquet(
                format!("raw_{t}"),
                path.as_ref(),
                ParquetReadOptions::default(),
            )
            .await?;
    }
    for view in tpch::secure_views(&engine.workspace().settings.secret) {
        views.sql(&view).await?.collect().await?;
    }
    let session = |mode| {
        engine.session_with(SessionOptions {
            mode: Some(mode),
            ..SessionOptions::user(tpch::BENCH_USER)
        })
    };
    Ok(Contexts {
        raw,
        views,
        inlined: session(EnforcementMode::Inlined)?,
        profile_join: session(EnforcementMode::ProfileJoin)?,
    })
}

async fn run_query(
    c: &Contexts,
    q: &BenchQuery,
    iterations: usize,
    bar: &ProgressBar,
) -> Result<QueryReport> {
    // Checked warm-up: both modes must return what the views return.
    let mut warm = Vec::new();
    for v in VARIANTS {
        let batches = c.run(v, q.sql).await.map_err(|e| {
            VeilError::Bench(format!("{} ({}) failed: {e}", q.name, variant_name(v)))
        })?;
        bar.inc(1);
        warm.push(batches);
    }
    let expected = rows_of(&warm[1]);
    for (i, v) in [(2, Variant::Inlined), (3, Variant::ProfileJoin)] {
        let got = rows_of(&warm[i]);
        if let Some(diff) = first_difference(&expected, &got, "the views") {
            return Err(VeilError::Bench(format!(
                "{}: the result enforced by Veil ({}) differs from the hand-written views' result: {diff}",
                q.name,
                variant_name(v)
            )));
        }
    }
    let [unenforced_ms, views_ms, inlined_ms, profile_join_ms] = interleaved(
        iterations,
        async |j| c.run(VARIANTS[j], q.sql).await,
        || bar.inc(1),
    )
    .await?;
    // Planning: Veil's front end and DataFusion's planning, inlined mode.
    let mut rewrite = Vec::new();
    let mut planning = Vec::new();
    let mut raw_planning = Vec::new();
    for _ in 0..20 {
        let t = c.inlined.plan_timings(q.sql).await?;
        rewrite.push(micros(t.check + t.rewrite));
        planning.push(micros(t.planning));
        let started = Instant::now();
        let state = c.raw.state();
        let plan = state.create_logical_plan(q.sql).await?;
        std::hint::black_box(state.create_physical_plan(&plan).await?);
        raw_planning.push(micros(started.elapsed()));
    }
    Ok(QueryReport {
        name: q.name.to_string(),
        about: q.about.to_string(),
        rows: expected.len(),
        unenforced_ms,
        views_ms,
        inlined_ms,
        profile_join_ms,
        veil_rewrite_us: median(&mut rewrite),
        enforced_planning_us: median(&mut planning),
        unenforced_planning_us: median(&mut raw_planning),
    })
}

/// Runs each of `N` ways `iterations` times, interleaved (the order rotated
/// each iteration, so no way always runs first or after the same one), and
/// returns each way's median time (ms). `run(j)` runs way `j` once; its
/// result is dropped after the clock stops; `done` follows every run.
pub(crate) async fn interleaved<const N: usize, T>(
    iterations: usize,
    mut run: impl AsyncFnMut(usize) -> Result<T>,
    mut done: impl FnMut(),
) -> Result<[f64; N]> {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(iterations));
    for i in 0..iterations {
        for k in 0..N {
            let j = (i + k) % N;
            let started = Instant::now();
            let out = run(j).await?;
            times[j].push(started.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(out);
            done();
        }
    }
    Ok(times.each_mut().map(|t| median(t)))
}

fn variant_name(v: Variant) -> &'static str {
    match v {
        Variant::Unenforced => "unenforced",
        Variant::Views => "hand-written views",
        Variant::Inlined => "inlined mode",
        Variant::ProfileJoin => "profile-join mode",
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// One cell, compared by value: numbers as `f64` (so `1.50` as DECIMAL(15,2)
/// equals `1.5000` as DECIMAL(19,4)), everything else as text. Ordered
/// totally (NaN included) so sorting a result cannot misbehave.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Number(f64),
    Text(String),
}

impl Cell {
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Cell::Number(x), Cell::Number(y)) => x.total_cmp(y),
            (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
            (Cell::Null, Cell::Null) => Ordering::Equal,
            (Cell::Null, _) | (Cell::Number(_), Cell::Text(_)) => Ordering::Less,
            _ => Ordering::Greater,
        }
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => write!(f, "NULL"),
            Cell::Number(x) => write!(f, "{x}"),
            Cell::Text(s) => write!(f, "'{s}'"),
        }
    }
}

fn cells(array: &ArrayRef) -> Vec<Cell> {
    let numeric = array.data_type().is_numeric();
    let floats = if numeric {
        cast(array, &DataType::Float64).ok()
    } else {
        None
    };
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return Cell::Null;
            }
            if let Some(f) = &floats {
                use datafusion::arrow::array::AsArray;
                return Cell::Number(
                    f.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                        .value(i),
                );
            }
            Cell::Text(array_value_to_string(array, i).unwrap_or_default())
        })
        .collect()
}

/// The rows of a result, sorted (the comparison is of multisets: ties in an
/// ORDER BY may come out in either order).
fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for b in batches {
        let columns: Vec<Vec<Cell>> = b.columns().iter().map(cells).collect();
        for r in 0..b.num_rows() {
            rows.push(columns.iter().map(|c| c[r].clone()).collect::<Vec<_>>());
        }
    }
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.order(y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.len().cmp(&b.len()))
    });
    rows
}

fn same_cell(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Number(x), Cell::Number(y)) => {
            x.total_cmp(y).is_eq() || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Cell::Text(x), Cell::Text(y)) => x == y,
        (Cell::Null, Cell::Null) => true,
        _ => false,
    }
}

/// The first difference between two sorted results, described, or `None`.
fn first_difference(expected: &[Vec<Cell>], got: &[Vec<Cell>], baseline: &str) -> Option<String> {
    if expected.len() != got.len() {
        return Some(format!(
            "{} rows where {baseline} returns {}",
            got.len(),
            expected.len()
        ));
    }
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        if e.len() != g.len() || e.iter().zip(g).any(|(a, b)| !same_cell(a, b)) {
            let show = |row: &[Cell]| {
                row.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Some(format!(
                "sorted row {} is ({}) where {baseline} returns ({})",
                i + 1,
                show(g),
                show(e)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(values: Vec<i128>, scale: i8, names: Vec<&str>) -> RecordBatch {
        let dec = Decimal128Array::from(values)
            .with_precision_and_scale(20, scale)
            .unwrap_or_else(|e| panic!("{e}"));
        let schema = Schema::new(vec![
            Field::new("v", dec.data_type().clone(), true),
            Field::new("n", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(dec), Arc::new(StringArray::from(names))],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn results_compare_by_value_in_any_order() {
        let a = rows_of(&[batch(vec![150, 200], 2, vec!["x", "y"])]);
        let b = rows_of(&[batch(vec![20000, 15000], 4, vec!["y", "x"])]);
        assert_eq!(first_difference(&a, &b, "a"), None);
    }

    #[test]
    fn a_wrong_value_or_row_count_is_a_difference() {
        let a = rows_of(&[batch(vec![150, 200], 2, vec!["x", "y"])]);
        let b = rows_of(&[batch(vec![151, 200], 2, vec!["x", "y"])]);
        let diff = first_difference(&a, &b, "a").unwrap_or_default();
        assert!(diff.contains("1.51"), "{diff}");
        let c = rows_of(&[batch(vec![150], 2, vec!["x"])]);
        assert!(first_difference(&a, &c, "a").is_some());
        let d = rows_of(&[batch(vec![150, 200], 2, vec!["x", "z"])]);
        assert!(first_difference(&a, &d, "a").is_some());
    }

    /// The whole benchmark at a small scale: every query runs four ways and
    /// `run` fails unless both enforced results equal the hand-written
    /// views' (the filters on rounded prices run as raw ranges, the one on
    /// the constant comment is folded, ...).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_query_enforced_returns_what_the_views_return() {
        let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let options = BenchOptions {
            sf: 0.01,
            queries: vec![],
            out: out.path().to_path_buf(),
            users: 10,
            iterations: 1,
            progress: false,
            threads: None,
        };
        let report = run(&options).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.queries.len(), 9);
        let rows = |name: &str| {
            report
                .queries
                .iter()
                .find(|q| q.name == name)
                .map(|q| q.rows)
        };
        assert_eq!(rows("filter_round"), Some(1));
        assert_eq!(rows("q1"), Some(4));
    }

    #[test]
    fn unknown_queries_are_named() {
        let err = select_queries(&["q1".into(), "q99".into()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("'q99'") && err.contains("q10"), "{err}");
        assert_eq!(select_queries(&[]).map(|q| q.len()).ok(), Some(9));
    }
}
