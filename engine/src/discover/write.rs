//! `veil discover --write`: records each finding as a `Discovered.*` tag in
//! the catalog journal (`state/catalog.jsonl`, source `discovered`, so it
//! propagates through lineage and tag-keyed policies see it at once), one
//! audit record per tag added or propagated, and the scanned tables'
//! fingerprints and findings in `state/discovery.json`.
//!
//! A tag a data owner removed from a column (its state is removed or
//! soft-deleted in the journal) is not added again: the owner's decision
//! stands until they add it back by hand.

use std::fmt;

use serde::Serialize;

use super::fingerprint::{DISCOVERY_STATE_FILE, TableState, read_state, state_text};
use super::{DiscoveryReport, TableStatus};
use crate::audit::{AuditLog, AuditRecord, prepare_log_dir};
use crate::error::Result;
use crate::load::synced_users::{keep_in_git, write_atomically};
use crate::model::{ColumnRef, TagSource, TagState, Workspace};
use crate::sql::ident::parse_table_name;

/// The actor discovery's journal events and audit records name.
pub const DISCOVERY_ACTOR: &str = "VEIL_DISCOVERY";

/// What `--write` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Written {
    /// `DB.S.T.COLUMN Discovered.X`, added now.
    pub added: Vec<String>,
    /// Findings already tagged (nothing written).
    pub already_tagged: usize,
    /// `DB.S.T.COLUMN Discovered.X` a data owner removed: not re-added.
    pub kept_removed: Vec<String>,
    /// Tables whose fingerprint was stored.
    pub tables_remembered: usize,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.added {
            writeln!(f, "tagged {a}")?;
        }
        for k in &self.kept_removed {
            writeln!(
                f,
                "kept removed {k} (a data owner removed it; add it back with veil tag add)"
            )?;
        }
        write!(
            f,
            "wrote {} tag(s) to the catalog journal ({} already tagged, {} kept removed); remembered {} table fingerprint(s)",
            self.added.len(),
            self.already_tagged,
            self.kept_removed.len(),
            self.tables_remembered
        )
    }
}

/// Records the findings of `report` (a run over `ws`).
pub fn write(ws: &Workspace, report: &DiscoveryReport) -> Result<Written> {
    let mut findings: Vec<(ColumnRef, String)> = Vec::new();
    for t in report
        .tables
        .iter()
        .filter(|t| t.status == TableStatus::Scanned)
    {
        let Some(table) = ws.tables.iter().find(|x| x.name.to_string() == t.table) else {
            continue;
        };
        for f in &t.findings {
            findings.push((
                ColumnRef::new(table.name.clone(), f.column.clone()),
                f.tag.clone(),
            ));
        }
    }
    let mut written = Written::default();
    if !findings.is_empty() {
        let mut added = Vec::new();
        let mut kept = Vec::new();
        let mut already = 0usize;
        let recorded = crate::load::journal::record(ws, DISCOVERY_ACTOR, |r| {
            for (column, tag) in &findings {
                // The latest catalog: the journal as other processes left it.
                let state = r
                    .workspace()
                    .table(&column.table)
                    .and_then(|t| t.column(&column.column))
                    .and_then(|c| {
                        c.tags
                            .iter()
                            .chain(&c.removed_tags)
                            .find(|x| x.name == *tag)
                    })
                    .map(|x| x.state);
                let label = format!("{}.{} {tag}", column.table, column.column);
                match state {
                    Some(TagState::Active) => already += 1,
                    Some(TagState::Removed | TagState::SoftDeleted) => kept.push(label),
                    None => {
                        r.add_tag(column, tag, TagSource::Discovered)?;
                        added.push(label);
                    }
                }
            }
            Ok(())
        })?;
        written.added = added;
        written.kept_removed = kept;
        written.already_tagged = already;
        for w in &recorded.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(path) = &ws.settings.audit
            && !recorded.events.is_empty()
        {
            prepare_log_dir(path)?;
            let log = AuditLog::open(path)?;
            for event in &recorded.events {
                if let Some(record) = AuditRecord::catalog_change(event, 0) {
                    log.append(&record)?;
                }
            }
        }
    }
    let mut state = read_state(&ws.dir)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for t in report
        .tables
        .iter()
        .filter(|t| t.status == TableStatus::Scanned)
    {
        state.tables.insert(
            t.table.clone(),
            TableState {
                fingerprint: t.fingerprint.clone(),
                scanned_at: now.clone(),
                findings: t.findings.clone(),
            },
        );
        written.tables_remembered += 1;
    }
    // Tables no longer in the workspace are forgotten.
    state.tables.retain(|name, _| {
        parse_table_name(
            name,
            &ws.settings.default_database,
            &ws.settings.default_schema,
        )
        .ok()
        .is_some_and(|n| ws.table(&n).is_some())
    });
    write_atomically(&ws.dir, DISCOVERY_STATE_FILE, &state_text(&state)?)?;
    keep_in_git(&ws.dir, DISCOVERY_STATE_FILE)?;
    Ok(written)
}
