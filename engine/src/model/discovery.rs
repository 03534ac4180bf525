//! Discovery settings of a workspace (SPEC §7.2), as plain data: how many
//! rows `veil discover` samples per table, which schemas and tables it never
//! scans, and the workspace's own classifiers (`discovery.classifiers:`).
//! Loading checks them (regexes compile, dictionary files exist); the
//! `discover` module runs them.

use std::path::PathBuf;

use super::{Origin, TableName};

/// Rows sampled per table when `settings.discovery.sample` is not set.
pub const DEFAULT_DISCOVERY_SAMPLE: usize = 10_000;

/// `settings.discovery` plus every `discovery.classifiers:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverySettings {
    /// At most this many rows are sampled per table (deterministically).
    pub sample: usize,
    /// Schemas and tables never scanned.
    pub exclude: Vec<DiscoveryExclude>,
    /// The workspace's own classifiers, in declaration order.
    pub classifiers: Vec<CustomClassifier>,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            sample: DEFAULT_DISCOVERY_SAMPLE,
            exclude: Vec::new(),
            classifiers: Vec::new(),
        }
    }
}

impl DiscoverySettings {
    /// Whether `table` is excluded from discovery.
    pub fn excludes(&self, table: &TableName) -> bool {
        self.exclude.iter().any(|e| match e {
            DiscoveryExclude::Schema { database, schema } => {
                table.database == *database && table.schema == *schema
            }
            DiscoveryExclude::Table(t) => t == table,
        })
    }
}

/// One entry of `settings.discovery.exclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryExclude {
    /// `DB.SCHEMA`: every table of the schema.
    Schema {
        /// Database.
        database: String,
        /// Schema.
        schema: String,
    },
    /// `DB.SCHEMA.TABLE` (or a name resolved against the defaults).
    Table(TableName),
}

/// A classifier declared in the workspace. A column qualifies when at least
/// 90 % of its sampled non-NULL values match `values` or are words of
/// `dictionary`; `columns` adds evidence (confidence) but never qualifies a
/// column alone.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomClassifier {
    /// The classifier's name; its tag is `Discovered.<name>`.
    pub name: String,
    /// A regular expression (RE2 syntax) every matching value matches as a
    /// whole.
    pub values: Option<String>,
    /// A regular expression over column names (case-insensitive).
    pub columns: Option<String>,
    /// The dictionary file (relative to the workspace) and its words,
    /// lower-cased, one per line of the file.
    pub dictionary: Option<(PathBuf, Vec<String>)>,
    /// Where it was declared.
    pub origin: Origin,
}

impl CustomClassifier {
    /// The tag this classifier gives a column it qualifies.
    pub fn tag(&self) -> String {
        format!("Discovered.{}", self.name)
    }
}
