//! The catalog: tables and their columns, column tags and the tag
//! hierarchy, fully qualified table names and how they print.

use std::fmt;
use std::path::PathBuf;

use super::{ColumnPolicy, Origin, SnowflakeType, TableRowAccess};

/// A fully qualified table name `DB.SCHEMA.TABLE`, each part already
/// normalized by Snowflake identifier rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
}

/// Writes an identifier part, quoting it when Snowflake would need quotes.
pub fn fmt_ident(f: &mut impl fmt::Write, part: &str) -> fmt::Result {
    let plain = !part.is_empty()
        && part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && part
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        f.write_str(part)
    } else {
        write!(f, "\"{}\"", part.replace('"', "\"\""))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ident(f, &self.database)?;
        f.write_str(".")?;
        fmt_ident(f, &self.schema)?;
        f.write_str(".")?;
        fmt_ident(f, &self.table)
    }
}

/// File formats Veil reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// CSV with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON.
    NdJson,
    /// Arrow IPC file.
    Arrow,
}

/// Where a tag on a column came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagSource {
    /// Declared in the workspace.
    Manual,
    /// A Snowflake object tag.
    Snowflake,
    /// Sensitive data discovery.
    Discovered,
    /// Propagated through lineage.
    Lineage,
}

impl TagSource {
    /// The name `veil tags` and the catalog journal use: `manual`,
    /// `snowflake`, `discovered`, `lineage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Snowflake => "snowflake",
            Self::Discovered => "discovered",
            Self::Lineage => "lineage",
        }
    }

    /// The source called `name` (as [`TagSource::as_str`] prints it).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "manual" => Some(Self::Manual),
            "snowflake" => Some(Self::Snowflake),
            "discovered" => Some(Self::Discovered),
            "lineage" => Some(Self::Lineage),
            _ => None,
        }
    }
}

impl fmt::Display for TagSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a tag on a column is in force. Only active tags are in
/// [`Column::tags`] (what policies match); the others are kept in
/// [`Column::removed_tags`] so `veil tags` can show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagState {
    /// In force: tag-keyed policies match it.
    Active,
    /// A propagated tag removed by hand from this column: shown as removed,
    /// and a later propagation of the same tag does not re-add it (SPEC §7.1
    /// rule 3).
    SoftDeleted,
    /// Removed: by hand (a manual or discovered tag), or because no
    /// ancestor carries a propagated tag any more (rule 4).
    Removed,
}

impl TagState {
    /// `active`, `soft-deleted` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::SoftDeleted => "soft-deleted",
            Self::Removed => "removed",
        }
    }
}

impl fmt::Display for TagState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column of one table: `DB.SCHEMA.TABLE.COLUMN`, every part normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColumnRef {
    /// The table.
    pub table: TableName,
    /// The column (normalized).
    pub column: String,
}

impl ColumnRef {
    /// `table.column`.
    pub fn new(table: TableName, column: impl Into<String>) -> Self {
        Self {
            table,
            column: column.into(),
        }
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.", self.table)?;
        fmt_ident(f, &self.column)
    }
}

/// A tag on a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnTag {
    /// Hierarchical name, segments separated by `.`.
    pub name: String,
    /// Where it came from.
    pub source: TagSource,
    /// The tag's value (`SET TAG t = 'v'`), for Snowflake object tags.
    pub value: Option<String>,
    /// For a propagated tag (source `lineage`): the column it was first
    /// put on, which it reached this column from.
    pub origin: Option<ColumnRef>,
    /// Active, soft-deleted or removed.
    pub state: TagState,
    /// When the catalog journal last changed it (RFC 3339); `None` for tags
    /// declared in YAML or DDL.
    pub since: Option<String>,
}

impl ColumnTag {
    /// An active tag from `source` with no origin or journal time (as YAML
    /// and DDL declare them).
    pub fn new(name: impl Into<String>, source: TagSource) -> Self {
        Self {
            name: name.into(),
            source,
            value: None,
            origin: None,
            state: TagState::Active,
            since: None,
        }
    }
}

/// Whether tag `tag` is `ancestor` or one of its descendants
/// (`PII.Email` is under `PII`). Tag names compare case-sensitively per segment.
pub fn tag_is_under(tag: &str, ancestor: &str) -> bool {
    tag == ancestor
        || (tag.len() > ancestor.len()
            && tag.starts_with(ancestor)
            && tag.as_bytes()[ancestor.len()] == b'.')
}

/// Depth of a tag: `PII` is 1, `PII.Email` is 2.
pub fn tag_depth(tag: &str) -> usize {
    tag.split('.').count()
}

/// A declared column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Normalized name.
    pub name: String,
    /// Declared Snowflake type.
    pub declared: SnowflakeType,
    /// Active tags (what tag-keyed policies match).
    pub tags: Vec<ColumnTag>,
    /// Tags the catalog journal removed or soft-deleted, at most one per
    /// name, kept so `veil tags`, `explain` and `lint` can tell (never
    /// matched by policies).
    pub removed_tags: Vec<ColumnTag>,
    /// A Snowflake masking policy attached directly (DDL).
    pub masking_policy: Option<ColumnPolicy>,
}

/// A data source.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Fully qualified name.
    pub name: TableName,
    /// Data file or directory.
    pub location: PathBuf,
    /// File format.
    pub format: FileFormat,
    /// Event-time column for time-window rules.
    pub event_time: Option<String>,
    /// Data owners (always subscribed).
    pub owners: Vec<String>,
    /// Declared columns.
    pub columns: Vec<Column>,
    /// A Snowflake row access policy (DDL).
    pub row_access_policy: Option<TableRowAccess>,
    /// Rows of a table created by a DDL script (`CREATE TABLE` + `INSERT
    /// ... VALUES`, e.g. a mapping or entitlements table), as literal text
    /// per declared column; `None` for tables read from `location`.
    pub rows: Option<Vec<Vec<Option<String>>>>,
    /// Where it was declared.
    pub origin: Origin,
}

impl Table {
    /// The column named `name` (already normalized).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_hierarchy() {
        assert!(tag_is_under("PII.Email", "PII"));
        assert!(tag_is_under("PII", "PII"));
        assert!(!tag_is_under("PIIX", "PII"));
        assert!(!tag_is_under("PII", "PII.Email"));
        assert_eq!(tag_depth("Discovered.Electronic Mail Address"), 2);
    }

    #[test]
    fn table_names_quote_when_needed() {
        let t = TableName {
            database: "DB".into(),
            schema: "my schema".into(),
            table: "T1".into(),
        };
        assert_eq!(t.to_string(), "DB.\"my schema\".T1");
    }
}
