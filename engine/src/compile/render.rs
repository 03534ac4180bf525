//! Rendering a [`CompiledTable`] as the SQL of its policy relation.
//!
//! Two modes produce the same rows (tested):
//! - [`RenderMode::ProfileJoin`]: user-independent SQL that cross-joins the
//!   current user's row of `VEIL.SYSTEM.USER_PROFILE` (selected by
//!   `current_user()`, which each session binds), like Immuta's secure views;
//!   one compilation serves every user.
//! - [`RenderMode::Inlined`]: one user's entitlements substituted as literals,
//!   so conditions fold and DataFusion can prune.
//!
//! Everything is built as sqlparser AST nodes; entitlement values are never
//! spliced into SQL text. Row rules go in `WHERE` over the raw columns, masks
//! in the select list, so rows are filtered on raw values before masking.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Query, SelectItem, SetExpr, TableFactor, UnaryOperator,
    Value, VisitMut, VisitorMut,
};

use super::{AppliedMask, CompiledTable, EffectiveMask, RowPredicate, ValueSource, at_function};
use crate::error::{Result, VeilError};
use crate::ident::{normalize_ident, parse_generated_expr, quoted, with_operand};
use crate::model::*;

/// The entitlement table's location in Veil's internal catalog.
pub const PROFILE_TABLE: [&str; 3] = ["VEIL", "SYSTEM", "USER_PROFILE"];

/// One user's entitlements in one session (the inlined mode's literals).
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlements {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: BTreeSet<String>,
    /// Attributes.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// Acknowledged purposes.
    pub purposes: BTreeSet<String>,
    /// The purpose the session acts under.
    pub current_purpose: Option<String>,
    /// Roles active in the session (with inheritance).
    pub roles_in_session: BTreeSet<String>,
}

/// Whether the user with entitlements `e` meets condition `c` (the
/// inlined mode's folding, `explain` and the profile's subscriptions).
pub fn meets(c: &Condition, e: &Entitlements) -> bool {
    let mut checks =
        c.groups
            .iter()
            .map(|g| e.groups.contains(g))
            .chain(
                c.attributes
                    .iter()
                    .map(|(k, v)| e.attributes.get(k).is_some_and(|vs| vs.contains(v))),
            )
            .chain(c.purposes.iter().map(|p| {
                e.current_purpose.as_deref() == Some(p.as_str()) && e.purposes.contains(p)
            }))
            .chain(c.users.iter().map(|u| e.user == *u))
            .chain(c.roles.iter().map(|r| e.roles_in_session.contains(r)));
    match c.operator {
        Operator::Any => checks.any(|x| x),
        Operator::All => checks.all(|x| x),
    }
}

/// How to read entitlements.
#[derive(Debug, Clone, Copy)]
pub enum RenderMode<'a> {
    /// Join the current user's profile row.
    ProfileJoin,
    /// Substitute this user's entitlements.
    Inlined(&'a Entitlements),
    /// Snowflake SQL for `veil export snowflake`: entitlements from the
    /// exported lookup functions, purposes as roles, masks as Snowflake
    /// expressions instead of Veil's functions.
    Snowflake(&'a SnowflakeExport),
}

/// The objects exported Snowflake policies read (fully qualified names).
#[derive(Debug, Clone, PartialEq)]
pub struct SnowflakeExport {
    /// Memoizable function returning the current user's groups as an array.
    pub groups_function: String,
    /// Memoizable function returning the current user's attributes as an
    /// array of `key=value` strings.
    pub attributes_function: String,
    /// Secure function returning the hashing secret.
    pub secret_function: String,
    /// Role activated (as a secondary role) to act under each purpose.
    pub purpose_roles: BTreeMap<String, String>,
}

/// The role that stands for acting under purpose `p` in exported DDL.
pub fn purpose_role(p: &str) -> String {
    let mut name = String::from("PURPOSE_");
    for c in p.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_uppercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name
}

/// A rendered boolean: folded (inlined mode) or an expression. Short-lived,
/// so the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum B {
    Lit(bool),
    E(Expr),
}

impl B {
    fn into_expr(self) -> Expr {
        match self {
            B::Lit(b) => Expr::Value(Value::Boolean(b).with_empty_span()),
            B::E(e) => e,
        }
    }
}

/// `e` in parentheses unless it is atomic.
pub(crate) fn nested(e: Expr) -> Expr {
    match e {
        Expr::Value(_)
        | Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Function(_)
        | Expr::Nested(_) => e,
        other => Expr::Nested(Box::new(other)),
    }
}

fn and(parts: Vec<B>) -> B {
    let mut exprs = Vec::new();
    for p in parts {
        match p {
            B::Lit(false) => return B::Lit(false),
            B::Lit(true) => {}
            B::E(e) => exprs.push(e),
        }
    }
    fold(exprs, BinaryOperator::And).map_or(B::Lit(true), B::E)
}

fn or(parts: Vec<B>) -> B {
    let mut exprs = Vec::new();
    for p in parts {
        match p {
            B::Lit(true) => return B::Lit(true),
            B::Lit(false) => {}
            B::E(e) => exprs.push(e),
        }
    }
    fold(exprs, BinaryOperator::Or).map_or(B::Lit(false), B::E)
}

fn fold(exprs: Vec<Expr>, op: BinaryOperator) -> Option<Expr> {
    exprs
        .into_iter()
        .map(nested)
        .reduce(|left, right| Expr::BinaryOp {
            left: Box::new(left),
            op: op.clone(),
            right: Box::new(right),
        })
}

fn not(b: B) -> B {
    match b {
        B::Lit(v) => B::Lit(!v),
        B::E(e) => B::E(Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: Box::new(nested(e)),
        }),
    }
}

fn string(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).with_empty_span())
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn number(n: &str) -> Expr {
    Expr::Value(Value::Number(n.to_string(), false).with_empty_span())
}

fn null() -> Expr {
    Expr::Value(Value::Null.with_empty_span())
}

fn eq(left: Expr, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::Eq,
        right: Box::new(right),
    }
}

/// `CASE WHEN condition THEN then ELSE otherwise END`.
pub(crate) fn case(condition: Expr, then: Expr, otherwise: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: then,
        }],
        else_result: Some(Box::new(otherwise)),
    }
}

/// `t."COLUMN"`: a raw column of the table inside a policy relation.
fn raw(column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![quoted("t"), quoted(column)])
}

fn profile_col(name: &str) -> Expr {
    Expr::CompoundIdentifier(vec![quoted("p"), quoted(name)])
}

struct Renderer<'a> {
    mode: RenderMode<'a>,
    table: &'a CompiledTable,
    settings: &'a Settings,
    /// Profile-join mode: conditions that depend on the user only, computed
    /// once per query in the profile subquery as `p."veil$c<i>"` instead of
    /// once per row.
    /// Each with its SQL text, which identifies repeats.
    hoisted: std::cell::RefCell<Vec<(String, Expr)>>,
}

impl Renderer<'_> {
    fn in_array(&self, column: &str, value: Expr) -> Expr {
        call("array_has", vec![profile_col(column), value])
    }

    /// `e` (over the profile row's own columns) as a column of the profile
    /// subquery: evaluated once per query, replicated per row as a boolean.
    fn hoist(&self, e: Expr) -> Expr {
        let mut hoisted = self.hoisted.borrow_mut();
        let text = e.to_string();
        let i = match hoisted.iter().position(|(t, _)| *t == text) {
            Some(i) => i,
            None => {
                hoisted.push((text, e));
                hoisted.len() - 1
            }
        };
        profile_col(&format!("veil$c{i}"))
    }

    fn condition(&self, c: &Condition) -> B {
        let mut parts = Vec::new();
        match self.mode {
            RenderMode::Inlined(e) => return B::Lit(meets(c, e)),
            RenderMode::Snowflake(x) => {
                // A user with no entry has an empty (Snowflake) or NULL
                // (DataFusion) array: either way the member is not met.
                let has = |f: &str, v: Expr| {
                    call(
                        "COALESCE",
                        vec![
                            call("ARRAY_CONTAINS", vec![v, call(f, vec![])]),
                            Expr::Value(Value::Boolean(false).with_empty_span()),
                        ],
                    )
                };
                parts.extend(
                    c.groups
                        .iter()
                        .map(|g| B::E(has(&x.groups_function, string(g)))),
                );
                parts.extend(
                    c.attributes.iter().map(|(k, v)| {
                        B::E(has(&x.attributes_function, string(&format!("{k}={v}"))))
                    }),
                );
                parts.extend(c.purposes.iter().map(|p| {
                    let role = x
                        .purpose_roles
                        .get(p)
                        .cloned()
                        .unwrap_or_else(|| purpose_role(p));
                    B::E(call("IS_ROLE_IN_SESSION", vec![string(&role)]))
                }));
                parts.extend(
                    c.users
                        .iter()
                        .map(|u| B::E(eq(call("CURRENT_USER", vec![]), string(u)))),
                );
                parts.extend(
                    c.roles
                        .iter()
                        .map(|r| B::E(call("IS_ROLE_IN_SESSION", vec![string(r)]))),
                );
            }
            RenderMode::ProfileJoin => {
                // Over the profile row's own columns; hoisted below.
                let has = |column: &str, v: Expr| {
                    call("array_has", vec![Expr::Identifier(quoted(column)), v])
                };
                parts.extend(c.groups.iter().map(|g| B::E(has("GROUPS", string(g)))));
                parts.extend(
                    c.attributes
                        .iter()
                        .map(|(k, v)| B::E(has("ATTRIBUTES", string(&format!("{k}={v}"))))),
                );
                parts.extend(c.purposes.iter().map(|p| {
                    and(vec![
                        B::E(eq(call("veil_current_purpose", vec![]), string(p))),
                        B::E(has("PURPOSES", string(p))),
                    ])
                }));
                parts.extend(
                    c.users
                        .iter()
                        .map(|u| B::E(eq(call("current_user", vec![]), string(u)))),
                );
                parts.extend(
                    c.roles
                        .iter()
                        .map(|r| B::E(call("is_role_in_session", vec![string(r)]))),
                );
            }
        }
        let combined = match c.operator {
            Operator::Any => or(parts),
            Operator::All => and(parts),
        };
        match (self.mode, combined) {
            (RenderMode::ProfileJoin, B::E(e)) => B::E(self.hoist(e)),
            (_, other) => other,
        }
    }

    fn value_in(&self, column: &str, string_column: bool, source: &ValueSource) -> Result<B> {
        let value = if string_column {
            raw(column)
        } else {
            with_operand("CAST(NULL AS VARCHAR)", raw(column))?
        };
        Ok(match (self.mode, source) {
            (RenderMode::Inlined(e), source) => {
                let texts: Vec<&String> = match source {
                    ValueSource::Attribute(k) => e
                        .attributes
                        .get(k)
                        .map(|vs| vs.iter().collect())
                        .unwrap_or_default(),
                    ValueSource::Groups => e.groups.iter().collect(),
                };
                // An integer column compares as integers, so DataFusion can
                // prune row groups and skip a cast per row. Exact: the text
                // of an integer is canonical, so a value that is not
                // canonical integer text ('01', '1.0') never matched it.
                let integer = self
                    .table
                    .columns
                    .iter()
                    .find(|c| c.name == column)
                    .is_some_and(|c| matches!(c.declared, SnowflakeType::Number { scale: 0, .. }));
                let canonical = |t: &str| t.parse::<i128>().is_ok_and(|n| n.to_string() == t);
                let fits = texts
                    .iter()
                    .all(|t| !canonical(t) || t.parse::<i64>().is_ok());
                let (value, values): (Expr, Vec<Expr>) = if integer && fits {
                    let numbers = texts
                        .iter()
                        .filter(|t| canonical(t))
                        .map(|t| number(t))
                        .collect();
                    (raw(column), numbers)
                } else {
                    (value, texts.iter().map(|t| string(t)).collect())
                };
                if values.is_empty() {
                    B::Lit(false)
                } else {
                    B::E(Expr::InList {
                        expr: Box::new(value),
                        list: values,
                        negated: false,
                    })
                }
            }
            (RenderMode::ProfileJoin, ValueSource::Attribute(k)) => B::E(self.in_array(
                "veil$attributes",
                Expr::BinaryOp {
                    left: Box::new(string(&format!("{k}="))),
                    op: BinaryOperator::StringConcat,
                    right: Box::new(value),
                },
            )),
            (RenderMode::ProfileJoin, ValueSource::Groups) => {
                B::E(self.in_array("veil$groups", value))
            }
            (RenderMode::Snowflake(x), source) => {
                // NULL for a NULL value, else whether the user's array holds it
                // (FALSE when the user has none), as the inlined IN list does.
                let (needle, function) = match source {
                    ValueSource::Attribute(k) => (
                        Expr::BinaryOp {
                            left: Box::new(string(&format!("{k}="))),
                            op: BinaryOperator::StringConcat,
                            right: Box::new(value.clone()),
                        },
                        &x.attributes_function,
                    ),
                    ValueSource::Groups => (value.clone(), &x.groups_function),
                };
                let found = call(
                    "COALESCE",
                    vec![
                        call("ARRAY_CONTAINS", vec![needle, call(function, vec![])]),
                        Expr::Value(Value::Boolean(false).with_empty_span()),
                    ],
                );
                B::E(case(Expr::IsNull(Box::new(value)), null(), found))
            }
        })
    }

    fn username(&self) -> Expr {
        match self.mode {
            RenderMode::Inlined(e) => string(&e.user),
            RenderMode::ProfileJoin | RenderMode::Snowflake(_) => call("current_user", vec![]),
        }
    }

    fn where_expr(&self, expr: &Expr) -> Result<Expr> {
        struct Replace<'r, 'a> {
            r: &'r Renderer<'a>,
            error: Option<VeilError>,
        }
        impl VisitorMut for Replace<'_, '_> {
            type Break = ();
            fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                let Some((name, args)) = at_function(e) else {
                    return ControlFlow::Continue(());
                };
                let r = self.r;
                let rendered = match name.as_str() {
                    "attributevaluescontains" => r
                        .table
                        .columns
                        .iter()
                        .find(|c| c.name == normalize_ident(&args[1]))
                        .map(|c| {
                            r.value_in(
                                &c.name,
                                c.declared.is_string(),
                                &ValueSource::Attribute(args[0].clone()),
                            )
                        })
                        .transpose()
                        .map(|b| b.map(|b| nested(b.into_expr()))),
                    "groupscontains" => r
                        .table
                        .columns
                        .iter()
                        .find(|c| c.name == normalize_ident(&args[0]))
                        .map(|c| r.value_in(&c.name, c.declared.is_string(), &ValueSource::Groups))
                        .transpose()
                        .map(|b| b.map(|b| nested(b.into_expr()))),
                    "hasattribute" => Ok(Some(nested(
                        r.condition(&cond_attr(&args[0], &args[1])).into_expr(),
                    ))),
                    "isingroups" => Ok(Some(nested(
                        r.condition(&cond_groups_all(&args)).into_expr(),
                    ))),
                    "isusingpurpose" => Ok(Some(nested(
                        r.condition(&cond_purpose(&args[0])).into_expr(),
                    ))),
                    "username" => Ok(Some(r.username())),
                    _ => Ok(None),
                };
                match rendered {
                    Ok(Some(new)) => {
                        *e = new;
                        ControlFlow::Continue(())
                    }
                    Ok(None) => {
                        self.error = Some(VeilError::PolicyFailure(format!(
                            "@{name} cannot be evaluated on {}",
                            r.table.name
                        )));
                        ControlFlow::Break(())
                    }
                    Err(err) => {
                        self.error = Some(err);
                        ControlFlow::Break(())
                    }
                }
            }
        }
        let mut out = expr.clone();
        let mut replace = Replace {
            r: self,
            error: None,
        };
        let _ = VisitMut::visit(&mut out, &mut replace);
        match replace.error {
            Some(e) => Err(e),
            None => Ok(nested(out)),
        }
    }

    fn predicate(&self, p: &RowPredicate) -> Result<B> {
        Ok(match p {
            RowPredicate::ValueIn {
                column,
                string_column,
                source,
            } => self.value_in(column, *string_column, source)?,
            RowPredicate::Where(e) => B::E(self.where_expr(e)?),
            RowPredicate::TimeWindow {
                column,
                amount,
                unit,
            } => {
                let unit = match unit {
                    WindowUnit::Minutes => "minutes",
                    WindowUnit::Hours => "hours",
                    WindowUnit::Days => "days",
                    WindowUnit::Years => "years",
                };
                let (ty, now) = match self.mode {
                    RenderMode::Snowflake(_) => ("TIMESTAMP_NTZ", "CURRENT_TIMESTAMP()"),
                    _ => ("TIMESTAMP", "now()"),
                };
                let event = with_operand(&format!("CAST(NULL AS {ty})"), raw(column))?;
                let cutoff = parse_generated_expr(&format!(
                    "CAST({now} AS {ty}) - INTERVAL '{amount} {unit}'"
                ))?;
                B::E(Expr::BinaryOp {
                    left: Box::new(event),
                    op: BinaryOperator::GtEq,
                    right: Box::new(cutoff),
                })
            }
            RowPredicate::Minimize { percent, columns } => self.minimize(percent, columns)?,
            RowPredicate::Purpose(p) => self.condition(&cond_purpose(p)),
            RowPredicate::Sql(expr) => B::E(nested(*expr.clone())),
        })
    }

    /// Minimization (SPEC §2): a row is kept when the first four hex digits
    /// of SHA-256 over the table name and the text of every column are
    /// below `percent` % of 16^4. Written with functions both DataFusion and
    /// Snowflake have, so exported policies keep the same rows.
    fn minimize(&self, percent: &str, columns: &[String]) -> Result<B> {
        let threshold = match veil_udfs::fit::parse_decimal(percent) {
            Some((m, scale)) if m >= 0 => veil_udfs::fit::pow10(scale)
                .and_then(|d| m.checked_mul(65_536).map(|x| x / (100 * d))),
            _ => None,
        }
        .ok_or_else(|| {
            VeilError::PolicyFailure(format!(
                "minimization needs a percent between 0 and 100, got '{percent}'"
            ))
        })?;
        if threshold >= 65_536 {
            return Ok(B::Lit(true));
        }
        if threshold == 0 {
            return Ok(B::Lit(false));
        }
        let mut key = string(&self.table.name.to_string());
        for c in columns {
            let declared = self
                .table
                .columns
                .iter()
                .find(|x| x.name == *c)
                .map(|x| x.declared);
            let text = match declared {
                Some(t) if t.is_string() => raw(c),
                // Epoch seconds: timestamp text differs between engines.
                Some(SnowflakeType::TimestampNtz) => with_operand(
                    "CAST(CAST(EXTRACT(EPOCH FROM NULL) AS BIGINT) AS VARCHAR)",
                    raw(c),
                )?,
                _ => with_operand("CAST(NULL AS VARCHAR)", raw(c))?,
            };
            let text = call("COALESCE", vec![text, string("")]);
            for part in [string("|"), text] {
                key = Expr::BinaryOp {
                    left: Box::new(key),
                    op: BinaryOperator::StringConcat,
                    right: Box::new(part),
                };
            }
        }
        let digest = match self.mode {
            RenderMode::Snowflake(_) => call("SHA2", vec![key, number("256")]),
            _ => call("encode", vec![call("sha256", vec![key]), string("hex")]),
        };
        Ok(B::E(Expr::BinaryOp {
            left: Box::new(call("substr", vec![digest, number("1"), number("4")])),
            op: BinaryOperator::Lt,
            right: Box::new(string(&format!("{threshold:04x}"))),
        }))
    }

    fn mask_expr(
        &self,
        column: &str,
        declared: SnowflakeType,
        mask: &EffectiveMask,
        alone: bool,
    ) -> Result<Expr> {
        if let RenderMode::Snowflake(x) = self.mode {
            return snowflake_mask(
                raw(column),
                declared,
                mask,
                &self.table.name,
                self.settings,
                x,
            );
        }
        let v = raw(column);
        let ty = string(&declared.to_string());
        // Standing alone, NULL and a VARCHAR constant are literals: the raw
        // column is not even read, as in a hand-written view.
        let typed_null = || {
            if alone {
                parse_generated_expr(&format!("CAST(NULL AS {declared})"))
            } else {
                Ok(call("veil_mask_null", vec![raw(column)]))
            }
        };
        if mask.fallback.is_some() {
            return typed_null();
        }
        Ok(match &mask.spec {
            MaskSpec::Hash => {
                let scope = match self.settings.salt_scope {
                    SaltScope::DataSource => self.table.name.to_string().to_uppercase(),
                    SaltScope::Global => String::new(),
                };
                call("veil_mask_hash", vec![v, string(&scope), ty])
            }
            MaskSpec::Constant(c) => match declared {
                SnowflakeType::Varchar(n) if alone => with_operand(
                    "CAST(NULL AS VARCHAR)",
                    string(veil_udfs::fit::truncate_chars(c, n)),
                )?,
                _ => call("veil_mask_constant", vec![v, string(c), ty]),
            },
            MaskSpec::Nullify => typed_null()?,
            MaskSpec::Round(RoundTo::Step(s) | RoundTo::Unit(s)) => {
                call("veil_mask_round", vec![v, string(s), ty])
            }
            MaskSpec::Regex {
                pattern,
                replacement,
            } => call(
                "veil_mask_regex",
                vec![v, string(pattern), string(replacement), ty],
            ),
            MaskSpec::ShowFirst(n) => {
                call("veil_mask_show_first", vec![v, string(&n.to_string()), ty])
            }
            MaskSpec::ShowLast(n) => {
                call("veil_mask_show_last", vec![v, string(&n.to_string()), ty])
            }
            MaskSpec::Sql { expr, .. } => fit(*expr.clone(), declared),
        })
    }

    fn column_expr(
        &self,
        column: &str,
        declared: SnowflakeType,
        applied: &AppliedMask,
    ) -> Result<Expr> {
        // Inside a CASE next to the raw column a mask keeps the column's
        // type (the UDFs); standing alone it may be a literal.
        let masked = |alone| self.mask_expr(column, declared, &applied.mask, alone);
        let others = |alone| match &applied.otherwise {
            Some(o) => self.mask_expr(column, declared, o, alone),
            None => Ok(raw(column)),
        };
        Ok(match &applied.applies {
            Applicability::Everyone => masked(true)?,
            Applicability::EveryoneExcept(c) => match self.condition(c) {
                B::Lit(true) => raw(column),
                B::Lit(false) => masked(true)?,
                // NULL condition → ELSE → masked: fail closed.
                B::E(e) => case(e, raw(column), masked(false)?),
            },
            Applicability::EveryoneWho(c) => match self.condition(c) {
                B::Lit(true) => masked(true)?,
                B::Lit(false) => others(true)?,
                B::E(e) => case(not(B::E(e)).into_expr(), others(false)?, masked(false)?),
            },
        })
    }

    fn row_filter(&self) -> Result<B> {
        let sub = &self.table.subscription;
        let owner = match self.mode {
            RenderMode::Inlined(e) => B::Lit(sub.owners.contains(&e.user)),
            RenderMode::ProfileJoin | RenderMode::Snowflake(_) if sub.owners.is_empty() => {
                B::Lit(false)
            }
            RenderMode::ProfileJoin | RenderMode::Snowflake(_) => B::E(Expr::InList {
                expr: Box::new(call("current_user", vec![])),
                list: sub.owners.iter().map(|o| string(o)).collect(),
                negated: false,
            }),
        };
        let mut grants = vec![B::Lit(sub.anyone)];
        grants.extend(sub.grants.iter().map(|(_, c)| self.condition(c)));
        let mut subscribed = vec![or(grants)];
        subscribed.extend(sub.guardrails.iter().map(|(_, c)| self.condition(c)));
        let mut parts = vec![or(vec![owner, and(subscribed)])];
        for rule in &self.table.row_rules {
            let pred = self.predicate(&rule.predicate)?;
            let applied = match &rule.applies {
                Applicability::Everyone => pred,
                Applicability::EveryoneExcept(c) => match self.condition(c) {
                    B::Lit(true) => B::Lit(true),
                    B::Lit(false) => pred,
                    B::E(e) => B::E(case(e, B::Lit(true).into_expr(), pred.into_expr())),
                },
                Applicability::EveryoneWho(c) => match self.condition(c) {
                    B::Lit(true) => pred,
                    B::Lit(false) => B::Lit(true),
                    B::E(e) => B::E(case(
                        not(B::E(e)).into_expr(),
                        B::Lit(true).into_expr(),
                        pred.into_expr(),
                    )),
                },
            };
            parts.push(applied);
        }
        Ok(and(parts))
    }
}

/// A Snowflake policy body's value fitted to the column's declared type
/// (SPEC §3.3): `VARCHAR(n)` cut to n characters, anything else cast.
pub(crate) fn fit(expr: Expr, declared: SnowflakeType) -> Expr {
    let template = match declared {
        SnowflakeType::Varchar(n) => format!("substr(CAST(NULL AS VARCHAR), 1, {n})"),
        other => format!("CAST(NULL AS {other})"),
    };
    with_operand(&template, nested(expr)).unwrap_or_else(|_| call("veil_mask_null", vec![]))
}

fn cond_attr(k: &str, v: &str) -> Condition {
    Condition {
        groups: vec![],
        attributes: vec![(k.to_string(), v.to_string())],
        purposes: vec![],
        users: vec![],
        roles: vec![],
        operator: Operator::Any,
    }
}

fn cond_groups_all(groups: &[String]) -> Condition {
    Condition {
        groups: groups.to_vec(),
        attributes: vec![],
        purposes: vec![],
        users: vec![],
        roles: vec![],
        operator: Operator::All,
    }
}

fn cond_purpose(p: &str) -> Condition {
    Condition {
        groups: vec![],
        attributes: vec![],
        purposes: vec![p.to_string()],
        users: vec![],
        roles: vec![],
        operator: Operator::Any,
    }
}

/// The object name of a table in generated SQL (always quoted).
pub fn object_name(name: &TableName) -> ObjectName {
    ObjectName::from(vec![
        quoted(&name.database),
        quoted(&name.schema),
        quoted(&name.table),
    ])
}

fn skeleton(mode: RenderMode<'_>) -> Result<Query> {
    let profile = PROFILE_TABLE.map(|p| format!("\"{p}\"")).join(".");
    let sql = match mode {
        RenderMode::Inlined(_) | RenderMode::Snowflake(_) => "SELECT 1 FROM x AS \"t\"".to_string(),
        RenderMode::ProfileJoin => format!(
            "SELECT 1 FROM x AS \"t\" CROSS JOIN (SELECT \"GROUPS\" AS \"veil$groups\", \"ATTRIBUTES\" AS \"veil$attributes\" \
             FROM {profile} WHERE \"USER_NAME\" = current_user()) AS \"p\""
        ),
    };
    let dialect = datafusion::sql::sqlparser::dialect::SnowflakeDialect {};
    let query = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| {
            VeilError::PolicyFailure(format!("internal: policy skeleton does not parse: {e}"))
        })?;
    Ok(*query)
}

/// `SELECT <columns> FROM (inner) AS "t"`, each column either passed
/// through (`None`) or replaced by its mask expression over `t`.
pub(crate) fn masked_projection(
    inner: Query,
    columns: Vec<(String, Option<Expr>)>,
) -> Result<Query> {
    let mut query = skeleton(RenderMode::Inlined(&Entitlements {
        user: String::new(),
        groups: BTreeSet::new(),
        attributes: BTreeMap::new(),
        purposes: BTreeSet::new(),
        current_purpose: None,
        roles_in_session: BTreeSet::new(),
    }))?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(VeilError::PolicyFailure(
            "internal: policy skeleton is not a SELECT".into(),
        ));
    };
    if let Some(from) = select.from.first_mut() {
        from.relation = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(inner),
            alias: Some(datafusion::sql::sqlparser::ast::TableAlias {
                explicit: true,
                name: quoted("t"),
                columns: vec![],
                at: None,
            }),
            sample: None,
        };
    }
    select.projection = columns
        .into_iter()
        .map(|(name, masked)| SelectItem::ExprWithAlias {
            expr: masked.unwrap_or_else(|| raw(&name)),
            alias: quoted(&name),
        })
        .collect();
    Ok(query)
}

/// The policy relation of `table` as a SQL query over its raw relation.
/// Fails closed when a policy on the table cannot be evaluated.
pub fn policy_query(
    table: &CompiledTable,
    settings: &Settings,
    mode: RenderMode<'_>,
) -> Result<Query> {
    if let Some(data_error) = &table.data_error {
        return Err(VeilError::PolicyFailure(data_error.clone()));
    }
    if let Some(failure) = table.failures.first() {
        return Err(VeilError::PolicyFailure(format!(
            "{failure}; queries on {} are denied",
            table.name
        )));
    }
    let r = Renderer {
        mode,
        table,
        settings,
        hoisted: Default::default(),
    };
    let mut query = skeleton(mode)?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(VeilError::PolicyFailure(
            "internal: policy skeleton is not a SELECT".into(),
        ));
    };
    if let Some(TableFactor::Table { name, .. }) = select.from.first_mut().map(|f| &mut f.relation)
    {
        *name = object_name(&table.name);
    }
    select.projection = table
        .columns
        .iter()
        .map(|c| {
            Ok(SelectItem::ExprWithAlias {
                expr: match &c.mask {
                    Some(m) => r.column_expr(&c.name, c.declared, m)?,
                    None => raw(&c.name),
                },
                alias: quoted(&c.name),
            })
        })
        .collect::<Result<_>>()?;
    select.selection = match r.row_filter()? {
        B::Lit(true) => None,
        other => Some(other.into_expr()),
    };
    let hoisted = r.hoisted.into_inner();
    if !hoisted.is_empty() {
        let profile = select
            .from
            .first_mut()
            .and_then(|f| f.joins.first_mut())
            .map(|j| &mut j.relation);
        let Some(TableFactor::Derived { subquery, .. }) = profile else {
            return Err(VeilError::PolicyFailure(
                "internal: profile-join skeleton has no profile subquery".into(),
            ));
        };
        let SetExpr::Select(inner) = subquery.body.as_mut() else {
            return Err(VeilError::PolicyFailure(
                "internal: profile subquery is not a SELECT".into(),
            ));
        };
        for (i, (_, expr)) in hoisted.into_iter().enumerate() {
            inner.projection.push(SelectItem::ExprWithAlias {
                expr,
                alias: quoted(&format!("veil$c{i}")),
            });
        }
    }
    Ok(query)
}

/// `a || b || ...`.
fn concat(parts: Vec<Expr>) -> Expr {
    parts
        .into_iter()
        .reduce(|left, right| Expr::BinaryOp {
            left: Box::new(left),
            op: BinaryOperator::StringConcat,
            right: Box::new(right),
        })
        .unwrap_or_else(|| string(""))
}

/// The hidden characters of a partial mask (SPEC rule 20), for ASCII text:
/// lower-case letters → `x`, upper-case → `X`, digits → `n`.
fn hide_classes(v: Expr) -> Expr {
    [("[a-z]", "x"), ("[A-Z]", "X"), ("[0-9]", "n")]
        .into_iter()
        .fold(v, |acc, (pattern, class)| {
            call("REGEXP_REPLACE", vec![acc, string(pattern), string(class)])
        })
}

/// A Rust-regex replacement (`$1`, `${1}`, `$$`) in Snowflake's syntax
/// (`\1`, and `$` is literal).
fn replacement_to_snowflake(rust: &str) -> String {
    let mut out = String::with_capacity(rust.len());
    let mut chars = rust.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                out.push('$');
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.push('\\');
                out.push_str(&name);
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('\\');
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    out.push(*d);
                    chars.next();
                }
            }
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

/// The Snowflake SQL of a Veil mask on value `v` of a `declared` column of
/// `table`: the same value Veil's masking functions compute (SPEC rules
/// 12–20), for `veil export snowflake`.
pub fn snowflake_mask(
    v: Expr,
    declared: SnowflakeType,
    mask: &EffectiveMask,
    table: &TableName,
    settings: &Settings,
    names: &SnowflakeExport,
) -> Result<Expr> {
    if mask.fallback.is_some() {
        return Ok(null());
    }
    let fit_text = |e: Expr| match declared {
        SnowflakeType::Varchar(n) => call("LEFT", vec![e, number(&n.to_string())]),
        _ => e,
    };
    Ok(match &mask.spec {
        MaskSpec::Nullify => null(),
        MaskSpec::Hash => {
            let mut parts = vec![call(&names.secret_function, vec![])];
            if settings.salt_scope == SaltScope::DataSource {
                parts.push(string(&format!("/{}", table.to_string().to_uppercase())));
            }
            parts.push(v);
            let hash = call("SHA2", vec![concat(parts), number("256")]);
            match declared {
                SnowflakeType::Varchar(n) if n < 64 => fit_text(hash),
                _ => hash,
            }
        }
        MaskSpec::Constant(c) => match declared {
            SnowflakeType::Varchar(n) => string(veil_udfs::fit::truncate_chars(c, n)),
            other => with_operand(&format!("CAST(NULL AS {other})"), string(c))?,
        },
        MaskSpec::Round(RoundTo::Unit(u)) => call("DATE_TRUNC", vec![string(&u.to_uppercase()), v]),
        MaskSpec::Round(RoundTo::Step(step)) => match declared {
            SnowflakeType::Number { precision, scale } => {
                let (m, step_scale) = veil_udfs::fit::parse_decimal(step)
                    .filter(|(m, _)| *m > 0)
                    .ok_or_else(|| {
                        VeilError::PolicyFailure(format!(
                            "round needs a positive step, got '{step}'"
                        ))
                    })?;
                // Both operands get a scale of at least 1, so DataFusion (which
                // holds NUMBER(p,0) as integers) divides exactly, as
                // Snowflake does for every NUMBER.
                let digits = m.to_string().len() as u32;
                let step_type = format!(
                    "NUMBER({}, {})",
                    (digits.max(step_scale) + 1).min(38),
                    step_scale + 1
                );
                let step_expr = with_operand(&format!("CAST(NULL AS {step_type})"), string(step))?;
                let value = with_operand(
                    &format!(
                        "CAST(NULL AS NUMBER({}, {}))",
                        (u32::from(precision) + 1).min(38),
                        (u32::from(scale) + 1).min(37)
                    ),
                    v,
                )?;
                let divided = Expr::BinaryOp {
                    left: Box::new(value),
                    op: BinaryOperator::Divide,
                    right: Box::new(step_expr.clone()),
                };
                let mut rounded = Expr::BinaryOp {
                    left: Box::new(call("ROUND", vec![divided])),
                    op: BinaryOperator::Multiply,
                    right: Box::new(step_expr),
                };
                if step_scale > u32::from(scale) {
                    rounded = call("ROUND", vec![rounded, number(&scale.to_string())]);
                }
                // The largest step multiple that fits NUMBER(p, s) (SPEC rule 13).
                let huge = veil_udfs::fit::pow10(u32::from(precision) + 1).unwrap_or(i128::MAX);
                let largest = veil_udfs::fit::round_scaled(
                    huge,
                    u32::from(scale),
                    (m, step_scale),
                    Some(precision),
                )
                .ok_or_else(|| {
                    VeilError::PolicyFailure(format!(
                        "rounding to {step} cannot be fitted to {declared}"
                    ))
                })?;
                let bound = decimal_text(largest, u32::from(scale));
                let negative = decimal_text(-largest, u32::from(scale));
                call(
                    "LEAST",
                    vec![
                        call("GREATEST", vec![rounded, number(&negative)]),
                        number(&bound),
                    ],
                )
            }
            _ => {
                let step_expr = number(step);
                Expr::BinaryOp {
                    left: Box::new(call(
                        "ROUND",
                        vec![Expr::BinaryOp {
                            left: Box::new(v),
                            op: BinaryOperator::Divide,
                            right: Box::new(step_expr.clone()),
                        }],
                    )),
                    op: BinaryOperator::Multiply,
                    right: Box::new(step_expr),
                }
            }
        },
        MaskSpec::Regex {
            pattern,
            replacement,
        } => fit_text(call(
            "REGEXP_REPLACE",
            vec![
                v,
                string(pattern),
                string(&replacement_to_snowflake(replacement)),
            ],
        )),
        MaskSpec::ShowFirst(n) => {
            let n = n.to_string();
            fit_text(concat(vec![
                call("LEFT", vec![v.clone(), number(&n)]),
                hide_classes(call(
                    "SUBSTR",
                    vec![
                        v,
                        Expr::BinaryOp {
                            left: Box::new(number(&n)),
                            op: BinaryOperator::Plus,
                            right: Box::new(number("1")),
                        },
                    ],
                )),
            ]))
        }
        MaskSpec::ShowLast(n) => {
            let n = n.to_string();
            let hidden = call(
                "GREATEST",
                vec![
                    Expr::BinaryOp {
                        left: Box::new(call("LENGTH", vec![v.clone()])),
                        op: BinaryOperator::Minus,
                        right: Box::new(number(&n)),
                    },
                    number("0"),
                ],
            );
            fit_text(concat(vec![
                hide_classes(call("LEFT", vec![v.clone(), hidden])),
                call("RIGHT", vec![v, number(&n)]),
            ]))
        }
        MaskSpec::Sql { policy, .. } => {
            return Err(VeilError::PolicyFailure(format!(
                "masking policy {policy} is already Snowflake DDL; export covers Immuta-style policies"
            )));
        }
    })
}

/// A scaled integer as decimal text (`12345`, scale 2 → `123.45`).
fn decimal_text(value: i128, scale: u32) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if value < 0 { "-" } else { "" })
}

/// A table's policies as Snowflake SQL: per column its mask (`None` when
/// unmasked), and the row filter (`None` when every row shows).
pub type SnowflakePolicies = (Vec<(String, Option<Expr>)>, Option<Expr>);

/// The masks and row filter of `table` as Snowflake SQL over its raw columns
/// (`t."COL"`): per column its mask expression (`None` when unmasked), and
/// the row filter (`None` when every row shows).
pub fn snowflake_policies(
    table: &CompiledTable,
    settings: &Settings,
    names: &SnowflakeExport,
) -> Result<SnowflakePolicies> {
    if let Some(failure) = table.failures.first() {
        return Err(VeilError::PolicyFailure(format!(
            "{failure}; Veil denies queries on {}, so it does not export it",
            table.name
        )));
    }
    let r = Renderer {
        mode: RenderMode::Snowflake(names),
        table,
        settings,
        hoisted: Default::default(),
    };
    let mut columns = Vec::with_capacity(table.columns.len());
    for c in &table.columns {
        let masked = match &c.mask {
            Some(m) => Some(r.column_expr(&c.name, c.declared, m)?),
            None => None,
        };
        columns.push((c.name.clone(), masked));
    }
    let filter = match r.row_filter()? {
        B::Lit(true) => None,
        other => Some(other.into_expr()),
    };
    Ok((columns, filter))
}
