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
}

impl Renderer<'_> {
    fn in_array(&self, column: &str, value: Expr) -> Expr {
        call("array_has", vec![profile_col(column), value])
    }

    fn condition(&self, c: &Condition) -> B {
        let mut parts = Vec::new();
        match self.mode {
            RenderMode::Inlined(e) => return B::Lit(meets(c, e)),
            RenderMode::ProfileJoin => {
                parts.extend(
                    c.groups
                        .iter()
                        .map(|g| B::E(self.in_array("veil$groups", string(g)))),
                );
                parts.extend(c.attributes.iter().map(|(k, v)| {
                    B::E(self.in_array("veil$attributes", string(&format!("{k}={v}"))))
                }));
                parts.extend(c.purposes.iter().map(|p| {
                    and(vec![
                        B::E(eq(call("veil_current_purpose", vec![]), string(p))),
                        B::E(self.in_array("veil$purposes", string(p))),
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
        match c.operator {
            Operator::Any => or(parts),
            Operator::All => and(parts),
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
                let values: Vec<Expr> = match source {
                    ValueSource::Attribute(k) => e
                        .attributes
                        .get(k)
                        .map(|vs| vs.iter().map(|v| string(v)).collect())
                        .unwrap_or_default(),
                    ValueSource::Groups => e.groups.iter().map(|g| string(g)).collect(),
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
        })
    }

    fn username(&self) -> Expr {
        match self.mode {
            RenderMode::Inlined(e) => string(&e.user),
            RenderMode::ProfileJoin => call("current_user", vec![]),
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
                let event = with_operand("CAST(NULL AS TIMESTAMP)", raw(column))?;
                let cutoff = parse_generated_expr(&format!(
                    "CAST(now() AS TIMESTAMP) - INTERVAL '{amount} {unit}'"
                ))?;
                B::E(Expr::BinaryOp {
                    left: Box::new(event),
                    op: BinaryOperator::GtEq,
                    right: Box::new(cutoff),
                })
            }
            RowPredicate::Minimize { percent, columns } => {
                let mut args = vec![string(percent), string(&self.table.name.to_string())];
                args.extend(columns.iter().map(|c| raw(c)));
                B::E(call("veil_minimize", args))
            }
            RowPredicate::Purpose(p) => self.condition(&cond_purpose(p)),
            RowPredicate::Sql(expr) => B::E(nested(*expr.clone())),
        })
    }

    fn mask_expr(&self, column: &str, declared: SnowflakeType, mask: &EffectiveMask) -> Expr {
        let v = raw(column);
        let ty = string(&declared.to_string());
        if mask.fallback.is_some() {
            return call("veil_mask_null", vec![v]);
        }
        match &mask.spec {
            MaskSpec::Hash => {
                let scope = match self.settings.salt_scope {
                    SaltScope::DataSource => self.table.name.to_string().to_uppercase(),
                    SaltScope::Global => String::new(),
                };
                call("veil_mask_hash", vec![v, string(&scope), ty])
            }
            MaskSpec::Constant(c) => call("veil_mask_constant", vec![v, string(c), ty]),
            MaskSpec::Nullify => call("veil_mask_null", vec![v]),
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
        }
    }

    fn column_expr(&self, column: &str, declared: SnowflakeType, applied: &AppliedMask) -> Expr {
        let masked = || self.mask_expr(column, declared, &applied.mask);
        let others = || match &applied.otherwise {
            Some(o) => self.mask_expr(column, declared, o),
            None => raw(column),
        };
        match &applied.applies {
            Applicability::Everyone => masked(),
            Applicability::EveryoneExcept(c) => match self.condition(c) {
                B::Lit(true) => raw(column),
                B::Lit(false) => masked(),
                // NULL condition → ELSE → masked: fail closed.
                B::E(e) => case(e, raw(column), masked()),
            },
            Applicability::EveryoneWho(c) => match self.condition(c) {
                B::Lit(true) => masked(),
                B::Lit(false) => others(),
                B::E(e) => case(not(B::E(e)).into_expr(), others(), masked()),
            },
        }
    }

    fn row_filter(&self) -> Result<B> {
        let sub = &self.table.subscription;
        let owner = match self.mode {
            RenderMode::Inlined(e) => B::Lit(sub.owners.contains(&e.user)),
            RenderMode::ProfileJoin if sub.owners.is_empty() => B::Lit(false),
            RenderMode::ProfileJoin => B::E(Expr::InList {
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
        RenderMode::Inlined(_) => "SELECT 1 FROM x AS \"t\"".to_string(),
        RenderMode::ProfileJoin => format!(
            "SELECT 1 FROM x AS \"t\" CROSS JOIN (SELECT \"GROUPS\" AS \"veil$groups\", \"ATTRIBUTES\" AS \"veil$attributes\", \
             \"PURPOSES\" AS \"veil$purposes\" FROM {profile} WHERE \"USER_NAME\" = current_user()) AS \"p\""
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
        .map(|c| SelectItem::ExprWithAlias {
            expr: match &c.mask {
                Some(m) => r.column_expr(&c.name, c.declared, m),
                None => raw(&c.name),
            },
            alias: quoted(&c.name),
        })
        .collect();
    select.selection = match r.row_filter()? {
        B::Lit(true) => None,
        other => Some(other.into_expr()),
    };
    Ok(query)
}
