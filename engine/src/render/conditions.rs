//! Conditions, row predicates, minimization and the row filter of a policy
//! relation (its `WHERE`), over the raw columns and the user's entitlements.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Value, VisitMut, VisitorMut};

use crate::compile::{RowPredicate, ValueSource, at_function};
use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ident::{normalize_ident, parse_generated_expr, quoted, with_operand};

use super::*;
use crate::sql::ast::*;

/// The integer `text` is the canonical text of (no sign but `-`, no
/// leading zero, no spaces or decimals), if any: the only text of an
/// integer column's value that an attribute value can equal.
pub(crate) fn canonical_integer(text: &str) -> Option<i128> {
    text.parse::<i128>().ok().filter(|n| n.to_string() == text)
}

impl Renderer<'_> {
    pub(super) fn in_array(&self, column: &str, value: Expr) -> Expr {
        call("array_has", vec![profile_col(column), value])
    }

    /// `e` (over the profile row's own columns) as a column of the profile
    /// subquery: evaluated once per query, replicated per row as a boolean.
    pub(super) fn hoist(&self, e: Expr) -> Expr {
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

    pub(super) fn condition(&self, c: &Condition) -> B {
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

    pub(super) fn value_in(
        &self,
        column: &str,
        string_column: bool,
        source: &ValueSource,
    ) -> Result<B> {
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
                let canonical = |t: &str| canonical_integer(t).is_some();
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

    pub(super) fn username(&self) -> Expr {
        match self.mode {
            RenderMode::Inlined(e) => string(&e.user),
            RenderMode::ProfileJoin | RenderMode::Snowflake(_) => call("current_user", vec![]),
        }
    }

    pub(super) fn where_expr(&self, expr: &Expr) -> Result<Expr> {
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

    /// `match_attribute` / `match_groups` in profile-join mode: whether the
    /// user holds the row's value, as an `EXISTS` probe of
    /// `VEIL.SYSTEM.USER_VALUES` (a hash probe of the value, not a scan of
    /// the user's list on every row: a session evaluates the probe's
    /// values once, `enforce/profile_lookups.rs`). Never NULL: a NULL value
    /// is held by nobody, the same rows as the inlined `IN` list.
    fn value_probe(&self, column: &str, string_column: bool, source: &ValueSource) -> Result<B> {
        let (kind, key) = match source {
            ValueSource::Attribute(k) => ("attribute", k.as_str()),
            ValueSource::Groups => ("group", ""),
        };
        let value = if string_column {
            raw(column)
        } else {
            with_operand("CAST(NULL AS VARCHAR)", raw(column))?
        };
        let table = [PROFILE_TABLE[0], PROFILE_TABLE[1], USER_VALUES_TABLE]
            .map(|p| format!("\"{p}\""))
            .join(".");
        let sql = format!(
            "EXISTS (SELECT 1 FROM {table} AS \"veil$v\" WHERE \"veil$v\".\"USER_NAME\" = current_user() \
             AND \"veil$v\".\"KIND\" = {} AND \"veil$v\".\"KEY\" = {} AND \"veil$v\".\"VALUE\" = {value})",
            string(kind),
            string(key),
        );
        Ok(B::E(parse_generated_expr(&sql)?))
    }

    pub(super) fn predicate(&self, p: &RowPredicate) -> Result<B> {
        Ok(match p {
            RowPredicate::ValueIn {
                column,
                string_column,
                source,
            } if matches!(self.mode, RenderMode::ProfileJoin) => {
                self.value_probe(column, *string_column, source)?
            }
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
    pub(super) fn minimize(&self, percent: &str, columns: &[String]) -> Result<B> {
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
        let key = self.row_key(columns)?;
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

    /// A row's identity as text: the table name and each of `columns`' raw
    /// text, `|`-separated (NULL as empty); minimization hashes it, and
    /// randomized response seeds its draws with it.
    pub(super) fn row_key(&self, columns: &[String]) -> Result<Expr> {
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
        Ok(key)
    }

    pub(super) fn row_filter(&self) -> Result<B> {
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
            // In profile-join mode the rule is an OR, not a CASE: the
            // probe is a subquery, which DataFusion plans (as a mark join)
            // in a disjunction but not inside CASE. In a WHERE clause the two
            // pass the same rows: a NULL condition passes the row exactly
            // when the rule's predicate does, either way.
            let profile_join = matches!(self.mode, RenderMode::ProfileJoin);
            let applied = match &rule.applies {
                Applicability::Everyone => pred,
                Applicability::EveryoneExcept(c) => match self.condition(c) {
                    B::Lit(true) => B::Lit(true),
                    B::Lit(false) => pred,
                    B::E(e) if profile_join => or(vec![B::E(e), pred]),
                    B::E(e) => B::E(case(e, B::Lit(true).into_expr(), pred.into_expr())),
                },
                Applicability::EveryoneWho(c) => match self.condition(c) {
                    B::Lit(true) => pred,
                    B::Lit(false) => B::Lit(true),
                    B::E(e) if profile_join => or(vec![not(B::E(e)), pred]),
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

pub(super) fn cond_attr(k: &str, v: &str) -> Condition {
    Condition {
        groups: vec![],
        attributes: vec![(k.to_string(), v.to_string())],
        purposes: vec![],
        users: vec![],
        roles: vec![],
        operator: Operator::Any,
    }
}

pub(super) fn cond_groups_all(groups: &[String]) -> Condition {
    Condition {
        groups: groups.to_vec(),
        attributes: vec![],
        purposes: vec![],
        users: vec![],
        roles: vec![],
        operator: Operator::All,
    }
}

pub(super) fn cond_purpose(p: &str) -> Condition {
    Condition {
        groups: vec![],
        attributes: vec![],
        purposes: vec![p.to_string()],
        users: vec![],
        roles: vec![],
        operator: Operator::Any,
    }
}
