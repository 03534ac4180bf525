//! The catalog journal as data (SPEC §7.1): the events Veil appends to a
//! workspace's `state/catalog.jsonl`, and the fold that turns them into the
//! current tags, on top of the tags YAML and DDL declare. Pure logic, no
//! I/O: reading and appending the file is [`crate::load::journal`]'s job,
//! and an engine's [`crate::Engine::record_catalog`] installs the result as
//! a new policy version.
//!
//! How another module records tags (discovery's `--write`, an import):
//!
//! ```no_run
//! # async fn example(engine: &veil_engine::Engine) -> veil_engine::Result<()> {
//! use veil_engine::model::{ColumnRef, TableName, TagSource};
//! let email = ColumnRef::new(
//!     TableName { database: "CRM".into(), schema: "CORE".into(), table: "CUSTOMER".into() },
//!     "EMAIL",
//! );
//! // Through an engine: appended to the journal, propagated through lineage,
//! // audited, and in force from the next statement.
//! let recorded = engine
//!     .record_catalog("DISCOVERY", |r| r.add_tag(&email, "Discovered.Email", TagSource::Discovered))
//!     .await?;
//! println!("{} event(s), {} propagation(s)", recorded.events.len(), recorded.propagations().count());
//! # Ok(()) }
//! ```
//!
//! Without an engine (a command that only edits the workspace), the same
//! [`Recorder`] runs through
//! `veil_engine::load::journal::record(&workspace, "ACTOR", |r| ...)`, which
//! returns the changed workspace and the events it appended.
//!
//! Every change goes through a [`Recorder`]: it checks the change against
//! the current catalog (a Snowflake object tag cannot be removed, the column
//! must exist), works out the propagation through the lineage graph
//! ([`propagate`]), and folds each event into its copy of the workspace as
//! it goes, so the events it returns are exactly what the fold of the
//! journal will see on the next load.

pub mod access;
pub mod lineage;
pub mod propagate;

pub use access::{AccessRequest, AccessRequests, AccessState};
pub use lineage::LineageGraph;
pub use propagate::Recorder;

use super::{
    Column, ColumnRef, ColumnTag, FileFormat, Origin, SnowflakeType, Table, TableName, TagSource,
    TagState, Workspace,
};

/// The journal's path relative to the workspace.
pub const JOURNAL_FILE: &str = "state/catalog.jsonl";

/// One line of the catalog journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEvent {
    /// When, RFC 3339 in UTC.
    pub time: String,
    /// Who made the change (a user, `ADMIN`, `DISCOVERY`, `IMPORT`, ...).
    pub actor: String,
    /// What changed.
    pub change: CatalogChange,
}

/// What one journal event changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogChange {
    /// `tag_added` (`origin: None`) or `tag_propagated` (`origin: Some`,
    /// source `lineage`): `tag` is now on `column`.
    TagAdded {
        /// The column.
        column: ColumnRef,
        /// The tag.
        tag: String,
        /// Where it came from.
        source: TagSource,
        /// For a propagated tag, the column it was put on first.
        origin: Option<ColumnRef>,
    },
    /// `tag_removed` (by hand, `origin: None`: a propagated tag is
    /// soft-deleted, any other removed) or `propagation_removed`
    /// (`origin: Some`: the ancestor it came from lost it and no other
    /// ancestor carries it).
    TagRemoved {
        /// The column.
        column: ColumnRef,
        /// The tag.
        tag: String,
        /// For a removal through lineage, the ancestor that lost the tag.
        origin: Option<ColumnRef>,
    },
    /// `lineage`: `column` is computed from `sources` (column lineage of one
    /// statement, from Snowflake's `ACCESS_HISTORY` or captured by Veil).
    Lineage {
        /// The column written.
        column: ColumnRef,
        /// The columns it was computed from.
        sources: Vec<ColumnRef>,
        /// The statement (Snowflake query id, or Veil's capture id).
        query_id: Option<String>,
    },
    /// `table_created`: an administrator's `CREATE TABLE ... AS SELECT`
    /// through Veil made a table (Parquet files under the workspace); it is
    /// declared from here on, like a table of `veil.yaml`.
    TableCreated(Box<CreatedTable>),
    /// `access_requested`: `user` asks for `table` under an `allow:
    /// approval` subscription (the event's actor filed it).
    AccessRequested {
        /// The request id (`R1`, `R2`, ...).
        request: String,
        /// The user asking.
        user: String,
        /// The table.
        table: TableName,
        /// Why.
        reason: String,
    },
    /// `access_approved` or `access_denied`: a data owner of `table` (the
    /// event's actor) decided request `request`.
    AccessDecided {
        /// The request id.
        request: String,
        /// The user who asked.
        user: String,
        /// The table.
        table: TableName,
        /// Approved (subscribed from the next statement) or denied.
        approved: bool,
    },
}

/// A table Veil created for an administrator (see
/// [`CatalogChange::TableCreated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTable {
    /// Its name.
    pub name: TableName,
    /// Its directory of Parquet files, relative to the workspace.
    pub location: String,
    /// Its columns and their declared types, in order.
    pub columns: Vec<(String, SnowflakeType)>,
    /// The statement that created it (Veil's capture id).
    pub query_id: Option<String>,
}

impl CreatedTable {
    /// The declared table it is in a workspace at `dir`.
    pub fn to_table(&self, dir: &std::path::Path) -> Table {
        Table {
            name: self.name.clone(),
            location: dir.join(&self.location),
            format: FileFormat::Parquet,
            event_time: None,
            owners: Vec::new(),
            columns: self
                .columns
                .iter()
                .map(|(name, declared)| Column {
                    name: name.clone(),
                    declared: *declared,
                    tags: Vec::new(),
                    removed_tags: Vec::new(),
                    masking_policy: None,
                })
                .collect(),
            row_access_policy: None,
            rows: None,
            origin: Origin {
                file: JOURNAL_FILE.to_string(),
                line: 0,
            },
        }
    }
}

impl CatalogChange {
    /// The journal's `kind` of this change.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TagAdded { origin: None, .. } => "tag_added",
            Self::TagAdded {
                origin: Some(_), ..
            } => "tag_propagated",
            Self::TagRemoved { origin: None, .. } => "tag_removed",
            Self::TagRemoved {
                origin: Some(_), ..
            } => "propagation_removed",
            Self::Lineage { .. } => "lineage",
            Self::TableCreated(_) => "table_created",
            Self::AccessRequested { .. } => "access_requested",
            Self::AccessDecided { approved: true, .. } => "access_approved",
            Self::AccessDecided {
                approved: false, ..
            } => "access_denied",
        }
    }

    /// The column the change is about (`None` for a table created and for
    /// access events, which are about a table).
    pub fn column(&self) -> Option<&ColumnRef> {
        match self {
            Self::TagAdded { column, .. }
            | Self::TagRemoved { column, .. }
            | Self::Lineage { column, .. } => Some(column),
            Self::TableCreated(_) | Self::AccessRequested { .. } | Self::AccessDecided { .. } => {
                None
            }
        }
    }
}

impl CatalogEvent {
    /// An event made now by `actor`.
    pub fn new(actor: &str, change: CatalogChange) -> Self {
        Self {
            time: now(),
            actor: actor.to_string(),
            change,
        }
    }

    /// Whether this event is a propagation (`tag_propagated` or
    /// `propagation_removed`): each one gets its own audit record.
    pub fn is_propagation(&self) -> bool {
        matches!(
            self.change,
            CatalogChange::TagAdded {
                origin: Some(_),
                ..
            } | CatalogChange::TagRemoved {
                origin: Some(_),
                ..
            }
        )
    }
}

/// The time now, RFC 3339 in UTC with seconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What a workspace holds from its catalog journal besides the tags (which
/// are folded into the columns): the lineage graph, and how much of the
/// journal file was folded (so an appender can fold what other processes
/// appended since).
#[derive(Debug, Clone, Default)]
pub struct CatalogJournal {
    /// Column lineage.
    pub graph: LineageGraph,
    /// Events folded.
    pub events: usize,
    /// Bytes of `state/catalog.jsonl` folded (complete events only).
    pub bytes: u64,
    /// Tag events on columns the workspace does not declare (a table
    /// dropped from `veil.yaml`, say): kept in the journal, applied to
    /// nothing, reported by `veil lint`.
    pub unapplied: Vec<ColumnRef>,
    /// Access requests for `allow: approval` subscriptions and their
    /// decisions.
    pub access: AccessRequests,
}

/// Where each column of a workspace is: `(table index, column index)`.
#[derive(Debug, Default, Clone)]
pub struct ColumnIndex(datafusion::common::HashMap<ColumnRef, (usize, usize)>);

impl ColumnIndex {
    /// Indexes every column of `tables`.
    pub fn new(tables: &[Table]) -> Self {
        let mut map = datafusion::common::HashMap::with_capacity(
            tables.iter().map(|t| t.columns.len()).sum(),
        );
        for (ti, t) in tables.iter().enumerate() {
            for (ci, c) in t.columns.iter().enumerate() {
                map.insert(ColumnRef::new(t.name.clone(), c.name.clone()), (ti, ci));
            }
        }
        Self(map)
    }

    /// Where `column` is, if declared.
    pub fn get(&self, column: &ColumnRef) -> Option<(usize, usize)> {
        self.0.get(column).copied()
    }

    /// Indexes the columns of `table`, the table at index `ti`.
    pub fn add_table(&mut self, ti: usize, table: &Table) {
        for (ci, c) in table.columns.iter().enumerate() {
            self.0
                .insert(ColumnRef::new(table.name.clone(), c.name.clone()), (ti, ci));
        }
    }
}

/// Folds `events` into `ws`, in order: tags onto the columns (over the YAML
/// and DDL tags already there), lineage into the graph. Never fails: an
/// event on a column the workspace does not declare is kept aside
/// ([`CatalogJournal::unapplied`]).
pub fn fold(ws: &mut Workspace, events: &[CatalogEvent]) {
    let mut index = ColumnIndex::new(&ws.tables);
    for e in events {
        fold_one(ws, &mut index, e);
    }
}

/// Folds one event (see [`fold`]) using a prepared column index (which a
/// table created is added to).
pub fn fold_one(ws: &mut Workspace, index: &mut ColumnIndex, event: &CatalogEvent) {
    ws.journal.events += 1;
    let change = &event.change;
    let column = match change {
        CatalogChange::Lineage {
            column, sources, ..
        } => {
            for s in sources {
                ws.journal.graph.add_edge(s, column);
            }
            return;
        }
        CatalogChange::TableCreated(created) => {
            if let Some(declared) = ws.table(&created.name) {
                // Declared since (in veil.yaml or a DDL script): that
                // declaration is the table.
                ws.warnings.push(format!(
                    "{}: table {} created through Veil on {} is also declared at {}; the declaration is used",
                    JOURNAL_FILE,
                    created.name,
                    event.time,
                    declared.origin
                ));
                return;
            }
            let table = created.to_table(&ws.dir);
            index.add_table(ws.tables.len(), &table);
            ws.tables.push(table);
            return;
        }
        CatalogChange::AccessRequested { .. } | CatalogChange::AccessDecided { .. } => {
            ws.journal.access.fold(change, &event.actor, &event.time);
            return;
        }
        CatalogChange::TagAdded { column, .. } | CatalogChange::TagRemoved { column, .. } => column,
    };
    let Some((ti, ci)) = index.get(column) else {
        ws.journal.unapplied.push(column.clone());
        return;
    };
    let col = &mut ws.tables[ti].columns[ci];
    match change {
        CatalogChange::TagAdded {
            tag,
            source,
            origin,
            ..
        } => {
            if let Some(existing) = col.tags.iter_mut().find(|t| t.name == *tag) {
                // A tag put on by hand (or discovery) replaces a propagated
                // one; anything else already there stays as it is.
                if existing.source == TagSource::Lineage && *source != TagSource::Lineage {
                    *existing = journal_tag(tag, *source, None, &event.time);
                } else if existing.source == TagSource::Lineage && origin.is_some() {
                    existing.origin.clone_from(origin);
                    existing.since = Some(event.time.clone());
                }
                return;
            }
            col.removed_tags.retain(|t| t.name != *tag);
            col.tags
                .push(journal_tag(tag, *source, origin.clone(), &event.time));
        }
        CatalogChange::TagRemoved { tag, origin, .. } => {
            let Some(pos) = col.tags.iter().position(|t| t.name == *tag) else {
                return;
            };
            // Snowflake object tags change only in DDL (the recorder refuses
            // to remove one; a hand-edited journal cannot either).
            if col.tags[pos].source == TagSource::Snowflake {
                return;
            }
            let mut removed = col.tags.remove(pos);
            removed.state = if origin.is_none() && removed.source == TagSource::Lineage {
                TagState::SoftDeleted
            } else {
                TagState::Removed
            };
            removed.since = Some(event.time.clone());
            col.removed_tags.retain(|t| t.name != *tag);
            col.removed_tags.push(removed);
        }
        CatalogChange::Lineage { .. }
        | CatalogChange::TableCreated(_)
        | CatalogChange::AccessRequested { .. }
        | CatalogChange::AccessDecided { .. } => {}
    }
}

fn journal_tag(tag: &str, source: TagSource, origin: Option<ColumnRef>, time: &str) -> ColumnTag {
    ColumnTag {
        origin,
        since: Some(time.to_string()),
        ..ColumnTag::new(tag, source)
    }
}
