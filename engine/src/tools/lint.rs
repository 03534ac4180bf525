//! `veil lint`: policy smells, found in the compiled policies and, where a
//! smell depends on the data (hash collisions, values too long for their
//! declared type), by scanning it.
//!
//! Errors are constructs that fail open in the systems Veil emulates (Veil
//! itself fails closed on them); warnings are risks and clutter. `veil lint
//! --deny warnings` fails on either.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Visit, Visitor};
use serde::Serialize;

use crate::enforce::Engine;
use crate::error::Result;
use crate::load::data_check::DataFiles;
use crate::model::*;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails open in Immuta/Snowflake.
    Error,
    /// A risk or clutter.
    Warning,
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `negated-role-check`.
    pub code: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Where: `file:line` of the policy, or the table/column.
    pub location: String,
    /// One sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{level}[{}] {}: {}",
            self.code, self.location, self.message
        )
    }
}

/// Most members a policy condition should have before it is hard to review.
pub const MAX_CONDITIONS: usize = 5;

/// Longest `VARCHAR(n)` a hash may be cut to before collisions are likely.
pub const SHORT_HASH: u32 = 8;

/// Expected number of colliding pairs when `k` distinct values hash into
/// `hex_chars` hex digits (the birthday bound, k(k-1)/2N with N = 16^n).
pub fn expected_collision_pairs(k: u64, hex_chars: u32) -> f64 {
    let n = 16f64.powi(hex_chars as i32);
    let k = k as f64;
    k * (k - 1.0) / (2.0 * n)
}

/// Runs every check on the engine's current version.
pub async fn lint(engine: &Engine) -> Result<Vec<Finding>> {
    let version = engine.current();
    let ws = version.workspace();
    let mut out = Vec::new();
    let broken = data_file_problems(ws, &mut out);
    unevaluable_policies(engine, &mut out);
    tag_policies_matching_nothing(ws, &mut out);
    negated_role_checks(ws, &mut out);
    conflicting_masks(engine, &mut out);
    short_hashes(engine, &broken, &mut out).await?;
    masks_falling_back_to_null(engine, &mut out);
    too_many_conditions(ws, &mut out);
    unused_tags(ws, &mut out);
    super::lint_journal::journal_findings(ws, &mut out);
    unused_roles(ws, &mut out);
    reads_without_usage(ws, &mut out);
    users_without_subscriptions(engine, &mut out);
    super::lint_coverage::unprotected_sensitive_columns(engine, &mut out);
    values_beyond_declared_types(engine, &broken, &mut out).await?;
    out.retain(|f| !ws.settings.lint_allow.iter().any(|rule| rule == f.code));
    out.sort_by_key(|f| f.severity);
    Ok(out)
}

/// Policies Veil cannot evaluate: `@columnTagged` with no tagged column, a
/// row rule naming a column the table lacks, a broken `where`. Immuta and
/// Snowflake skip the first two silently (fail open); Veil denies.
fn unevaluable_policies(engine: &Engine, out: &mut Vec<Finding>) {
    for t in engine.current().compiled().tables.values() {
        for failure in &t.failures {
            let code = if failure.contains("@columnTagged") {
                "column-tagged-matches-nothing"
            } else if failure.contains("does not have") {
                "row-rule-column-missing"
            } else {
                "policy-cannot-be-evaluated"
            };
            out.push(Finding {
                code,
                severity: Severity::Error,
                location: t.name.to_string(),
                message: format!(
                    "{failure}; Immuta and Snowflake would skip this rule and show every row, Veil denies queries on the table"
                ),
            });
        }
    }
}

fn tag_policies_matching_nothing(ws: &Workspace, out: &mut Vec<Finding>) {
    for p in &ws.policies {
        let Target::Tags(tags) = &p.target else {
            continue;
        };
        for tag in tags {
            let used = ws.tables.iter().any(|t| {
                t.columns
                    .iter()
                    .any(|c| c.tags.iter().any(|ct| tag_is_under(&ct.name, tag)))
            });
            if !used {
                out.push(Finding {
                    code: "tag-policy-matches-nothing",
                    severity: Severity::Warning,
                    location: p.origin.to_string(),
                    message: format!(
                        "policy '{}' targets tag {tag}, which no column carries, so it protects nothing (a typo in a tag name fails open)",
                        p.name
                    ),
                });
            }
        }
    }
}

/// Finds `<>`/`!=`/`NOT IN`/`NOT` applied to identity checks.
struct NegatedIdentity {
    found: Option<String>,
}

fn mentions_identity(e: &Expr) -> bool {
    struct Find(bool);
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e {
                let name = f.name.to_string().to_ascii_lowercase();
                if matches!(
                    name.as_str(),
                    "current_role"
                        | "current_user"
                        | "is_role_in_session"
                        | "invoker_role"
                        | "veil_at_username"
                        | "veil_at_isingroups"
                        | "veil_at_hasattribute"
                ) {
                    self.0 = true;
                    return ControlFlow::Break(());
                }
            }
            if let Expr::Identifier(i) = e
                && matches!(
                    i.value.to_ascii_lowercase().as_str(),
                    "current_role" | "current_user"
                )
            {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(false);
    let _ = e.visit(&mut find);
    find.0
}

impl Visitor for NegatedIdentity {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        let negated = match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::NotEq,
                right,
            } => mentions_identity(left) || mentions_identity(right),
            Expr::InList {
                expr,
                negated: true,
                ..
            } => mentions_identity(expr),
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => mentions_identity(expr),
            _ => false,
        };
        if negated {
            self.found = Some(e.to_string());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn negated_role_checks(ws: &Workspace, out: &mut Vec<Finding>) {
    let ddl_bodies = ws
        .snowflake
        .masking_policies
        .iter()
        .map(|p| ("masking policy", &p.name, &p.body, &p.origin))
        .chain(
            ws.snowflake
                .row_access_policies
                .iter()
                .map(|p| ("row access policy", &p.name, &p.body, &p.origin)),
        );
    for (kind, name, body, origin) in ddl_bodies {
        let mut check = NegatedIdentity { found: None };
        let _ = body.visit(&mut check);
        if let Some(found) = check.found {
            out.push(Finding {
                code: "negated-role-check",
                severity: Severity::Error,
                location: origin.to_string(),
                message: format!(
                    "{kind} {name} uses a negated identity check ({found}): a deny-list, so every other role or user, including ones created later, sees the data (and in a CASE a NULL check falls through to the raw value); list who may see it instead"
                ),
            });
        }
    }
    for p in &ws.policies {
        let PolicyKind::Row {
            rule: RowRule::Where(text),
            ..
        } = &p.kind
        else {
            continue;
        };
        let Ok(expr) = crate::compile::parse_where(text) else {
            continue;
        };
        let mut check = NegatedIdentity { found: None };
        let _ = expr.visit(&mut check);
        if let Some(found) = check.found {
            out.push(Finding {
                code: "negated-role-check",
                severity: Severity::Error,
                location: p.origin.to_string(),
                message: format!(
                    "policy '{}' uses a negated identity check ({}): a deny-list, so every other role or user, including ones created later, sees the data (and in a masking CASE a NULL check falls through to the raw value); list who may see it instead",
                    p.name,
                    found.replace("veil_at_", "@").replace("VEIL_AT_", "@")
                ),
            });
        }
    }
}

fn conflicting_masks(engine: &Engine, out: &mut Vec<Finding>) {
    for t in engine.current().compiled().tables.values() {
        for c in &t.columns {
            for conflict in &c.conflicts {
                out.push(Finding {
                    code: "conflicting-masks",
                    severity: Severity::Warning,
                    location: format!("{}.{}", t.name, c.name),
                    message: conflict.clone(),
                });
            }
        }
    }
}

fn count(batches: &[datafusion::arrow::array::RecordBatch]) -> Option<i64> {
    let b = batches.first()?;
    let col = b.column(0).as_primitive_opt::<Int64Type>()?;
    (!col.is_empty() && col.is_valid(0)).then(|| col.value(0))
}

async fn short_hashes(
    engine: &Engine,
    broken: &BTreeSet<TableName>,
    out: &mut Vec<Finding>,
) -> Result<()> {
    let version = engine.current();
    for t in version.compiled().tables.values() {
        if broken.contains(&t.name) {
            continue;
        }
        for c in &t.columns {
            let Some(applied) = &c.mask else { continue };
            let SnowflakeType::Varchar(n) = c.declared else {
                continue;
            };
            let hashes = [Some(&applied.mask), applied.otherwise.as_ref()]
                .into_iter()
                .flatten()
                .any(|m| m.spec == MaskSpec::Hash && m.fallback.is_none());
            if !hashes || n > SHORT_HASH {
                continue;
            }
            let column = {
                let mut s = String::new();
                let _ = fmt_ident(&mut s, &c.name);
                s
            };
            let stats = engine
                .admin_sql(&format!(
                    "SELECT count(*), count(DISTINCT {column}) FROM {}",
                    t.name
                ))
                .await?;
            let (rows, distinct) = match stats.first() {
                Some(b) if b.num_rows() > 0 => (
                    b.column(0)
                        .as_primitive_opt::<Int64Type>()
                        .map_or(0, |a| a.value(0)),
                    b.column(1)
                        .as_primitive_opt::<Int64Type>()
                        .map_or(0, |a| a.value(0)),
                ),
                _ => (0, 0),
            };
            let pairs = expected_collision_pairs(distinct as u64, n);
            out.push(Finding {
                code: "short-hash",
                severity: Severity::Warning,
                location: format!("{}.{}", t.name, c.name),
                message: format!(
                    "policy '{}' hashes into VARCHAR({n}): 16^{n} = {:.3e} possible values; with the column's {rows} rows ({distinct} distinct values) about {pairs:.3e} pairs of values are expected to collide, and with 10x as many distinct values about {:.3e}; colliding values join and group as one",
                    applied.policy,
                    16f64.powi(n as i32),
                    expected_collision_pairs(distinct as u64 * 10, n)
                ),
            });
        }
    }
    Ok(())
}

fn applies_condition(a: &Applicability) -> Option<&Condition> {
    match a {
        Applicability::Everyone => None,
        Applicability::EveryoneExcept(c) | Applicability::EveryoneWho(c) => Some(c),
    }
}

fn conditions(kind: &PolicyKind) -> Vec<&Condition> {
    match kind {
        PolicyKind::Masking { applies: a, .. } | PolicyKind::Row { applies: a, .. } => {
            applies_condition(a).into_iter().collect()
        }
        PolicyKind::Subscription {
            allow: Allow::Condition(c),
            ..
        } => vec![c],
        PolicyKind::Subscription { .. } => vec![],
    }
}

fn too_many_conditions(ws: &Workspace, out: &mut Vec<Finding>) {
    for p in &ws.policies {
        let n: usize = conditions(&p.kind).iter().map(|c| c.len()).sum();
        if n > MAX_CONDITIONS {
            out.push(Finding {
                code: "too-many-conditions",
                severity: Severity::Warning,
                location: p.origin.to_string(),
                message: format!(
                    "policy '{}' has {n} conditions (more than {MAX_CONDITIONS}): hard to review and to test; split it or use an attribute",
                    p.name
                ),
            });
        }
    }
}

fn unused_tags(ws: &Workspace, out: &mut Vec<Finding>) {
    let targeted: Vec<&String> = ws
        .policies
        .iter()
        .filter_map(|p| match &p.target {
            Target::Tags(tags) => Some(tags),
            _ => None,
        })
        .flatten()
        .collect();
    let mut seen = BTreeSet::new();
    for t in &ws.tables {
        for c in &t.columns {
            for tag in &c.tags {
                // A Snowflake tag with masking policies (`ALTER TAG ... SET
                // MASKING POLICY`) is targeted too.
                let tag_policy = ws.snowflake.tags.iter().any(|(name, def)| {
                    !def.masking_policies.is_empty()
                        && (*name == tag.name || name.rsplit('.').next() == Some(tag.name.as_str()))
                });
                if tag_policy
                    || targeted.iter().any(|p| tag_is_under(&tag.name, p))
                    || !seen.insert(&tag.name)
                {
                    continue;
                }
                out.push(Finding {
                    code: "unused-tag",
                    severity: Severity::Warning,
                    location: format!("{}.{}", t.name, c.name),
                    message: format!(
                        "tag {} is on columns but no policy targets it or an ancestor",
                        tag.name
                    ),
                });
            }
        }
    }
}

fn unused_roles(ws: &Workspace, out: &mut Vec<Finding>) {
    let used = ws.role_closure(
        &ws.users
            .iter()
            .flat_map(|u| u.roles.iter().cloned())
            .collect::<Vec<_>>(),
    );
    for r in &ws.roles {
        if !used.contains(&r.name) {
            out.push(Finding {
                code: "unused-role",
                severity: Severity::Warning,
                location: r.origin.to_string(),
                message: format!(
                    "role {} is granted to no user, directly or through another role",
                    r.name
                ),
            });
        }
    }
}

/// A role granted SELECT on a table or view without USAGE on its database
/// and schema (its own or inherited): Snowflake refuses the read, Veil
/// records USAGE but does not enforce it. Only in workspaces that grant
/// USAGE on some database or schema at all (others do not model it).
fn reads_without_usage(ws: &Workspace, out: &mut Vec<Finding>) {
    let models_usage = ws.roles.iter().flat_map(|r| &r.privileges).any(|p| {
        matches!(
            p,
            Privilege::UsageOnDatabase(_) | Privilege::UsageOnSchema { .. }
        )
    });
    if !models_usage {
        return;
    }
    for r in &ws.roles {
        let held: Vec<&Privilege> = ws
            .role_closure(std::slice::from_ref(&r.name))
            .iter()
            .filter_map(|name| ws.role(name))
            .flat_map(|x| &x.privileges)
            .collect();
        for t in &r.grants {
            let database = Privilege::UsageOnDatabase(t.database.clone());
            let schema = Privilege::UsageOnSchema {
                database: t.database.clone(),
                schema: t.schema.clone(),
            };
            // `USAGE ON SCHEMA DB.S` names its object after `USAGE ON `.
            let missing: Vec<String> = [database, schema]
                .into_iter()
                .filter(|p| !held.contains(&p))
                .map(|p| p.to_string().replacen("USAGE ON ", "", 1))
                .collect();
            if missing.is_empty() {
                continue;
            }
            out.push(Finding {
                code: "read-without-usage",
                severity: Severity::Warning,
                location: r.origin.to_string(),
                message: format!(
                    "role {} reads {t} but has no USAGE on {}; Snowflake refuses the read, Veil does not enforce USAGE",
                    r.name,
                    missing.join(" and ")
                ),
            });
        }
    }
}

fn users_without_subscriptions(engine: &Engine, out: &mut Vec<Finding>) {
    let version = engine.current();
    for u in &version.workspace().users {
        if u.status != UserStatus::Active {
            continue;
        }
        let Ok(session) = engine.session(&u.name) else {
            continue;
        };
        let e = session.entitlements();
        let readable = session
            .granted_tables()
            .iter()
            .filter_map(|t| version.compiled().tables.get(t))
            .filter(|t| crate::profile::subscribed(t, &e))
            .count();
        if readable == 0 {
            out.push(Finding {
                code: "user-without-subscriptions",
                severity: Severity::Warning,
                location: u.origin.to_string(),
                message: format!(
                    "user {} is subscribed to no table it is granted: every query returns zero rows or is refused",
                    u.name
                ),
            });
        }
    }
}

async fn values_beyond_declared_types(
    engine: &Engine,
    broken: &BTreeSet<TableName>,
    out: &mut Vec<Finding>,
) -> Result<()> {
    let version = engine.current();
    for t in &version.workspace().tables {
        if broken.contains(&t.name) {
            continue;
        }
        for c in &t.columns {
            if let SnowflakeType::Number { precision, scale } = c.declared
                && matches!(t.format, FileFormat::Parquet | FileFormat::Arrow)
                && t.rows.is_none()
            {
                numbers_beyond_precision(engine, t, c, precision, scale, out).await;
                continue;
            }
            let SnowflakeType::Varchar(n) = c.declared else {
                continue;
            };
            let mut column = String::new();
            let _ = fmt_ident(&mut column, &c.name);
            let longest = engine
                .admin_sql(&format!(
                    "SELECT CAST(max(character_length({column})) AS BIGINT) FROM {}",
                    t.name
                ))
                .await?;
            if let Some(longest) = count(&longest)
                && longest > i64::from(n)
            {
                out.push(Finding {
                    code: "value-exceeds-declared-type",
                    severity: Severity::Warning,
                    location: format!("{}.{}", t.name, c.name),
                    message: format!(
                        "the data holds values of {longest} characters in a VARCHAR({n}) column: Snowflake would reject them, and masks are cut to {n}"
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Problems in the tables' CSV files (text that is not UTF-8, ragged rows,
/// values that are not of the declared type or too large for it), each an
/// error at `file:line` naming the column; returns the tables that have any,
/// which the checks querying the data skip.
fn data_file_problems(ws: &Workspace, out: &mut Vec<Finding>) -> BTreeSet<TableName> {
    let mut broken = BTreeSet::new();
    for t in &ws.tables {
        let rel = t
            .location
            .strip_prefix(&ws.dir)
            .unwrap_or(&t.location)
            .display()
            .to_string();
        for p in DataFiles::new(t, &rel).problems(None) {
            broken.insert(t.name.clone());
            let column = p
                .column
                .as_ref()
                .map(|c| format!(" column {c}:"))
                .unwrap_or_default();
            let more = match p.more {
                0 => String::new(),
                n => format!(" (and {n} more line(s) of the file)"),
            };
            out.push(Finding {
                code: p.kind.lint_rule(),
                severity: Severity::Error,
                location: p.location(),
                message: format!(
                    "table {}:{column} {}{more}; Snowflake would reject the file, and Veil denies queries on the table",
                    t.name, p.kind
                ),
            });
        }
    }
    broken
}

/// Numbers beyond `NUMBER(p,s)` in a Parquet or Arrow file (CSV and NDJSON
/// files are checked line by line in [`data_file_problems`]).
async fn numbers_beyond_precision(
    engine: &Engine,
    t: &Table,
    c: &Column,
    precision: u8,
    scale: u8,
    out: &mut Vec<Finding>,
) {
    let mut column = String::new();
    let _ = fmt_ident(&mut column, &c.name);
    let limit = format!("1e{}", precision.saturating_sub(scale));
    let sql = format!(
        "SELECT count(*) FROM {} WHERE abs(CAST({column} AS DOUBLE)) >= {limit}",
        t.name
    );
    let kind = match engine.admin_sql(&sql).await {
        Ok(batches) => match count(&batches) {
            Some(n) if n > 0 => {
                crate::load::data_check::DataProblemKind::TooLarge(c.declared).to_string()
            }
            _ => return,
        },
        Err(_) => format!("values that cannot be read as {}", c.declared),
    };
    out.push(Finding {
        code: "data-value-out-of-range",
        severity: Severity::Error,
        location: format!("{}.{}", t.name, c.name),
        message: format!(
            "the data file holds {kind}: Snowflake would reject it, and queries on the table fail"
        ),
    });
}

/// Masks that cannot apply to their column's type, so Veil renders NULL
/// (Snowflake would fail the policy at query time), and masks that render
/// some values as NULL (reversible tokens too long for the column, values
/// too short for FF1).
fn masks_falling_back_to_null(engine: &Engine, out: &mut Vec<Finding>) {
    for t in engine.current().compiled().tables.values() {
        for c in &t.columns {
            let Some(applied) = &c.mask else { continue };
            let masks = [Some(&applied.mask), applied.otherwise.as_ref()];
            for note in masks.into_iter().flatten().filter_map(|m| m.note.as_ref()) {
                out.push(Finding {
                    code: "mask-nulls-some-values",
                    severity: Severity::Warning,
                    location: format!("{}.{}", t.name, c.name),
                    message: format!(
                        "policy '{}' on column {} of {}: {note}",
                        applied.policy, c.name, t.name
                    ),
                });
            }
            for fallback in masks
                .into_iter()
                .flatten()
                .filter_map(|m| m.fallback.as_ref())
            {
                out.push(Finding {
                    code: "mask-falls-back-to-null",
                    severity: Severity::Warning,
                    location: format!("{}.{}", t.name, c.name),
                    message: format!(
                        "policy '{}' on column {} of {}: {fallback}; use a mask for its type, or nullify to say so",
                        applied.policy, c.name, t.name
                    ),
                });
            }
        }
    }
}
