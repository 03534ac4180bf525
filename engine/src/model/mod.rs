//! Plain data types of a Veil workspace: tables, columns and tags, roles,
//! users and their entitlements, and Immuta-style policies. No I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

pub mod snowflake;

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

/// A tag on a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnTag {
    /// Hierarchical name, segments separated by `.`.
    pub name: String,
    /// Where it came from.
    pub source: TagSource,
    /// The tag's value (`SET TAG t = 'v'`), for Snowflake object tags.
    pub value: Option<String>,
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
    /// Tags.
    pub tags: Vec<ColumnTag>,
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

/// A Snowflake role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Normalized name.
    pub name: String,
    /// Tables this role may SELECT.
    pub grants: Vec<TableName>,
    /// Roles granted to this role (their privileges are inherited).
    pub inherits: Vec<String>,
    /// Privileges other than SELECT that DDL scripts granted this role
    /// (`USAGE ON DATABASE`, `APPLY MASKING POLICY ON ACCOUNT`, ...).
    /// Recorded, not enforced: `veil lint` reports reads without USAGE.
    pub privileges: Vec<Privilege>,
    /// Where it was declared.
    pub origin: Origin,
}

/// A privilege a DDL script grants a role besides SELECT on a table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privilege {
    /// `USAGE ON DATABASE d`.
    UsageOnDatabase(String),
    /// `USAGE ON SCHEMA d.s`.
    UsageOnSchema {
        /// Database.
        database: String,
        /// Schema.
        schema: String,
    },
    /// `USAGE ON WAREHOUSE w`.
    UsageOnWarehouse(String),
    /// `APPLY MASKING POLICY ON ACCOUNT`.
    ApplyMaskingPolicy,
    /// `APPLY ROW ACCESS POLICY ON ACCOUNT`.
    ApplyRowAccessPolicy,
    /// `APPLY TAG ON ACCOUNT`.
    ApplyTag,
}

impl fmt::Display for Privilege {
    /// The privilege as a `GRANT` names it: `USAGE ON SCHEMA DB.S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UsageOnDatabase(d) => {
                f.write_str("USAGE ON DATABASE ")?;
                fmt_ident(f, d)
            }
            Self::UsageOnSchema { database, schema } => {
                f.write_str("USAGE ON SCHEMA ")?;
                fmt_ident(f, database)?;
                f.write_str(".")?;
                fmt_ident(f, schema)
            }
            Self::UsageOnWarehouse(w) => {
                f.write_str("USAGE ON WAREHOUSE ")?;
                fmt_ident(f, w)
            }
            Self::ApplyMaskingPolicy => f.write_str("APPLY MASKING POLICY ON ACCOUNT"),
            Self::ApplyRowAccessPolicy => f.write_str("APPLY ROW ACCESS POLICY ON ACCOUNT"),
            Self::ApplyTag => f.write_str("APPLY TAG ON ACCOUNT"),
        }
    }
}

/// The roles from `from` to `to` (both included) along inheritance
/// (each role inherits the next), if `from` inherits `to` at all.
pub fn inheritance_path(roles: &[Role], from: &str, to: &str) -> Option<Vec<String>> {
    let inherits: BTreeMap<&str, &[String]> = roles
        .iter()
        .map(|r| (r.name.as_str(), r.inherits.as_slice()))
        .collect();
    // Breadth-first, remembering each role's predecessor: no recursion.
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(r) = queue.pop_front() {
        if r == to {
            let mut path = vec![to.to_string()];
            let mut at = to;
            while at != from {
                at = previous.get(at)?;
                path.push(at.to_string());
            }
            path.reverse();
            return Some(path);
        }
        for parent in inherits.get(r).copied().unwrap_or_default() {
            if parent != from && !previous.contains_key(parent.as_str()) {
                previous.insert(parent, r);
                queue.push_back(parent);
            }
        }
    }
    None
}

/// A role inheritance cycle, if there is one: `[A, B, A]` when A
/// inherits B and B inherits A. Roles are visited in declaration order,
/// so the same workspace always reports the same cycle.
pub fn role_cycle(roles: &[Role]) -> Option<Vec<String>> {
    let index: BTreeMap<&str, usize> = roles
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    // Depth-first on an explicit stack (no recursion, any depth):
    // 0 = not seen, 1 = on the current path, 2 = finished.
    let mut state = vec![0u8; roles.len()];
    for start in 0..roles.len() {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&(r, next)) = path.last() {
            let Some(parent) = roles[r].inherits.get(next) else {
                state[r] = 2;
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let Some(&q) = index.get(parent.as_str()) else {
                continue;
            };
            match state[q] {
                0 => {
                    state[q] = 1;
                    path.push((q, 0));
                }
                1 => {
                    let from = path.iter().position(|(x, _)| *x == q)?;
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|(x, _)| roles[*x].name.clone())
                        .collect();
                    cycle.push(roles[q].name.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

/// Lifecycle status of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// May query.
    Active,
    /// Provisioned but not yet allowed to query.
    Staged,
    /// May not query.
    Disabled,
}

/// A user and their entitlements.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Normalized name.
    pub name: String,
    /// Status.
    pub status: UserStatus,
    /// Granted roles; the first is the default role.
    pub roles: Vec<String>,
    /// Immuta groups.
    pub groups: BTreeSet<String>,
    /// Attributes: key → values.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// Acknowledged purposes.
    pub purposes: BTreeSet<String>,
    /// Where it was declared.
    pub origin: Origin,
}

/// How the members of a condition combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Any member suffices (OR).
    Any,
    /// Every member is needed (AND).
    All,
}

/// A condition on the querying user (Immuta's "members of group ...,
/// possessing attribute ..., acting under purpose ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Group memberships.
    pub groups: Vec<String>,
    /// Attribute values (key, value).
    pub attributes: Vec<(String, String)>,
    /// Purposes the session acts under.
    pub purposes: Vec<String>,
    /// Named users.
    pub users: Vec<String>,
    /// Roles in the session.
    pub roles: Vec<String>,
    /// How members combine.
    pub operator: Operator,
}

impl Condition {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.groups.len()
            + self.attributes.len()
            + self.purposes.len()
            + self.users.len()
            + self.roles.len()
    }

    /// Whether the condition has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        parts.extend(self.groups.iter().map(|g| format!("group {g}")));
        parts.extend(
            self.attributes
                .iter()
                .map(|(k, v)| format!("attribute {k}={v}")),
        );
        parts.extend(self.purposes.iter().map(|p| format!("purpose {p}")));
        parts.extend(self.users.iter().map(|u| format!("user {u}")));
        parts.extend(self.roles.iter().map(|r| format!("role {r}")));
        let join = match self.operator {
            Operator::Any => " or ",
            Operator::All => " and ",
        };
        f.write_str(&parts.join(join))
    }
}

/// To whom a rule applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Applicability {
    /// Everyone.
    Everyone,
    /// Everyone except users who meet the condition.
    EveryoneExcept(Condition),
    /// Only users who meet the condition; others get `otherwise` (masking
    /// rules) or the unfiltered rows (row rules).
    EveryoneWho(Condition),
}

/// Rounding targets.
#[derive(Debug, Clone, PartialEq)]
pub enum RoundTo {
    /// Numbers to a multiple of this decimal step.
    Step(String),
    /// Dates/timestamps truncated to `minute|hour|day|month|year`.
    Unit(String),
}

/// A masking type.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSpec {
    /// Salted SHA-256.
    Hash,
    /// A constant literal.
    Constant(String),
    /// NULL.
    Nullify,
    /// Numeric bucket / date truncation.
    Round(RoundTo),
    /// Regex replacement.
    Regex {
        /// Pattern.
        pattern: String,
        /// Replacement.
        replacement: String,
    },
    /// Keep the first n characters.
    ShowFirst(u32),
    /// Keep the last n characters.
    ShowLast(u32),
    /// A Snowflake masking policy's body, its arguments bound to the raw
    /// columns (`t."COL"`), SQL functions expanded.
    Sql {
        /// Policy name.
        policy: String,
        /// The bound body.
        expr: Box<datafusion::sql::sqlparser::ast::Expr>,
    },
}

impl fmt::Display for MaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hash => f.write_str("hash"),
            Self::Constant(c) => write!(f, "constant '{c}'"),
            Self::Nullify => f.write_str("nullify"),
            Self::Round(RoundTo::Step(s)) => write!(f, "round to {s}"),
            Self::Round(RoundTo::Unit(u)) => write!(f, "round to {u}"),
            Self::Regex {
                pattern,
                replacement,
            } => write!(f, "regex '{pattern}' -> '{replacement}'"),
            Self::ShowFirst(n) => write!(f, "show_first {n}"),
            Self::ShowLast(n) => write!(f, "show_last {n}"),
            Self::Sql { policy, .. } => write!(f, "masking policy {policy}"),
        }
    }
}

/// What a policy targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Columns carrying any of these tags (or descendants).
    Tags(Vec<String>),
    /// Named columns.
    Columns(Vec<(TableName, String)>),
    /// Whole data sources.
    DataSources(Vec<TableName>),
}

/// Time units for time-window rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
    /// Days.
    Days,
    /// Years.
    Years,
}

/// A row rule type.
#[derive(Debug, Clone, PartialEq)]
pub enum RowRule {
    /// Rows whose column value is one of the user's values for an attribute.
    MatchAttribute {
        /// Attribute key.
        key: String,
        /// Column (normalized); for tag targets, defaults to the tagged column.
        column: Option<String>,
    },
    /// Rows whose column value is one of the user's groups.
    MatchGroups {
        /// Column (normalized); for tag targets, defaults to the tagged column.
        column: Option<String>,
    },
    /// A SQL predicate with Immuta `@` functions.
    Where(String),
    /// Rows whose event time is newer than `amount` `unit`s.
    TimeWindow {
        /// How many units.
        amount: u32,
        /// Unit.
        unit: WindowUnit,
    },
    /// A deterministic percentage of rows.
    Minimize(String),
    /// Rows only for sessions acting under this purpose.
    Purpose(String),
}

/// Who may subscribe.
#[derive(Debug, Clone, PartialEq)]
pub enum Allow {
    /// Everyone.
    Anyone,
    /// Users meeting a condition (including named users).
    Condition(Condition),
}

/// A policy's kind and action.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    /// A masking rule.
    Masking {
        /// Mask for those the rule applies to.
        mask: MaskSpec,
        /// Mask for the others, with `for_everyone_who`.
        otherwise: Option<MaskSpec>,
        /// To whom.
        applies: Applicability,
    },
    /// A row rule.
    Row {
        /// Which rows.
        rule: RowRule,
        /// To whom.
        applies: Applicability,
    },
    /// A subscription policy.
    Subscription {
        /// Who.
        allow: Allow,
        /// Guardrail policies combine with AND, grants with OR.
        guardrail: bool,
    },
}

/// An Immuta-style policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Name, unique in the workspace.
    pub name: String,
    /// Target.
    pub target: Target,
    /// Kind and action.
    pub kind: PolicyKind,
    /// Where it was declared (its order decides equal-depth conflicts).
    pub origin: Origin,
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
    "too-many-conditions",
    "unused-tag",
    "unused-role",
    "user-without-subscriptions",
    "value-exceeds-declared-type",
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

    /// Whether the hashing secret shapes any result: a `hash` mask (or its
    /// `otherwise`), or a Snowflake masking policy or function whose body
    /// calls Veil's hash function.
    pub fn uses_secret(&self) -> bool {
        let hashes = |m: &MaskSpec| *m == MaskSpec::Hash;
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

    fn roles(edges: &[(&str, &[&str])]) -> Vec<Role> {
        edges
            .iter()
            .map(|(name, inherits)| Role {
                name: name.to_string(),
                grants: vec![],
                inherits: inherits.iter().map(|s| s.to_string()).collect(),
                privileges: vec![],
                origin: Origin::default(),
            })
            .collect()
    }

    #[test]
    fn role_cycles_are_found_in_declaration_order() {
        let rs = roles(&[("A", &["B", "PUBLIC"]), ("B", &["C"]), ("C", &["A"])]);
        assert_eq!(role_cycle(&rs).unwrap(), ["A", "B", "C", "A"]);
        assert_eq!(inheritance_path(&rs, "B", "A").unwrap(), ["B", "C", "A"]);
        let rs = roles(&[("A", &["B"]), ("B", &[]), ("C", &["C"])]);
        assert_eq!(role_cycle(&rs).unwrap(), ["C", "C"]);
        let rs = roles(&[("A", &["B", "C"]), ("B", &["C"]), ("C", &[])]);
        assert_eq!(role_cycle(&rs), None);
        assert_eq!(inheritance_path(&rs, "C", "A"), None);
    }

    #[test]
    fn role_cycles_are_found_at_any_depth() {
        let names: Vec<String> = (0..100_000).map(|i| format!("R{i}")).collect();
        let mut rs: Vec<Role> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Role {
                name: name.clone(),
                grants: vec![],
                inherits: vec![names[(i + 1) % names.len()].clone()],
                privileges: vec![],
                origin: Origin::default(),
            })
            .collect();
        assert_eq!(role_cycle(&rs).map(|c| c.len()), Some(100_001));
        rs.last_mut().unwrap().inherits.clear();
        assert_eq!(role_cycle(&rs), None);
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
