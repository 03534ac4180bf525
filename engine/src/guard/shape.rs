//! After parsing: long `AND`/`OR` chains rebalanced in the AST (same
//! operands, same order), absurd `LIMIT`s dropped, and expression depth,
//! subquery nesting, CTE count and UNION branches bounded.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, Statement, Value, ValueWithSpan, Visit, VisitMut,
    Visitor, VisitorMut,
};

use super::{
    MAX_CTES, MAX_EXPR_DEPTH, MAX_LIMIT, MAX_SET_BRANCHES, MAX_SUBQUERY_DEPTH, too_complex,
};
use crate::error::{Result, VeilError};

/// Rebalances long `AND`/`OR` chains, drops absurd `LIMIT`s, and refuses
/// statements deeper or larger than the limits. Run it on the planning
/// stack: it recurses as deep as the statement.
pub fn shape_statement(statement: &mut Statement) -> Result<()> {
    let _ = VisitMut::visit(statement, &mut Shape);
    let mut depth = Depth::default();
    if let ControlFlow::Break(e) = Visit::visit(&*statement, &mut depth) {
        return Err(e);
    }
    Ok(())
}

struct Shape;

impl VisitorMut for Shape {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::BinaryOp { op, .. } = expr
            && matches!(op, BinaryOperator::And | BinaryOperator::Or)
        {
            let op = op.clone();
            let mut operands = Vec::new();
            flatten(std::mem::replace(expr, placeholder()), &op, &mut operands);
            if operands.len() > 2 {
                *expr = balanced(operands, &op);
            } else {
                *expr = rebuild(operands, &op);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(limit) = &mut query.limit_clause {
            use datafusion::sql::sqlparser::ast::LimitClause;
            let absurd = |e: &Expr| match e {
                Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) => n.parse::<u64>().map_or(true, |n| n > MAX_LIMIT),
                _ => false,
            };
            if let LimitClause::LimitOffset {
                limit: l @ Some(_), ..
            } = limit
                && l.as_ref().is_some_and(absurd)
            {
                *l = None;
            }
        }
        ControlFlow::Continue(())
    }
}

fn placeholder() -> Expr {
    Expr::Value(Value::Null.into())
}

/// The operands of a chain of `op`, left to right (nested parentheses of
/// the same operator included: `AND`/`OR` are associative).
fn flatten(expr: Expr, op: &BinaryOperator, out: &mut Vec<Expr>) {
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if o == *op => {
                stack.push(*right);
                stack.push(*left);
            }
            Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: o, .. } if o == op) =>
            {
                stack.push(*inner);
            }
            other => out.push(other),
        }
    }
}

fn rebuild(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    let right = operands.pop().unwrap_or_else(placeholder);
    match operands.pop() {
        Some(left) => Expr::BinaryOp {
            left: Box::new(left),
            op: op.clone(),
            right: Box::new(right),
        },
        None => right,
    }
}

/// A balanced tree of `op` over `operands`, in order: depth log2(n). The
/// top is a bare operation (so the walk that built it does not rebuild it
/// again); subtrees are parenthesized, as they print.
fn balanced(mut operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    if operands.len() <= 2 {
        return rebuild(operands, op);
    }
    let right = operands.split_off(operands.len() / 2);
    let side = |operands: Vec<Expr>| match operands.len() {
        1 => rebuild(operands, op),
        _ => Expr::Nested(Box::new(balanced(operands, op))),
    };
    Expr::BinaryOp {
        left: Box::new(side(operands)),
        op: op.clone(),
        right: Box::new(side(right)),
    }
}

#[derive(Default)]
struct Depth {
    expr: usize,
    /// Expression depth at which each enclosing query began.
    queries: Vec<usize>,
    subqueries: usize,
    ctes: usize,
}

impl Visitor for Depth {
    type Break = VeilError;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<VeilError> {
        if self.expr > 0 {
            self.subqueries += 1;
        }
        self.queries.push(self.expr);
        self.expr = 0;
        if self.subqueries > MAX_SUBQUERY_DEPTH {
            return ControlFlow::Break(too_complex(format!(
                "subqueries nest more than {MAX_SUBQUERY_DEPTH} deep"
            )));
        }
        if let Some(with) = &query.with {
            if with.recursive {
                return ControlFlow::Break(VeilError::Refused(
                    "Recursive CTEs (WITH RECURSIVE) are not supported in Veil user queries."
                        .to_string(),
                ));
            }
            self.ctes += with.cte_tables.len();
            if self.ctes > MAX_CTES {
                return ControlFlow::Break(too_complex(format!(
                    "it defines more than {MAX_CTES} common table expressions"
                )));
            }
        }
        if let SetExpr::SetOperation { .. } = query.body.as_ref() {
            // Each branch of a long UNION is a level of the set-operation
            // tree; bound it like an expression.
            let branches = set_operation_depth(&query.body);
            if branches > MAX_SET_BRANCHES {
                return ControlFlow::Break(too_complex(format!(
                    "a set operation (UNION, INTERSECT, EXCEPT) chains more than {MAX_SET_BRANCHES} branches"
                )));
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<VeilError> {
        self.expr = self.queries.pop().unwrap_or_default();
        if self.expr > 0 {
            self.subqueries = self.subqueries.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<VeilError> {
        self.expr += 1;
        if self.expr > MAX_EXPR_DEPTH {
            return ControlFlow::Break(too_complex(format!(
                "an expression nests more than {MAX_EXPR_DEPTH} operations deep"
            )));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<VeilError> {
        self.expr = self.expr.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

/// Depth of a set-operation tree, without recursing through it.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut depth = 0;
    let mut stack = vec![(body, 1usize)];
    while let Some((e, d)) = stack.pop() {
        depth = depth.max(d);
        if let SetExpr::SetOperation { left, right, .. } = e {
            stack.push((left, d + 1));
            stack.push((right, d + 1));
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::on_planning_stack;
    use crate::sql::ident::parse_statements;

    #[test]
    fn or_chains_are_rebalanced_in_order() {
        let sql = format!(
            "select 1 where {}",
            (0..1000)
                .map(|i| format!("a = {i}"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
        let mut stmt = parse_statements(&sql).unwrap().remove(0);
        on_planning_stack(move || {
            shape_statement(&mut stmt)?;
            let text = stmt.to_string();
            let order: Vec<usize> = text
                .split("A = ")
                .skip(1)
                .map(|s| {
                    s.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!(order, (0..1000).collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn deep_expressions_are_refused() {
        let sql = format!("select {}", vec!["1"; 10_000].join("+"));
        let mut stmt = parse_statements(&sql).unwrap().remove(0);
        let e = on_planning_stack(move || shape_statement(&mut stmt)).unwrap_err();
        assert!(e.to_string().contains("expression nests more than"), "{e}");
    }

    #[test]
    fn absurd_limits_are_dropped() {
        let mut stmt = parse_statements("select a from t order by a limit 9223372036854775807")
            .unwrap()
            .remove(0);
        shape_statement(&mut stmt).unwrap();
        assert!(!stmt.to_string().contains("LIMIT"), "{stmt}");
        let mut stmt = parse_statements("select a from t limit 10")
            .unwrap()
            .remove(0);
        shape_statement(&mut stmt).unwrap();
        assert!(stmt.to_string().contains("LIMIT 10"), "{stmt}");
    }
}
