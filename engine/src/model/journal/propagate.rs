//! Lineage tag propagation (SPEC §7.1, as Immuta's Snowflake lineage tag
//! propagation): the [`Recorder`] turns a tag change or new lineage into
//! the journal events it implies, following the eight rules:
//!
//! 1. a tag added to a column propagates to every descendant column,
//!    transitively, with source `lineage` and its origin column;
//! 2. not retroactive: new lineage does not carry tags already on its
//!    source columns, unless the ingestion asks for it (`--retroactive`);
//! 3. removing a propagated tag from a descendant soft-deletes it there, and
//!    a later propagation of that tag skips that column (the walk goes on
//!    past it: the data below still derives from a tagged column, so Veil
//!    errs on the side of protecting it);
//! 4. removing a tag from an ancestor removes it from the descendants no
//!    other ancestor still supplies (a column carrying the tag from any
//!    source but `lineage`, upstream of the descendant);
//! 5. a Snowflake object tag cannot be removed through Veil;
//! 6. `settings.lineage.tags` limits which tags propagate (prefix match on
//!    the hierarchy; all by default);
//! 7. views have no lineage (ingestion drops their rows), and a dropped
//!    table keeps its edges;
//! 8. every propagation is its own event, which the caller audits (naming
//!    the tag, the origin and the target); the changed workspace is what the
//!    next statement runs on.

use std::collections::HashMap;

use super::{CatalogChange, CatalogEvent, ColumnIndex, CreatedTable, fold_one};
use crate::error::{Result, VeilError};
use crate::model::{ColumnRef, TagSource, TagState, Workspace, tag_is_under};

/// Records catalog changes on a working copy of a workspace: each method
/// checks the change, works out what it implies through lineage, and folds
/// every resulting event into the copy at once, so the next change sees it.
/// [`Recorder::finish`] returns the events to append to the journal.
#[derive(Debug)]
pub struct Recorder<'a> {
    ws: &'a mut Workspace,
    index: ColumnIndex,
    actor: String,
    /// The time of the change: every event of one change has it.
    time: String,
    events: Vec<CatalogEvent>,
}

/// Where the recorder's errors point.
const LOCATION: &str = "catalog journal";

impl<'a> Recorder<'a> {
    /// A recorder of changes by `actor` on `ws` (a copy the caller keeps only
    /// if the events are appended).
    pub fn new(ws: &'a mut Workspace, actor: &str) -> Self {
        let index = ColumnIndex::new(&ws.tables);
        Self {
            ws,
            index,
            actor: actor.to_string(),
            time: super::now(),
            events: Vec::new(),
        }
    }

    /// The workspace as changed so far.
    pub fn workspace(&self) -> &Workspace {
        self.ws
    }

    /// The events recorded so far.
    pub fn events(&self) -> &[CatalogEvent] {
        &self.events
    }

    /// The events to append, in order.
    pub fn finish(self) -> Vec<CatalogEvent> {
        self.events
    }

    /// Who records the changes.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub(super) fn push(&mut self, change: CatalogChange) {
        let event = CatalogEvent {
            time: self.time.clone(),
            actor: self.actor.clone(),
            change,
        };
        fold_one(self.ws, &mut self.index, &event);
        self.events.push(event);
    }

    fn locate(&self, column: &ColumnRef) -> Result<(usize, usize)> {
        self.index.get(column).ok_or_else(|| {
            let message = match self.ws.table(&column.table) {
                Some(_) => format!("table {} has no column {}", column.table, column.column),
                None => format!("table {} is not declared", column.table),
            };
            VeilError::workspace(LOCATION, message)
        })
    }

    fn active_tag(&self, column: &ColumnRef, tag: &str) -> Option<&crate::model::ColumnTag> {
        let (t, c) = self.index.get(column)?;
        self.ws.tables[t].columns[c]
            .tags
            .iter()
            .find(|x| x.name == tag)
    }

    /// Declares `table`, which an administrator's statement through Veil
    /// created; a table of that name already declared is an error.
    pub fn create_table(&mut self, table: CreatedTable) -> Result<()> {
        if let Some(t) = self.ws.table(&table.name) {
            return Err(VeilError::workspace(
                LOCATION,
                format!(
                    "table {} already exists (declared at {})",
                    table.name, t.origin
                ),
            ));
        }
        self.push(CatalogChange::TableCreated(Box::new(table)));
        Ok(())
    }

    /// Whether `tag` propagates under `settings.lineage.tags` (rule 6).
    pub fn propagates(&self, tag: &str) -> bool {
        let filter = &self.ws.settings.lineage_tags;
        filter.is_empty() || filter.iter().any(|f| tag_is_under(tag, f))
    }

    /// Puts `tag` on `column` (source `manual`, `discovered` or, for an
    /// import, `snowflake`) and propagates it to every descendant column
    /// (rules 1, 3, 6). Adding a tag the column already carries records
    /// nothing, unless it replaces a propagated copy.
    pub fn add_tag(&mut self, column: &ColumnRef, tag: &str, source: TagSource) -> Result<()> {
        check_tag_name(tag)?;
        self.locate(column)?;
        if source == TagSource::Lineage {
            return Err(VeilError::workspace(
                LOCATION,
                format!(
                    "tag {tag} on {column}: source lineage is set by propagation only; add the tag to the ancestor column"
                ),
            ));
        }
        let present = self.active_tag(column, tag).map(|t| t.source);
        match present {
            Some(TagSource::Lineage) | None => self.push(CatalogChange::TagAdded {
                column: column.clone(),
                tag: tag.to_string(),
                source,
                origin: None,
            }),
            Some(_) => {}
        }
        self.propagate(column, tag, column.clone(), false);
        Ok(())
    }

    /// Propagates `tag` from `from` to every descendant (and to `from`
    /// itself when `inclusive`), recording `origin` as where it came from.
    fn propagate(&mut self, from: &ColumnRef, tag: &str, origin: ColumnRef, inclusive: bool) {
        if !self.propagates(tag) {
            return;
        }
        let mut targets: Vec<ColumnRef> = Vec::new();
        if inclusive {
            targets.push(from.clone());
        }
        targets.extend(self.ws.journal.graph.descendants(from).into_iter().cloned());
        for target in targets {
            if target == origin {
                continue;
            }
            // One lookup: skip columns not declared, already carrying the
            // tag, or where it was soft-deleted (rule 3).
            let Some((t, c)) = self.index.get(&target) else {
                continue;
            };
            let column = &self.ws.tables[t].columns[c];
            if column.tags.iter().any(|x| x.name == tag)
                || column
                    .removed_tags
                    .iter()
                    .any(|x| x.name == tag && x.state == TagState::SoftDeleted)
            {
                continue;
            }
            self.push(CatalogChange::TagAdded {
                column: target,
                tag: tag.to_string(),
                source: TagSource::Lineage,
                origin: Some(origin.clone()),
            });
        }
    }

    /// Removes `tag` from `column` by hand: a propagated tag is soft-deleted
    /// there (rule 3), any other removed, a Snowflake object tag refused
    /// (rule 5); then every descendant no other ancestor supplies loses it
    /// (rule 4).
    pub fn remove_tag(&mut self, column: &ColumnRef, tag: &str) -> Result<()> {
        let (t, _) = self.locate(column)?;
        let Some(present) = self.active_tag(column, tag) else {
            return Err(VeilError::workspace(
                LOCATION,
                format!("column {column} has no active tag {tag}"),
            ));
        };
        if present.source == TagSource::Snowflake {
            return Err(VeilError::workspace(
                self.ws.tables[t].origin.to_string(),
                format!(
                    "tag {tag} on {column} is a Snowflake object tag set in DDL; remove it in the DDL script (ALTER TABLE ... MODIFY COLUMN ... UNSET TAG), not through Veil"
                ),
            ));
        }
        self.push(CatalogChange::TagRemoved {
            column: column.clone(),
            tag: tag.to_string(),
            origin: None,
        });
        self.withdraw(column, tag);
        Ok(())
    }

    /// After `tag` left `column`: every descendant holding a propagated copy
    /// keeps it only if an ancestor still carries the tag from a source other
    /// than lineage (then that ancestor becomes its origin), else loses it.
    fn withdraw(&mut self, column: &ColumnRef, tag: &str) {
        let graph = &self.ws.journal.graph;
        let affected: Vec<ColumnRef> = graph.descendants(column).into_iter().cloned().collect();
        if affected.is_empty() {
            return;
        }
        // Every column upstream of an affected one; the roots among them
        // (and among the affected) are the columns that still supply the tag.
        let mut starts = affected.clone();
        starts.push(column.clone());
        let upstream: Vec<ColumnRef> = graph
            .ancestors_of_all(&starts)
            .into_iter()
            .cloned()
            .collect();
        let roots: Vec<ColumnRef> = upstream
            .into_iter()
            .filter(|c| {
                self.active_tag(c, tag)
                    .is_some_and(|t| t.source != TagSource::Lineage)
            })
            .collect();
        let supplied: HashMap<ColumnRef, ColumnRef> = self.ws.journal.graph.reach_from(&roots);
        for d in affected {
            let Some(current) = self.active_tag(&d, tag) else {
                continue;
            };
            if current.source != TagSource::Lineage {
                continue;
            }
            let current_origin = current.origin.clone();
            match supplied.get(&d) {
                None => self.push(CatalogChange::TagRemoved {
                    column: d,
                    tag: tag.to_string(),
                    origin: Some(column.clone()),
                }),
                Some(root) => {
                    let still = current_origin.as_ref().is_some_and(|o| roots.contains(o));
                    if !still {
                        self.push(CatalogChange::TagAdded {
                            column: d,
                            tag: tag.to_string(),
                            source: TagSource::Lineage,
                            origin: Some(root.clone()),
                        });
                    }
                }
            }
        }
    }

    /// Records that `column` is computed from `sources` (one statement's
    /// column lineage). Edges already known are skipped; nothing is recorded
    /// if all are. Tags already on the sources do not cross the new edges
    /// (rule 2) unless `retroactive`; tags added later do.
    pub fn add_lineage(
        &mut self,
        column: &ColumnRef,
        sources: &[ColumnRef],
        query_id: Option<&str>,
        retroactive: bool,
    ) {
        let graph = &self.ws.journal.graph;
        let mut fresh: Vec<ColumnRef> = Vec::new();
        for s in sources {
            if s != column && !graph.has_edge(s, column) && !fresh.contains(s) {
                fresh.push(s.clone());
            }
        }
        if fresh.is_empty() {
            return;
        }
        self.push(CatalogChange::Lineage {
            column: column.clone(),
            sources: fresh.clone(),
            query_id: query_id.map(str::to_string),
        });
        if !retroactive {
            return;
        }
        for s in &fresh {
            let Some((t, c)) = self.index.get(s) else {
                continue;
            };
            let carried: Vec<(String, ColumnRef)> = self.ws.tables[t].columns[c]
                .tags
                .iter()
                .map(|tag| {
                    let origin = match (&tag.source, &tag.origin) {
                        (TagSource::Lineage, Some(o)) => o.clone(),
                        _ => s.clone(),
                    };
                    (tag.name.clone(), origin)
                })
                .collect();
            for (tag, origin) in carried {
                self.propagate(column, &tag, origin, true);
            }
        }
    }
}

/// A tag name: dot-separated segments, none empty.
pub fn check_tag_name(tag: &str) -> Result<()> {
    if tag.trim().is_empty() || tag.split('.').any(|s| s.trim().is_empty()) {
        return Err(VeilError::workspace(
            LOCATION,
            format!("'{tag}' is not a tag name (segments separated by '.', none empty)"),
        ));
    }
    Ok(())
}
