//! Plain data types of a Veil workspace: tables, columns and tags, roles,
//! users and their entitlements, and Immuta-style policies. No I/O here.
//! This file holds the loaded `Workspace`, its settings and `Origin`; the
//! catalog, principals, policies, Snowflake objects, one session's
//! entitlements (with `meets` and `Applicability::applies_to`) and the
//! options a session is opened with live in their own files and are
//! re-exported here, so `crate::model::X` names every type. The lowest
//! layer above `error`: it imports no other module of the engine.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

pub mod catalog;
pub mod discovery;
pub mod entitlements;
pub mod journal;
pub mod policies;
pub mod principals;
pub mod session_options;
pub mod snowflake;

pub use catalog::*;
pub use discovery::*;
pub use entitlements::*;
pub use journal::{
    AccessRequest, AccessRequests, AccessState, CatalogChange, CatalogEvent, CatalogJournal,
    CreatedTable, LineageGraph, Recorder,
};
pub use policies::*;
pub use principals::*;
pub use session_options::*;
pub use snowflake::*;
pub use veil_udfs::SnowflakeType;

/// Where something was declared: `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// File path relative to the workspace.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            f.write_str(&self.file)
        }
    }
}

/// How `salt` for hashing is scoped (SPEC rule 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltScope {
    /// Secret + `/` + the table name: equal values hash equally within a table.
    DataSource,
    /// Secret alone: hashed columns join across tables.
    Global,
}

/// How compiled policies read entitlements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnforcementMode {
    /// User-independent policy SQL that joins the current user's
    /// `user_profile` row (Immuta's secure-view pattern).
    ProfileJoin,
    /// The user's entitlements substituted as literals, so DataFusion can
    /// fold and prune.
    Inlined,
}

/// Every `veil lint` rule, by the code its findings carry.
pub const LINT_RULES: &[&str] = &[
    "column-tagged-matches-nothing",
    "row-rule-column-missing",
    "policy-cannot-be-evaluated",
    "negated-role-check",
    "data-not-utf8",
    "data-ragged-row",
    "data-invalid-value",
    "data-value-out-of-range",
    "data-unreadable",
    "tag-policy-matches-nothing",
    "conflicting-masks",
    "short-hash",
    "mask-falls-back-to-null",
    "mask-nulls-some-values",
    "too-many-conditions",
    "unused-tag",
    "unused-role",
    "user-without-subscriptions",
    "value-exceeds-declared-type",
    "tag-policy-reaches-only-removed-tags",
    "lineage-to-missing-table",
    "sensitive-column-unprotected",
];

/// Workspace settings.
#[derive(Clone, PartialEq)]
pub struct Settings {
    /// Database for unqualified names.
    pub default_database: String,
    /// Schema for unqualified names.
    pub default_schema: String,
    /// `veil lint` rules silenced by `lint: {allow: [...]}` in `veil.yaml`
    /// (each one of [`LINT_RULES`]).
    pub lint_allow: Vec<String>,
    /// Hashing secret (never printed).
    pub secret: String,
    /// Whether `secret` is the development default.
    pub secret_is_default: bool,
    /// The environment variable the secret is read from.
    pub secret_env: String,
    /// Salt scope.
    pub salt_scope: SaltScope,
    /// Enforcement mode.
    pub mode: EnforcementMode,
    /// Whether all granted roles are secondary roles in every session.
    pub secondary_roles_all: bool,
    /// Immuta's access model (a grant *and* a subscription); `false` is
    /// plain Snowflake (`access: snowflake`): a grant alone admits.
    pub subscriptions_required: bool,
    /// Capacity of the memo for costly masks.
    pub memo_capacity: usize,
    /// Workspace administrators (`settings.administrators`, normalized):
    /// the only users `veil query --admin` acts as.
    pub administrators: Vec<String>,
    /// The audit log the CLI appends to (`settings.audit`, resolved against
    /// the workspace directory; default `state/audit.jsonl`), or `None` when
    /// `settings.audit: off`.
    pub audit: Option<PathBuf>,
    /// `settings.discovery` and the workspace's classifiers (SPEC §7.2).
    pub discovery: DiscoverySettings,
    /// The tags lineage propagates (`settings.lineage.tags`, each with its
    /// descendants); empty: every tag does.
    pub lineage_tags: Vec<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("default_database", &self.default_database)
            .field("default_schema", &self.default_schema)
            .field("secret", &"<redacted>")
            .field("salt_scope", &self.salt_scope)
            .field("mode", &self.mode)
            .field("administrators", &self.administrators)
            .field("audit", &self.audit)
            .field("discovery", &self.discovery)
            .field("lineage_tags", &self.lineage_tags)
            .finish()
    }
}

/// A loaded workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Workspace directory.
    pub dir: PathBuf,
    /// Settings.
    pub settings: Settings,
    /// Data sources.
    pub tables: Vec<Table>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Users.
    pub users: Vec<User>,
    /// Policies, in declaration order.
    pub policies: Vec<Policy>,
    /// Snowflake-native policies, functions and tags from DDL scripts.
    pub snowflake: SnowflakeObjects,
    /// Warnings found while loading (e.g. the development secret).
    pub warnings: Vec<String>,
    /// What the catalog journal (`state/catalog.jsonl`) adds besides the
    /// tags already folded into the columns: lineage, and how much of the
    /// file was read.
    pub journal: CatalogJournal,
}

impl Workspace {
    /// The table called `name`.
    pub fn table(&self, name: &TableName) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == *name)
    }

    /// The user called `name` (normalized).
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The role called `name` (normalized).
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Whether a `reversible` or `format_preserving` mask (or its
    /// `otherwise`) encrypts with the workspace secret.
    pub fn uses_encryption(&self) -> bool {
        let encrypts =
            |m: &MaskSpec| matches!(m, MaskSpec::Reversible | MaskSpec::FormatPreserving);
        self.policies.iter().any(|p| match &p.kind {
            PolicyKind::Masking {
                mask, otherwise, ..
            } => encrypts(mask) || otherwise.as_ref().is_some_and(encrypts),
            _ => false,
        })
    }

    /// Whether the hashing secret shapes any result: a `hash`, `reversible`
    /// or `format_preserving` mask (or its `otherwise`), or a Snowflake
    /// masking policy or function whose body calls Veil's hash function.
    pub fn uses_secret(&self) -> bool {
        let hashes = |m: &MaskSpec| {
            matches!(
                m,
                MaskSpec::Hash
                    | MaskSpec::Reversible
                    | MaskSpec::FormatPreserving
                    | MaskSpec::RandomizedResponse(_)
            )
        };
        let masks = self.policies.iter().any(|p| match &p.kind {
            PolicyKind::Masking {
                mask, otherwise, ..
            } => hashes(mask) || otherwise.as_ref().is_some_and(hashes),
            _ => false,
        });
        let calls_hash = |e: &datafusion::sql::sqlparser::ast::Expr| {
            e.to_string()
                .to_ascii_lowercase()
                .contains("veil_mask_hash")
        };
        masks
            || self
                .snowflake
                .masking_policies
                .iter()
                .any(|p| calls_hash(&p.body))
            || self.snowflake.functions.iter().any(|f| calls_hash(&f.body))
    }

    /// `role` and every role it inherits, transitively (always with PUBLIC).
    pub fn role_closure(&self, roles: &[String]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = roles.to_vec();
        stack.push("PUBLIC".to_string());
        while let Some(r) = stack.pop() {
            if seen.insert(r.clone())
                && let Some(role) = self.role(&r)
            {
                stack.extend(role.inherits.iter().cloned());
            }
        }
        seen
    }
}
