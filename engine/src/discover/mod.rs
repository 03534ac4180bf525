//! Sensitive data discovery (SPEC §7.2, `veil discover`): sample each table
//! through DataFusion ([`sample`]), run the classifiers over its column
//! names and values ([`classifiers`], one file per family), apply the
//! qualification rule ([`qualify`]) and report, per column, the tag
//! `Discovered.<Type>`, the classifier, the matched share and a confidence.
//! Tables whose data fingerprint ([`fingerprint`]) is unchanged since the
//! last `--write` are skipped; [`write`](mod@write) records findings in
//! the catalog journal and the state.
//!
//! Discovery reads the workspace and its data files and never changes
//! anything unless asked to write.

pub mod classifiers;
pub mod fingerprint;
pub mod qualify;
pub mod sample;
pub mod write;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Result, VeilError};
use crate::model::{TableName, Workspace};
use classifiers::Classifier;

/// What to scan.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Rescan tables whose fingerprint is unchanged.
    pub full: bool,
    /// Only tables whose name matches this glob (`ANALYTICS.PUBLIC.*`,
    /// `*CUSTOMER*`; matched against `DB.SCHEMA.TABLE`, case-insensitive).
    pub tables: Option<String>,
}

/// One column a classifier qualified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The column (normalized).
    pub column: String,
    /// `Discovered.<Type>`.
    pub tag: String,
    /// The classifier that won.
    pub classifier: String,
    /// Share of the non-NULL sampled values that matched (0–1).
    pub matched: f64,
    /// Confidence (0–1): the matched share, plus evidence from the name.
    pub confidence: f64,
    /// Non-NULL values sampled.
    pub sampled: usize,
    /// Whether the column's name hinted at the type.
    pub name_evidence: bool,
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// Sampled and classified.
    Scanned,
    /// Fingerprint unchanged since the last `--write`: not read; the
    /// findings shown are the ones written then.
    Unchanged,
    /// Listed in `settings.discovery.exclude`.
    Excluded,
    /// Could not be read (the reason).
    Failed(String),
}

/// The result for one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    /// The table.
    pub table: String,
    /// Scanned, unchanged, excluded or failed.
    pub status: TableStatus,
    /// Rows read (0 unless scanned).
    pub rows_read: u64,
    /// Rows sampled (0 unless scanned).
    pub rows_sampled: usize,
    /// Qualified columns.
    pub findings: Vec<Finding>,
    /// The table's data fingerprint.
    pub fingerprint: String,
}

/// The result of one discovery run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoveryReport {
    /// Per table, in workspace order.
    pub tables: Vec<TableReport>,
    /// Wall time.
    pub elapsed_ms: u64,
}

impl DiscoveryReport {
    /// `scanned 3 tables, skipped 1 unchanged, 0 excluded, 0 failed; tagged
    /// 7 columns in 0.4 s`.
    pub fn summary(&self) -> String {
        let count =
            |f: fn(&TableStatus) -> bool| self.tables.iter().filter(|t| f(&t.status)).count();
        let scanned = count(|s| *s == TableStatus::Scanned);
        let unchanged = count(|s| *s == TableStatus::Unchanged);
        let excluded = count(|s| *s == TableStatus::Excluded);
        let failed = count(|s| matches!(s, TableStatus::Failed(_)));
        let tagged: usize = self
            .tables
            .iter()
            .filter(|t| t.status == TableStatus::Scanned)
            .map(|t| t.findings.len())
            .sum();
        format!(
            "scanned {scanned} table{}, skipped {unchanged} unchanged, {excluded} excluded, {failed} failed; {tagged} column{} tagged in {:.1} s",
            if scanned == 1 { "" } else { "s" },
            if tagged == 1 { "" } else { "s" },
            Duration::from_millis(self.elapsed_ms).as_secs_f64()
        )
    }
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct ScanProgress {
    /// Tables done so far.
    pub tables_done: usize,
    /// Tables to scan in all.
    pub tables_total: usize,
    /// Rows read from the table being scanned.
    pub rows_read: u64,
}

/// The classifiers of `ws`: the built-ins, then the workspace's own.
pub fn classifiers_of(ws: &Workspace) -> Result<Vec<Box<dyn Classifier>>> {
    let mut all = classifiers::builtins();
    for c in &ws.settings.discovery.classifiers {
        all.push(Box::new(classifiers::custom::Custom::new(c)?));
    }
    Ok(all)
}

fn table_matches(name: &TableName, pattern: Option<&glob::Pattern>) -> bool {
    let Some(p) = pattern else {
        return true;
    };
    let options = glob::MatchOptions {
        case_sensitive: false,
        ..Default::default()
    };
    p.matches_with(&name.to_string(), options)
        || p.matches_with(
            &format!("{}.{}.{}", name.database, name.schema, name.table),
            options,
        )
        || p.matches_with(&name.table, options)
}

/// Runs discovery over `ws` (read-only).
pub async fn discover(
    ws: &Workspace,
    options: &DiscoverOptions,
    progress: &(dyn Fn(ScanProgress) + Send + Sync),
) -> Result<DiscoveryReport> {
    let start = Instant::now();
    let classifiers = classifiers_of(ws)?;
    let pattern = options
        .tables
        .as_deref()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| {
                VeilError::Session(format!("--tables '{p}' is not a valid pattern: {e}"))
            })
        })
        .transpose()?;
    let state = fingerprint::read_state(&ws.dir)?;
    let settings = &ws.settings.discovery;
    let chosen: Vec<_> = ws
        .tables
        .iter()
        .filter(|t| table_matches(&t.name, pattern.as_ref()))
        .collect();
    if chosen.is_empty() && pattern.is_some() {
        return Err(VeilError::Session(format!(
            "--tables '{}' matches no table of the workspace",
            options.tables.as_deref().unwrap_or_default()
        )));
    }
    let total = chosen.len();
    let mut reports = Vec::with_capacity(total);
    for (done, table) in chosen.into_iter().enumerate() {
        let name = table.name.to_string();
        let fp = fingerprint::fingerprint(ws, table);
        let mut report = TableReport {
            table: name.clone(),
            status: TableStatus::Scanned,
            rows_read: 0,
            rows_sampled: 0,
            findings: Vec::new(),
            fingerprint: fp.clone(),
        };
        if settings.excludes(&table.name) {
            report.status = TableStatus::Excluded;
            reports.push(report);
            continue;
        }
        if !options.full
            && let Some(prev) = state.tables.get(&name)
            && prev.fingerprint == fp
        {
            report.status = TableStatus::Unchanged;
            report.findings = prev.findings.clone();
            reports.push(report);
            continue;
        }
        let on_rows = |rows: u64| {
            progress(ScanProgress {
                tables_done: done,
                tables_total: total,
                rows_read: rows,
            })
        };
        match sample::sample_table(ws, table, settings.sample, &on_rows).await {
            Ok(sample) => {
                report.rows_read = sample.rows_read;
                report.rows_sampled = sample.rows_sampled;
                for (column, values) in table.columns.iter().zip(&sample.columns) {
                    if let Some(q) = qualify::qualify(&column.name, values, &classifiers) {
                        let c = &classifiers[q.classifier];
                        report.findings.push(Finding {
                            column: column.name.clone(),
                            tag: c.tag(),
                            classifier: c.name().to_string(),
                            matched: q.matched,
                            confidence: q.confidence,
                            sampled: q.values,
                            name_evidence: q.named,
                        });
                    }
                }
            }
            Err(e) => report.status = TableStatus::Failed(e.to_string()),
        }
        reports.push(report);
    }
    progress(ScanProgress {
        tables_done: total,
        tables_total: total,
        rows_read: 0,
    });
    Ok(DiscoveryReport {
        tables: reports,
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}
