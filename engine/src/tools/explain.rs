//! `explain`: for a user and a query, the rewritten SQL and, for every table
//! and column, which policy applies, which tag/attribute/exception decided
//! it, conflicts and fallbacks.

use std::fmt;

use crate::compile::{AppliedMask, CompiledTable, RowPredicate};
use crate::enforce::{Session, profile_table_name};
use crate::error::Result;
use crate::model::Applicability;
use crate::model::Entitlements;

pub use crate::model::meets;

/// Whether a rule with `applies` applies to the user, and the one-line reason.
pub fn applicability(applies: &Applicability, e: &Entitlements) -> (bool, String) {
    match applies {
        Applicability::Everyone => (true, "applies to everyone".to_string()),
        Applicability::EveryoneExcept(c) => {
            if meets(c, e) {
                (
                    false,
                    format!("exempt: {} meets the exception ({c})", e.user),
                )
            } else {
                (
                    true,
                    format!("applies: {} does not meet the exception ({c})", e.user),
                )
            }
        }
        Applicability::EveryoneWho(c) => {
            if meets(c, e) {
                (
                    true,
                    format!("applies: {} meets the condition ({c})", e.user),
                )
            } else {
                (
                    false,
                    format!("{} does not meet the condition ({c})", e.user),
                )
            }
        }
    }
}

/// How one column shows for the session.
#[derive(Debug, Clone)]
pub struct ColumnDecision {
    /// Column name.
    pub column: String,
    /// Mask shown to this user (`None`: raw value).
    pub mask: Option<String>,
    /// Policy that decided, if any.
    pub policy: Option<String>,
    /// One-line reason.
    pub reason: String,
    /// Conflicting policies that lost.
    pub conflicts: Vec<String>,
    /// Type fallback note.
    pub fallback: Option<String>,
    /// Values the shown mask still renders as NULL (reversible tokens too
    /// long for the column, values too short for FF1).
    pub note: Option<String>,
    /// Where the column's propagated tags come from ("tagged PII.Email
    /// through lineage from CRM.CORE.CUSTOMER.EMAIL").
    pub tag_origins: Vec<String>,
}

/// Decides what one column shows to the session's user.
pub fn decide_column(column: &crate::compile::CompiledColumn, e: &Entitlements) -> ColumnDecision {
    let Some(AppliedMask {
        policy,
        reason,
        mask,
        otherwise,
        applies,
        cell_where,
    }) = &column.mask
    else {
        return ColumnDecision {
            column: column.name.clone(),
            mask: None,
            policy: None,
            reason: "no masking policy matches".to_string(),
            conflicts: column.conflicts.clone(),
            fallback: None,
            note: None,
            tag_origins: Vec::new(),
        };
    };
    let (applies_here, why) = applicability(applies, e);
    let shown = if applies_here {
        Some(mask)
    } else {
        otherwise.as_ref()
    };
    ColumnDecision {
        column: column.name.clone(),
        mask: shown.map(|m| {
            let only = cell_where
                .as_ref()
                .map(|w| format!(" only on rows where {w}"))
                .unwrap_or_default();
            match &m.fallback {
                Some(_) => format!("nullify (fallback){only}"),
                None => format!("{}{only}", m.spec),
            }
        }),
        policy: Some(policy.clone()),
        reason: if applies_here || otherwise.is_some() {
            format!("{reason}; {why}")
        } else {
            format!("{reason}; {why}, so the raw value shows")
        },
        conflicts: column.conflicts.clone(),
        fallback: shown.and_then(|m| m.fallback.clone()),
        note: shown.and_then(|m| m.note.clone()),
        tag_origins: Vec::new(),
    }
}

/// One row rule's outcome for the session.
#[derive(Debug, Clone)]
pub struct RowDecision {
    /// Policy.
    pub policy: String,
    /// Whether it filters this user's rows.
    pub applies: bool,
    /// Description of the predicate.
    pub predicate: String,
    /// Reason.
    pub reason: String,
}

fn describe_predicate(p: &RowPredicate) -> String {
    match p {
        RowPredicate::ValueIn { column, source, .. } => match source {
            crate::compile::ValueSource::Attribute(k) => {
                format!("{column} in the user's values of attribute {k}")
            }
            crate::compile::ValueSource::Groups => format!("{column} in the user's groups"),
        },
        RowPredicate::Where(e) => format!("where {e}"),
        RowPredicate::TimeWindow {
            column,
            amount,
            unit,
        } => format!("{column} within the last {amount} {unit:?}").to_lowercase(),
        RowPredicate::Minimize { percent, .. } => format!("a deterministic {percent}% of rows"),
        RowPredicate::Purpose(p) => format!("only when acting under purpose {p}"),
        RowPredicate::Sql(e) => format!("where {e}"),
    }
}

/// The explanation of one table for the session.
#[derive(Debug, Clone)]
pub struct TableExplanation {
    /// Table.
    pub table: String,
    /// Subscription outcome.
    pub subscription: String,
    /// Row rules.
    pub rows: Vec<RowDecision>,
    /// Columns.
    pub columns: Vec<ColumnDecision>,
    /// Policies that cannot be evaluated (the table is denied).
    pub failures: Vec<String>,
}

/// Explains one compiled table for entitlements `e`.
pub fn explain_table(t: &CompiledTable, e: &Entitlements) -> TableExplanation {
    let subscribed = crate::compile::subscribed(t, e);
    let sub = &t.subscription;
    let subscription = if sub.grant_alone {
        "granted: the workspace uses Snowflake's access model (access: snowflake), so the grant alone admits".to_string()
    } else if sub.owners.contains(&e.user) {
        format!("subscribed: {} owns the data source", e.user)
    } else if subscribed {
        let by: Vec<&str> = sub.grants.iter().map(|(n, _)| n.as_str()).collect();
        if sub.anyone {
            "subscribed: a policy allows anyone".to_string()
        } else {
            format!("subscribed through {}", by.join(", "))
        }
    } else if !sub.anyone && sub.grants.is_empty() {
        "not subscribed: no subscription policy and not an owner, so zero rows".to_string()
    } else {
        "not subscribed: no grant policy admits the user or a guardrail fails, so zero rows"
            .to_string()
    };
    TableExplanation {
        table: t.name.to_string(),
        subscription,
        rows: t
            .row_rules
            .iter()
            .map(|r| {
                let (applies, why) = applicability(&r.applies, e);
                RowDecision {
                    policy: r.policy.clone(),
                    applies,
                    predicate: describe_predicate(&r.predicate),
                    reason: format!("{}; {why}", r.reason),
                }
            })
            .collect(),
        columns: t.columns.iter().map(|c| decide_column(c, e)).collect(),
        failures: t.failures.clone(),
    }
}

/// The full explanation of a query for a session.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// User.
    pub user: String,
    /// Role.
    pub role: String,
    /// Enforcement mode.
    pub mode: String,
    /// The statement with every protected table replaced by its policy relation.
    pub rewritten_sql: Option<String>,
    /// Why the rewrite failed (fail closed), if it did.
    pub denied: Option<String>,
    /// Per table.
    pub tables: Vec<TableExplanation>,
}

/// `sql` with the expanded body of every secure function replaced by a
/// mention of the function: a secure function's body (e.g. a hashing
/// secret) is never printed.
fn hide_secure_bodies(mut sql: String, objects: &crate::model::SnowflakeObjects) -> String {
    for f in objects.functions.iter().filter(|f| f.secure) {
        let body = f.body.to_string();
        if !body.is_empty() {
            sql = sql.replace(&body, &format!("<secure function {}>", f.name));
        }
    }
    sql
}

impl Session {
    /// Explains `sql` for this session.
    pub fn explain(&self, sql: &str) -> Result<Explanation> {
        let b = self.bound()?;
        let checked = b.check(sql)?;
        let (rewritten_sql, denied) = match b.rewritten_sql(sql) {
            Ok(s) => (Some(hide_secure_bodies(s, &b.workspace().snowflake)), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut tables = Vec::new();
        for t in &checked.tables {
            if *t == profile_table_name() {
                continue;
            }
            if let Some(c) = b.compiled_table(t) {
                let mut explained = explain_table(c, b.entitlements());
                if let Some(declared) = b.workspace().table(t) {
                    note_tag_origins(&mut explained, declared);
                }
                tables.push(explained);
            }
        }
        Ok(Explanation {
            user: b.user().to_string(),
            role: b.role().to_string(),
            mode: format!("{:?}", b.mode()),
            rewritten_sql,
            denied,
            tables,
        })
    }
}

/// Names the origin of every propagated tag on the columns of `table`.
fn note_tag_origins(explained: &mut TableExplanation, table: &crate::model::Table) {
    for decision in &mut explained.columns {
        let Some(column) = table.column(&decision.column) else {
            continue;
        };
        decision.tag_origins = column
            .tags
            .iter()
            .filter(|t| t.source == crate::model::TagSource::Lineage)
            .map(|t| match &t.origin {
                Some(o) => format!(
                    "column {} is tagged {} through lineage from {o}",
                    column.name, t.name
                ),
                None => format!(
                    "column {} is tagged {} through lineage",
                    column.name, t.name
                ),
            })
            .collect();
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "user {} · role {} · mode {}",
            self.user, self.role, self.mode
        )?;
        if let Some(d) = &self.denied {
            writeln!(f, "\nDENIED: {d}")?;
        }
        if let Some(sql) = &self.rewritten_sql {
            writeln!(f, "\nrewritten SQL:\n  {sql}")?;
        }
        for t in &self.tables {
            writeln!(f, "\ntable {}", t.table)?;
            writeln!(f, "  access: {}", t.subscription)?;
            for failure in &t.failures {
                writeln!(f, "  FAILS CLOSED: {failure}")?;
            }
            for r in &t.rows {
                let state = if r.applies { "filters" } else { "skipped" };
                writeln!(
                    f,
                    "  row rule {} [{state}]: {} — {}",
                    r.policy, r.predicate, r.reason
                )?;
            }
            for c in &t.columns {
                match (&c.mask, &c.policy) {
                    (Some(m), Some(p)) => {
                        writeln!(f, "  column {}: {m} by {p} — {}", c.column, c.reason)?
                    }
                    (None, Some(p)) => {
                        writeln!(f, "  column {}: raw — {p}: {}", c.column, c.reason)?
                    }
                    _ => writeln!(f, "  column {}: raw — {}", c.column, c.reason)?,
                }
                if let Some(fb) = &c.fallback {
                    writeln!(f, "    fallback: {fb}")?;
                }
                if let Some(note) = &c.note {
                    writeln!(f, "    note: {note}")?;
                }
                for conflict in &c.conflicts {
                    writeln!(f, "    conflict: {conflict}")?;
                }
                for origin in &c.tag_origins {
                    writeln!(f, "    {origin}")?;
                }
            }
        }
        Ok(())
    }
}
