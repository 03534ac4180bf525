//! `veil discover`: sensitive data discovery over a workspace's tables
//! (SPEC §7.2). The library does the work (`veil_engine::discover`); this
//! file parses the flags, draws a progress bar on scans longer than a
//! second and prints the findings as a table or JSON.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use veil_engine::discover::{DiscoverOptions, DiscoveryReport, ScanProgress, TableStatus};

use crate::{Failure, ReportFormat, emit};

/// Flags of `veil discover`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  veil discover -w testdata/sample --tables 'ANALYTICS.PUBLIC.*'\n  veil discover -w . --write   # record the findings as Discovered.* tags"
)]
pub(crate) struct DiscoverArgs {
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace", default_value = ".")]
    workspace: PathBuf,
    /// Record the findings as Discovered.* tags in the catalog journal
    /// (state/catalog.jsonl) and remember each table's fingerprint.
    #[arg(long)]
    write: bool,
    /// Rescan tables whose data is unchanged since the last --write.
    #[arg(long)]
    full: bool,
    /// Only tables matching this glob (DB.SCHEMA.TABLE, case-insensitive).
    #[arg(long)]
    tables: Option<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
    format: ReportFormat,
}

/// Runs `veil discover`.
pub(crate) async fn run(args: DiscoverArgs) -> Result<(), Failure> {
    let ws = veil_engine::load::load_workspace(&args.workspace)?;
    for w in &ws.warnings {
        eprintln!("warning: {w}");
    }
    let options = DiscoverOptions {
        full: args.full,
        tables: args.tables.clone(),
    };
    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{spinner} discovering: table {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let shown = bar.clone();
    let on_progress = move |p: ScanProgress| {
        if shown.is_hidden() && start.elapsed() > Duration::from_secs(1) {
            shown.set_draw_target(ProgressDrawTarget::stderr());
        }
        shown.set_length(p.tables_total as u64);
        shown.set_position(p.tables_done as u64);
        shown.set_message(format!("({} rows read)", p.rows_read));
    };
    let report = veil_engine::discover::discover(&ws, &options, &on_progress).await?;
    bar.finish_and_clear();
    let written = if args.write {
        Some(veil_engine::discover::write::write(&ws, &report)?)
    } else {
        None
    };
    match args.format {
        ReportFormat::Json => {
            let mut value = serde_json::to_value(&report)
                .map_err(|e| Failure::Usage(format!("cannot encode the report: {e}")))?;
            if let (Some(w), Some(obj)) = (&written, value.as_object_mut()) {
                obj.insert(
                    "written".into(),
                    serde_json::to_value(w)
                        .map_err(|e| Failure::Usage(format!("cannot encode the report: {e}")))?,
                );
            }
            emit(format!("{value:#}\n"))?;
        }
        ReportFormat::Table => {
            emit(table(&report))?;
            if let Some(w) = &written {
                emit(format!("{w}\n"))?;
            }
            emit(format!("{}\n", report.summary()))?;
        }
    }
    if report
        .tables
        .iter()
        .any(|t| matches!(t.status, TableStatus::Failed(_)))
    {
        return Err(Failure::Failed);
    }
    Ok(())
}

/// The findings as an aligned text table, one line per tagged column and
/// one per table skipped, excluded or failed.
fn table(report: &DiscoveryReport) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "TABLE".into(),
        "COLUMN".into(),
        "TAG".into(),
        "CLASSIFIER".into(),
        "MATCHED".into(),
        "CONFIDENCE".into(),
        "SAMPLED".into(),
    ]];
    let mut notes = Vec::new();
    for t in &report.tables {
        match &t.status {
            TableStatus::Excluded => notes.push(format!(
                "{}: excluded by settings.discovery.exclude",
                t.table
            )),
            TableStatus::Failed(e) => notes.push(format!("{}: not scanned: {e}", t.table)),
            TableStatus::Unchanged => notes.push(format!(
                "{}: unchanged since the last --write ({} column(s) tagged then; --full rescans)",
                t.table,
                t.findings.len()
            )),
            TableStatus::Scanned => {
                for f in &t.findings {
                    rows.push([
                        t.table.clone(),
                        f.column.clone(),
                        f.tag.clone(),
                        f.classifier.clone(),
                        format!("{:.0}%", f.matched * 100.0),
                        format!("{:.2}", f.confidence),
                        f.sampled.to_string(),
                    ]);
                }
            }
        }
    }
    let mut out = String::new();
    if rows.len() > 1 {
        let widths: Vec<usize> = (0..7)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}
