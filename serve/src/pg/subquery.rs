//! Correlated scalar subqueries that PostgreSQL clients send and DataFusion
//! cannot decorrelate, rewritten into ones it can, with the same answer.
//!
//! psql's `\d TABLE` asks for each column's default and collation with
//! subqueries like
//! `(SELECT d.x FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND a.atthasdef)`
//! and `(... WHERE c.oid = a.attcollation AND a.attcollation <> t.typcollation)`.
//! DataFusion plans a correlated scalar subquery only when every condition
//! that names the outer query is an equality, so two rewrites apply:
//! - a condition naming only the outer query moves outside:
//!   `CASE WHEN a.atthasdef THEN (SELECT … WHERE d.adrelid = a.attrelid) END`;
//! - in any other condition, an outer column that an equality ties to an
//!   inner one is replaced by that inner one
//!   (`c.oid = a.attcollation` makes `a.attcollation <> t.typcollation`
//!   `c.oid <> t.typcollation`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArguments, Ident, JoinOperator, OrderByKind, Query, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, SetOperator, Statement, TableFactor, Value,
    visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

use super::catalog::EMPTY_CATALOGS;

/// A `SELECT` that must answer no rows — it reads a catalog that is always
/// empty in Veil, directly, inner-joined, or through a derived table that
/// is itself such a `SELECT` — answers no rows whatever its select list and
/// conditions say. So its computed select-list items become typed NULLs
/// under their names and its conditions `FALSE`, and the query plans. psql's
/// `\\d` asks `pg_policy` with a correlated `ARRAY(SELECT … ANY(pol.polroles))`,
/// `pg_publication` with `generate_series` subqueries; pgjdbc's
/// `getPrimaryKeys` reads `pg_index` through `_pg_expandarray(...)` composites.
pub(super) fn over_empty_catalog(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        empty_query(query);
    }
}

/// Whether `query` answers no rows (rewriting it as above when so).
fn empty_query(query: &mut Query) -> bool {
    empty_body(&mut query.body)
}

fn empty_body(body: &mut SetExpr) -> bool {
    match body {
        SetExpr::SetOperation {
            left, right, op, ..
        } => {
            let l = empty_body(left);
            let r = empty_body(right);
            match op {
                SetOperator::Union => l && r,
                SetOperator::Intersect => l || r,
                _ => l,
            }
        }
        SetExpr::Query(q) => empty_query(q),
        SetExpr::Select(select) => {
            let mut empty = false;
            for t in &mut select.from {
                empty |= empty_relation(&mut t.relation);
                for j in &mut t.joins {
                    let inner = matches!(
                        j.join_operator,
                        JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
                    );
                    empty |= empty_relation(&mut j.relation) && inner;
                }
            }
            if empty {
                for item in &mut select.projection {
                    null_computed(item);
                }
                if select.selection.is_some() {
                    select.selection = parse_expr("FALSE").ok();
                }
            }
            empty
        }
        _ => false,
    }
}

/// Whether a relation answers no rows: an always-empty catalog, or a
/// derived table that is an empty `SELECT` (rewritten).
fn empty_relation(relation: &mut TableFactor) -> bool {
    match relation {
        TableFactor::Table {
            name, args: None, ..
        } => name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
            EMPTY_CATALOGS
                .iter()
                .any(|(t, _)| i.value.eq_ignore_ascii_case(t))
        }),
        TableFactor::Derived { subquery, .. } => empty_query(subquery),
        _ => false,
    }
}

/// A computed select-list item as a typed NULL under the same name; plain
/// columns, literals and wildcards stay (their types are the catalog's).
fn null_computed(item: &mut SelectItem) {
    let (expr, name) = match item {
        SelectItem::UnnamedExpr(e) => {
            let name = match e {
                Expr::Function(f) => f
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| Ident::with_quote('"', i.value.clone())),
                _ => None,
            };
            (e, name)
        }
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
        _ => return,
    };
    if matches!(
        expr,
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_)
    ) {
        return;
    }
    // `ARRAY(SELECT …)` is an array, anything else one value.
    let array =
        matches!(expr, Expr::Function(f) if matches!(f.args, FunctionArguments::Subquery(_)));
    let null = if array {
        "CAST(NULL AS TEXT[])"
    } else {
        "CAST(NULL AS TEXT)"
    };
    let Ok(null) = parse_expr(null) else {
        return;
    };
    *item = match name {
        Some(alias) => SelectItem::ExprWithAlias { expr: null, alias },
        None => SelectItem::UnnamedExpr(null),
    };
}

/// Renames the select-list items whose names would repeat (psql
/// selects `pubname, NULL, NULL`; DataFusion wants distinct names): the
/// second and later get `?column?N`, as PostgreSQL calls an unnamed column.
pub(super) fn unique_names(body: &mut SetExpr) {
    match body {
        SetExpr::SetOperation { left, right, .. } => {
            unique_names(left);
            unique_names(right);
        }
        SetExpr::Select(select) => {
            // `n.oid, n.*` (DBeaver): the wildcard already has `oid`.
            let starred: BTreeSet<String> = select
                .projection
                .iter()
                .filter_map(|item| match item {
                    SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(n),
                        _,
                    ) => {
                        n.0.last()
                            .and_then(|p| p.as_ident())
                            .map(|i| i.value.to_lowercase())
                    }
                    _ => None,
                })
                .collect();
            select.projection.retain(|item| {
                !matches!(item, SelectItem::UnnamedExpr(e) if qualifier(e).is_some_and(|q| starred.contains(&q)))
            });
            let mut seen = BTreeSet::new();
            for (i, item) in select.projection.iter_mut().enumerate() {
                let (expr, name) = match item {
                    SelectItem::UnnamedExpr(e) => (e.clone(), e.to_string()),
                    SelectItem::ExprWithAlias { expr, alias } => {
                        (expr.clone(), alias.value.clone())
                    }
                    _ => continue,
                };
                if !seen.insert(name) {
                    *item = SelectItem::ExprWithAlias {
                        expr,
                        alias: Ident::with_quote('"', format!("?column?{}", i + 1)),
                    };
                }
            }
        }
        _ => {}
    }
}

/// One expression in PostgreSQL's dialect.
fn parse_expr(sql: &str) -> Result<Expr, ParserError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
}

/// The aggregate functions a scalar subquery's one column may already be.
const AGGREGATES: &[&str] = &[
    "max",
    "min",
    "count",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
];

/// Whether `expr` is a call of an aggregate function (DataFusion refuses an
/// aggregate nested in another).
pub(super) fn is_aggregate(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f)
        if f.name.0.last().and_then(|p| p.as_ident())
            .is_some_and(|i| AGGREGATES.contains(&i.value.to_lowercase().as_str())))
}

/// Rewrites PostgreSQL's array constructor `ARRAY(SELECT e FROM … ORDER BY …)`
/// (psql's `\d` lists policy roles with one) into the scalar subquery
/// `(SELECT array_agg(e ORDER BY …) FROM …)`, then decorrelates that.
pub(super) fn array_constructor(expr: &mut Expr) {
    let Expr::Function(f) = expr else {
        return;
    };
    let is_array = f.name.0.len() == 1
        && f.name.0[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case("array"));
    let FunctionArguments::Subquery(query) = &f.args else {
        return;
    };
    if !is_array {
        return;
    }
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }] =
        select.projection.as_mut_slice()
    else {
        return;
    };
    let order = match query.order_by.take().map(|o| o.kind) {
        Some(OrderByKind::Expressions(list)) => {
            let keys: Vec<String> = list
                .iter()
                .map(|o| match &o.expr {
                    // `ORDER BY 1`: the one column.
                    Expr::Value(v) if matches!(v.value, Value::Number(ref n, _) if n == "1") => {
                        format!("{e}{}", o.options)
                    }
                    other => format!("{other}{}", o.options),
                })
                .collect();
            format!(" ORDER BY {}", keys.join(", "))
        }
        _ => String::new(),
    };
    let Ok(aggregated) = parse_expr(&format!("array_agg({e}{order})")) else {
        return;
    };
    *e = aggregated;
    *expr = Expr::Subquery(query);
    decorrelate(expr);
}

/// Rewrites `expr` when it is a scalar subquery with conditions DataFusion
/// cannot decorrelate; leaves every other expression as it is.
pub(super) fn decorrelate(expr: &mut Expr) {
    let Expr::Subquery(query) = expr else {
        return;
    };
    let hoisted = rewrite_conditions(query);
    if hoisted.is_empty() {
        return;
    }
    let condition = hoisted
        .iter()
        .map(|c| format!("({c})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    if let Ok(case) = parse_expr(&format!("CASE WHEN {condition} THEN ({query}) END")) {
        *expr = case;
    }
}

/// Takes the outer-only conditions out of `query`'s `WHERE` (returning
/// them) and rewrites the others' outer columns to equal inner ones.
fn rewrite_conditions(query: &mut Query) -> Vec<Expr> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Vec::new();
    };
    let Some(selection) = select.selection.take() else {
        return Vec::new();
    };
    let inner: BTreeSet<String> = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(relation_name)
        .collect();
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);

    // Outer column → the inner column an equality ties it to.
    let mut equal: BTreeMap<String, Expr> = BTreeMap::new();
    for c in &conjuncts {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        {
            for (a, b) in [(left, right), (right, left)] {
                if let (Some(qa), Some(qb)) = (qualifier(a), qualifier(b))
                    && !inner.contains(&qa)
                    && inner.contains(&qb)
                {
                    equal.entry(a.to_string()).or_insert_with(|| (**b).clone());
                }
            }
        }
    }

    let mut hoisted = Vec::new();
    let mut kept = Vec::new();
    for mut c in conjuncts {
        let named = qualifiers(&c);
        let outer_only = !named.is_empty() && named.iter().all(|q| !inner.contains(q));
        if outer_only {
            hoisted.push(c);
            continue;
        }
        let is_equality = matches!(
            c,
            Expr::BinaryOp {
                op: BinaryOperator::Eq,
                ..
            }
        );
        if !is_equality && named.iter().any(|q| !inner.contains(q)) {
            let _ = visit_expressions_mut(&mut c, |e| {
                if qualifier(e).is_some()
                    && let Some(replacement) = equal.get(&e.to_string())
                {
                    *e = replacement.clone();
                }
                ControlFlow::<()>::Continue(())
            });
        }
        kept.push(c);
    }
    select.selection = kept.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    hoisted
}

/// The name a relation is referred to by: its alias, else its last name part.
fn relation_name(relation: &TableFactor) -> Option<String> {
    match relation {
        TableFactor::Table { name, alias, .. } => Some(match alias {
            Some(a) => a.name.value.to_lowercase(),
            None => name.0.last()?.as_ident()?.value.to_lowercase(),
        }),
        TableFactor::Derived { alias, .. } => alias.as_ref().map(|a| a.name.value.to_lowercase()),
        _ => None,
    }
}

/// Splits a chain of `AND`s (and their parentheses) into its conditions.
fn split_and(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner) if matches!(*inner, Expr::BinaryOp { .. }) => split_and(*inner, out),
        other => out.push(other),
    }
}

/// The qualifier of `t.col`, lowercased; `None` for anything else.
fn qualifier(expr: &Expr) -> Option<String> {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some(parts[0].value.to_lowercase()),
        _ => None,
    }
}

/// Every qualifier a condition names.
fn qualifiers(expr: &Expr) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = visit_expressions(expr, |e| {
        out.extend(qualifier(e));
        ControlFlow::<()>::Continue(())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut e = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap();
        decorrelate(&mut e);
        e.to_string()
    }

    #[test]
    fn an_outer_only_condition_moves_outside_the_subquery() {
        assert_eq!(
            rewritten(
                "(SELECT d.adbin FROM pg_attrdef d \
                 WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef)"
            ),
            "CASE WHEN (a.atthasdef) THEN (SELECT d.adbin FROM pg_attrdef d \
             WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) END"
        );
    }

    #[test]
    fn an_outer_column_tied_by_an_equality_becomes_the_inner_one() {
        assert_eq!(
            rewritten(
                "(SELECT c.collname FROM pg_collation c, pg_type t \
                 WHERE c.oid = a.attcollation AND t.oid = a.atttypid \
                 AND a.attcollation <> t.typcollation)"
            ),
            "(SELECT c.collname FROM pg_collation c, pg_type t \
             WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND c.oid <> t.typcollation)"
        );
    }

    #[test]
    fn an_array_constructor_becomes_an_aggregated_subquery() {
        let mut e = Parser::new(&PostgreSqlDialect {})
            .try_with_sql("array(select rolname from pg_roles where oid = 10 order by 1)")
            .unwrap()
            .parse_expr()
            .unwrap();
        array_constructor(&mut e);
        assert_eq!(
            e.to_string(),
            "(SELECT array_agg(rolname ORDER BY rolname) FROM pg_roles WHERE oid = 10)"
        );
    }

    #[test]
    fn subqueries_over_an_empty_catalog_become_nulls() {
        let mut st = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT pol.polname, array_to_string(array(select rolname from pg_roles \
             where oid = any (pol.polroles) order by 1), ',') FROM pg_catalog.pg_policy pol",
        )
        .unwrap()
        .remove(0);
        over_empty_catalog(&mut st);
        assert_eq!(
            st.to_string(),
            "SELECT pol.polname, CAST(NULL AS TEXT) AS \"array_to_string\" \
             FROM pg_catalog.pg_policy pol"
        );
    }

    #[test]
    fn an_uncorrelated_subquery_is_left_alone() {
        let sql = "(SELECT max(t.oid) FROM pg_type AS t WHERE t.typname = 'int4')";
        assert_eq!(rewritten(sql), sql);
    }
}
