//! Snowflake-native policies → expressions over a table's raw columns.
//!
//! A masking policy's arguments bind to the masked column and its `USING`
//! columns, a row access policy's to its `ON` columns, by position.
//! `SYSTEM$GET_TAG_ON_CURRENT_COLUMN('tag')` becomes the masked column's tag
//! value; calls to the workspace's SQL functions are expanded in place (a
//! `SELECT` body becomes a scalar subquery, which DataFusion evaluates once
//! per statement — how Veil honours `MEMOIZABLE`); Snowflake functions
//! DataFusion lacks are rewritten. Mapping-table subqueries run in the
//! internal catalog, with the policy owner's rights: the querying role needs
//! no grant on them.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value, VisitMut, VisitorMut,
};

use crate::model::*;
use crate::sql::ident::{ident_value, quoted};

/// How deep SQL functions may call each other.
const MAX_FUNCTION_DEPTH: usize = 8;

/// `t."COL"`: a raw column inside a policy relation.
pub(crate) fn raw(column: &str) -> Expr {
    Expr::CompoundIdentifier(vec![quoted("t"), quoted(column)])
}

fn null() -> Expr {
    Expr::Value(Value::Null.with_empty_span())
}

/// Replaces argument names by their bound expressions.
struct Bind<'a> {
    bindings: &'a HashMap<String, Expr>,
}

impl VisitorMut for Bind<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(i) = e
            && let Some(bound) = self.bindings.get(&ident_value(i))
        {
            *e = bound.clone();
        }
        ControlFlow::Continue(())
    }
}

fn bind(body: &Expr, bindings: &HashMap<String, Expr>) -> Expr {
    let mut out = body.clone();
    let _ = VisitMut::visit(&mut out, &mut Bind { bindings });
    out
}

fn call_args(args: &FunctionArguments) -> Option<Vec<Expr>> {
    match args {
        FunctionArguments::None => Some(Vec::new()),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        FunctionArguments::Subquery(_) => None,
    }
}

/// Expands SQL function calls and `SYSTEM$GET_TAG_ON_CURRENT_COLUMN`.
struct Expand<'a> {
    objects: &'a SnowflakeObjects,
    column: Option<&'a Column>,
    expanded: bool,
    error: Option<String>,
}

impl VisitorMut for Expand<'_> {
    type Break = ();
    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident_value)
            .unwrap_or_default();
        let Some(args) = call_args(&f.args) else {
            return ControlFlow::Continue(());
        };
        if name == "SYSTEM$GET_TAG_ON_CURRENT_COLUMN" {
            let Some(column) = self.column else {
                self.error = Some(
                    "SYSTEM$GET_TAG_ON_CURRENT_COLUMN is only available in masking policies".into(),
                );
                return ControlFlow::Break(());
            };
            let tag = match args.as_slice() {
                [Expr::Value(v)] => match &v.value {
                    Value::SingleQuotedString(s) => {
                        s.rsplit('.').next().map(crate::sql::ident::normalize_ident)
                    }
                    _ => None,
                },
                _ => None,
            };
            let Some(tag) = tag else {
                self.error =
                    Some("SYSTEM$GET_TAG_ON_CURRENT_COLUMN takes one quoted tag name".into());
                return ControlFlow::Break(());
            };
            *e = column
                .tags
                .iter()
                .find(|t| t.name == tag)
                .and_then(|t| t.value.clone())
                .map_or_else(null, |v| {
                    Expr::Value(Value::SingleQuotedString(v).with_empty_span())
                });
            return ControlFlow::Continue(());
        }
        let Some(function) = self.objects.function(&name) else {
            return ControlFlow::Continue(());
        };
        if args.len() != function.params.len() {
            self.error = Some(format!(
                "function {name} takes {} argument(s), got {}",
                function.params.len(),
                args.len()
            ));
            return ControlFlow::Break(());
        }
        let bindings: HashMap<String, Expr> = function
            .params
            .iter()
            .map(|p| p.name.clone())
            .zip(args.into_iter().map(|a| Expr::Nested(Box::new(a))))
            .collect();
        *e = Expr::Nested(Box::new(bind(&function.body, &bindings)));
        self.expanded = true;
        ControlFlow::Continue(())
    }
}

/// Binds a policy body: arguments, tag lookups, SQL functions, Snowflake
/// functions.
fn finish(
    body: &Expr,
    bindings: &HashMap<String, Expr>,
    objects: &SnowflakeObjects,
    column: Option<&Column>,
) -> Result<Expr, String> {
    let mut expr = bind(body, bindings);
    for _ in 0..MAX_FUNCTION_DEPTH {
        let mut expand = Expand {
            objects,
            column,
            expanded: false,
            error: None,
        };
        let _ = VisitMut::visit(&mut expr, &mut expand);
        if let Some(e) = expand.error {
            return Err(e);
        }
        if !expand.expanded {
            crate::sql::snowflake::rewrite_snowflake(&mut expr).map_err(|e| e.to_string())?;
            return Ok(expr);
        }
    }
    Err(format!(
        "SQL functions call each other more than {MAX_FUNCTION_DEPTH} levels deep"
    ))
}

/// The masking policy `def` bound to `column` of table or view `table`
/// (and its `USING` columns).
pub fn bind_masking_policy(
    objects: &SnowflakeObjects,
    table: &str,
    column: &Column,
    def: &MaskingPolicyDef,
    using: &[String],
) -> Result<Expr, String> {
    let columns: Vec<String> = if using.is_empty() {
        vec![column.name.clone()]
    } else {
        using.to_vec()
    };
    if columns.len() != def.params.len() {
        return Err(format!(
            "masking policy {} takes {} argument(s) but column {}.{} binds {}",
            def.name,
            def.params.len(),
            table,
            column.name,
            columns.len()
        ));
    }
    let bindings = def
        .params
        .iter()
        .zip(&columns)
        .map(|(p, c)| (p.name.clone(), raw(c)))
        .collect();
    finish(&def.body, &bindings, objects, Some(column))
}

/// The row access policy `def` bound to `columns` of a table.
pub fn bind_row_access_policy(
    objects: &SnowflakeObjects,
    def: &RowAccessPolicyDef,
    columns: &[String],
) -> Result<Expr, String> {
    if columns.len() != def.params.len() {
        return Err(format!(
            "row access policy {} takes {} argument(s) but is attached on {} column(s)",
            def.name,
            def.params.len(),
            columns.len()
        ));
    }
    let bindings = def
        .params
        .iter()
        .zip(columns)
        .map(|(p, c)| (p.name.clone(), raw(c)))
        .collect();
    finish(&def.body, &bindings, objects, None)
}
