//! `veil diff OLD NEW`: the blast radius of a policy change. For every user
//! × table of the two workspaces (e.g. two Git checkouts): whether the user
//! can read the table, how many rows they gain or lose (computed on the
//! data, raw rows compared as a multiset), and which columns change masking
//! and how.
//!
//! Each user is compared in their default session (default role, no
//! purpose), as `veil query -u USER` would run.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

use crate::compile::CompiledTable;
use crate::enforce::{Engine, Session};
use crate::error::{Result, VeilError};
use crate::model::TableName;
use crate::tools::explain::decide_column;

/// What a user may do with a table in one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The user cannot open a session (unknown, staged, disabled).
    NoSession,
    /// The table is not in the workspace.
    NoTable,
    /// No role of the user is granted the table.
    NotGranted,
    /// Granted but not subscribed: zero rows.
    NotSubscribed,
    /// The policies cannot be evaluated: queries fail closed.
    Denied,
    /// Readable, through its policies.
    Subscribed,
}

impl Access {
    /// Whether the user reads rows of the table (possibly zero after rules).
    pub fn readable(&self) -> bool {
        *self == Access::Subscribed
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::NoSession => "no session",
            Access::NoTable => "no such table",
            Access::NotGranted => "not granted",
            Access::NotSubscribed => "granted, not subscribed",
            Access::Denied => "denied (policy cannot be evaluated)",
            Access::Subscribed => "subscribed",
        })
    }
}

/// A column whose masking changes for a user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnChange {
    /// Column.
    pub column: String,
    /// What it showed before (`raw`, or the mask and its policy).
    pub old: String,
    /// What it shows now.
    pub new: String,
}

/// One user × table whose visibility changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableChange {
    /// User.
    pub user: String,
    /// Table.
    pub table: String,
    /// Access before.
    pub old_access: Access,
    /// Access now.
    pub new_access: Access,
    /// Rows visible before.
    pub old_rows: usize,
    /// Rows visible now.
    pub new_rows: usize,
    /// Rows visible now and not before.
    pub rows_gained: usize,
    /// Rows visible before and not now.
    pub rows_lost: usize,
    /// Columns whose masking changes.
    pub columns: Vec<ColumnChange>,
}

/// The impact of changing OLD into NEW.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// Every user × table that changes.
    pub changes: Vec<TableChange>,
    /// Users who can read a table now that they could not before: (user, table).
    pub gained_access: Vec<(String, String)>,
    /// Users who could read a table and no longer can: (user, table).
    pub lost_access: Vec<(String, String)>,
    /// User × table pairs compared.
    pub pairs: usize,
}

/// One side of the comparison for one user and table.
struct Side {
    access: Access,
    rows: HashMap<String, usize>,
    row_count: usize,
    columns: Vec<(String, String)>,
}

fn describe_columns(t: &CompiledTable, session: &Session) -> Vec<(String, String)> {
    let e = session.entitlements();
    t.columns
        .iter()
        .map(|c| {
            let d = decide_column(c, &e);
            let shown = match (&d.mask, &d.policy) {
                (Some(m), Some(p)) => format!("{m} ({p})"),
                (Some(m), None) => m.clone(),
                (None, _) => "raw".to_string(),
            };
            (c.name.clone(), shown)
        })
        .collect()
}

async fn side(engine: &Engine, user: &str, table: &TableName) -> Result<Side> {
    let empty = |access| Side {
        access,
        rows: HashMap::new(),
        row_count: 0,
        columns: Vec::new(),
    };
    let version = engine.current();
    let Some(compiled) = version.compiled().tables.get(table) else {
        return Ok(empty(Access::NoTable));
    };
    let Ok(session) = engine.session(user) else {
        return Ok(empty(Access::NoSession));
    };
    if !session.granted_tables().contains(table) {
        return Ok(empty(Access::NotGranted));
    }
    if !compiled.failures.is_empty() {
        return Ok(empty(Access::Denied));
    }
    let columns = describe_columns(compiled, &session);
    if !crate::profile::subscribed(compiled, &session.entitlements()) {
        return Ok(Side {
            columns,
            ..empty(Access::NotSubscribed)
        });
    }
    let batches = session.visible_raw_rows(table).await?;
    let mut rows = HashMap::new();
    let mut row_count = 0;
    for row in crate::tools::test_runner::rows(&batches)? {
        *rows.entry(row.join("\u{1f}")).or_insert(0) += 1;
        row_count += 1;
    }
    Ok(Side {
        access: Access::Subscribed,
        rows,
        row_count,
        columns,
    })
}

/// Rows in `a` and not in `b`, as multisets.
fn only_in(a: &HashMap<String, usize>, b: &HashMap<String, usize>) -> usize {
    a.iter()
        .map(|(row, n)| n.saturating_sub(b.get(row).copied().unwrap_or(0)))
        .sum()
}

/// Compares every user × table of `old` and `new`.
pub async fn diff(old: &Engine, new: &Engine) -> Result<DiffReport> {
    let users: BTreeSet<String> = old
        .current()
        .workspace()
        .users
        .iter()
        .chain(new.current().workspace().users.iter())
        .map(|u| u.name.clone())
        .collect();
    let tables: BTreeSet<TableName> = old
        .current()
        .compiled()
        .tables
        .keys()
        .chain(new.current().compiled().tables.keys())
        .cloned()
        .collect();
    let mut report = DiffReport {
        changes: Vec::new(),
        gained_access: Vec::new(),
        lost_access: Vec::new(),
        pairs: 0,
    };
    for user in &users {
        for table in &tables {
            report.pairs += 1;
            let before = side(old, user, table).await?;
            let after = side(new, user, table).await?;
            let columns: Vec<ColumnChange> = if before.access.readable() || after.access.readable()
            {
                after
                    .columns
                    .iter()
                    .filter_map(|(name, now)| {
                        let was = before
                            .columns
                            .iter()
                            .find(|(n, _)| n == name)
                            .map_or("absent", |(_, s)| s.as_str());
                        (was != now).then(|| ColumnChange {
                            column: name.clone(),
                            old: was.to_string(),
                            new: now.clone(),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let gained = only_in(&after.rows, &before.rows);
            let lost = only_in(&before.rows, &after.rows);
            if before.access.readable() != after.access.readable() {
                let pair = (user.clone(), table.to_string());
                if after.access.readable() {
                    report.gained_access.push(pair);
                } else {
                    report.lost_access.push(pair);
                }
            }
            if before.access != after.access || gained > 0 || lost > 0 || !columns.is_empty() {
                report.changes.push(TableChange {
                    user: user.clone(),
                    table: table.to_string(),
                    old_access: before.access,
                    new_access: after.access,
                    old_rows: before.row_count,
                    new_rows: after.row_count,
                    rows_gained: gained,
                    rows_lost: lost,
                    columns,
                });
            }
        }
    }
    Ok(report)
}

impl DiffReport {
    /// Whether any user's access, rows or masking change (`veil diff
    /// --exit-code` fails then).
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || !self.gained_access.is_empty() || !self.lost_access.is_empty()
    }

    /// JSON, pretty-printed.
    pub fn json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| VeilError::Refused(format!("cannot render the diff as JSON: {e}")))
    }
}

impl fmt::Display for DiffReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(
                f,
                "No user sees anything different ({} user × table pairs compared).",
                self.pairs
            );
        }
        for c in &self.changes {
            writeln!(f, "{} · {}", c.user, c.table)?;
            if c.old_access != c.new_access {
                writeln!(f, "  access: {} → {}", c.old_access, c.new_access)?;
            }
            if c.rows_gained > 0 || c.rows_lost > 0 {
                writeln!(
                    f,
                    "  rows: {} → {} (+{} gained, -{} lost)",
                    c.old_rows, c.new_rows, c.rows_gained, c.rows_lost
                )?;
            }
            for col in &c.columns {
                writeln!(f, "  column {}: {} → {}", col.column, col.old, col.new)?;
            }
        }
        for (label, list) in [
            ("gain access", &self.gained_access),
            ("lose access", &self.lost_access),
        ] {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|(u, t)| format!("{u} → {t}")).collect();
                writeln!(f, "\nUsers who {label}: {}", items.join(", "))?;
            }
        }
        writeln!(
            f,
            "\n{} of {} user × table pairs change.",
            self.changes.len(),
            self.pairs
        )
    }
}
