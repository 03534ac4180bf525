//! PostgreSQL-only syntax in catalog queries, rewritten into what
//! DataFusion plans with the same answer over Veil's catalog tables.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType as SqlType, Expr, Function, FunctionArguments, GroupByExpr,
    ObjectName, ObjectNamePart, Query, SelectItem, SetExpr, TableFactor, Value, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

use super::catalog::PG_CATALOG;

/// Rewrites PostgreSQL-only syntax that DataFusion does not plan:
/// `pg_catalog.` on functions and types, `OPERATOR(pg_catalog.~)`,
/// `COLLATE`, and casts to `regclass`/`regtype`/`oid`/`name`/`"char"`.
pub(super) struct PgSyntax;

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.to_lowercase()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Keywords PostgreSQL evaluates as functions without parentheses.
const SESSION_KEYWORDS: &[&str] = &["current_catalog", "session_user", "current_user"];

/// Set-returning functions without arguments that Veil's catalog holds as
/// tables of the same name.
pub(super) const TABLE_FUNCTIONS: &[&str] = &["pg_get_keywords"];

/// The oids PostgreSQL gives its catalog tables, for `'pg_class'::regclass`.
const CATALOG_OIDS: &[(&str, i64)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_database", 1262),
    ("pg_namespace", 2615),
    ("pg_constraint", 2606),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_attrdef", 2604),
    ("pg_trigger", 2620),
    ("pg_rewrite", 2618),
];

/// One expression in PostgreSQL's dialect.
fn parse_expr(sql: &str) -> Result<Expr, ParserError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
}

/// PostgreSQL functions DataFusion knows under another name or type.
fn rename_function(f: &Function) -> Option<Expr> {
    match last_part(&f.name).as_str() {
        // `array_upper(a, 1)` of a one-dimensional array starting at 1, as
        // PostgreSQL's `integer` (generate_series takes no unsigned bound).
        "array_upper" => parse_expr(&format!("CAST(array_length{} AS BIGINT)", f.args)).ok(),
        _ => None,
    }
}

/// A cast DataFusion cannot plan, as one it can; `None` keeps it.
fn cast(inner: &Expr, data_type: &mut SqlType) -> Option<Expr> {
    let literal = match inner {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.as_str()),
            _ => None,
        },
        _ => None,
    };
    let kind = match data_type {
        SqlType::Regclass => "regclass".to_string(),
        SqlType::Custom(name, _) => last_part(name),
        SqlType::Array(_) => "array".to_string(),
        _ => return None,
    };
    match (kind.as_str(), literal) {
        // `'pg_class'::regclass`: the catalog table's oid; any other name
        // is not a catalog table (user tables have no stable oid to give).
        ("regclass", Some(name)) => {
            let bare = name.trim_start_matches("pg_catalog.");
            let oid = CATALOG_OIDS
                .iter()
                .find(|(n, _)| *n == bare)
                .map(|(_, o)| *o);
            parse_expr(&oid.map_or("CAST(NULL AS BIGINT)".to_string(), |o| o.to_string())).ok()
        }
        // A name computed at run time (`format('%I.%I', ...)::regclass`):
        // no catalog table is named that way.
        ("regclass", None) if matches!(inner, Expr::Function(_)) => {
            parse_expr("CAST(NULL AS BIGINT)").ok()
        }
        // `'pg_catalog.array_in'::regproc`: Veil lists no functions.
        ("regproc" | "regprocedure", Some(_)) => parse_expr("CAST(NULL AS BIGINT)").ok(),
        (
            "regclass" | "regtype" | "regproc" | "regnamespace" | "regrole" | "regprocedure"
            | "oid" | "xid",
            _,
        ) => {
            *data_type = SqlType::BigInt(None);
            None
        }
        ("name" | "char" | "text" | "bpchar", _) => {
            *data_type = SqlType::Text;
            None
        }
        // `'{a,b}'::text[]`: an array of the listed strings.
        ("array", Some(text)) => {
            let items: Vec<String> = text
                .trim_start_matches('{')
                .trim_end_matches('}')
                .split(',')
                .filter(|w| !w.is_empty())
                .map(|w| format!("'{}'", w.trim_matches('"').replace('\'', "''")))
                .collect();
            parse_expr(&format!("make_array({})", items.join(", "))).ok()
        }
        _ => None,
    }
}

impl VisitorMut for PgSyntax {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        super::subquery::unique_names(&mut query.body);
        ControlFlow::Continue(())
    }

    // `FROM pg_catalog.pg_get_keywords()`: Veil's catalog has the keywords
    // as a table.
    fn pre_visit_table_factor(&mut self, table: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = table
            && args.as_ref().is_some_and(|a| a.args.is_empty())
            && TABLE_FUNCTIONS.contains(&last_part(name).as_str())
        {
            *args = None;
            if name.0.len() == 2 {
                name.0.remove(0);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(f) if f.name.0.len() == 2 => {
                let first = match &f.name.0[0] {
                    ObjectNamePart::Identifier(i) => i.value.to_lowercase(),
                    _ => String::new(),
                };
                if first == PG_CATALOG {
                    f.name.0.remove(0);
                }
                if let Some(renamed) = rename_function(f) {
                    *expr = renamed;
                }
            }
            Expr::Function(f)
                if f.name.0.len() == 1 && !matches!(f.args, FunctionArguments::Subquery(_)) =>
            {
                if let Some(renamed) = rename_function(f) {
                    *expr = renamed;
                }
            }
            // DataFusion plans a correlated scalar subquery only when it is
            // aggregated; psql's return at most one row, so `max` keeps
            // their value.
            Expr::Subquery(q) => {
                if let SetExpr::Select(sel) = q.body.as_mut()
                    && sel.projection.len() == 1
                    && matches!(sel.group_by, GroupByExpr::Expressions(ref e, _) if e.is_empty())
                    && let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } =
                        &mut sel.projection[0]
                    && !super::subquery::is_aggregate(e)
                    && let Ok(wrapped) = Parser::new(&PostgreSqlDialect {})
                        .try_with_sql(&format!("max({e})"))
                        .and_then(|mut p| p.parse_expr())
                {
                    *e = wrapped;
                }
                super::subquery::decorrelate(expr);
            }
            Expr::Function(_) => super::subquery::array_constructor(expr),
            // Veil's catalog keeps PostgreSQL arrays (`stxkind`, `polroles`,
            // `indkey`) as their text form `{a,b}`: `x = ANY(col)` looks
            // the value up in that list.
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                right,
                ..
            } if matches!(
                right.as_ref(),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_)
            ) =>
            {
                if let Ok(lookup) = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&format!(
                        "array_has(string_to_array(btrim({right}, '{{}}'), ','), CAST({left} AS TEXT))"
                    ))
                    .and_then(|mut p| p.parse_expr())
                {
                    *expr = lookup;
                }
            }
            Expr::Collate { expr: inner, .. } => {
                *expr = (**inner).clone();
            }
            Expr::BinaryOp { op, .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                    let new = match parts.last().map(String::as_str) {
                        Some("~") => Some(BinaryOperator::PGRegexMatch),
                        Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                        Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                        Some("!~*") => Some(BinaryOperator::PGRegexNotIMatch),
                        Some("=") => Some(BinaryOperator::Eq),
                        Some("<>") => Some(BinaryOperator::NotEq),
                        _ => None,
                    };
                    if let Some(new) = new {
                        *op = new;
                    }
                }
            }
            Expr::Cast {
                expr: inner,
                data_type,
                ..
            } => {
                if let Some(replacement) = cast(inner, data_type) {
                    *expr = replacement;
                }
            }
            // Keywords PostgreSQL reads as functions without parentheses.
            Expr::Identifier(i)
                if i.quote_style.is_none()
                    && SESSION_KEYWORDS.contains(&i.value.to_lowercase().as_str()) =>
            {
                if let Ok(call) = parse_expr(&format!("{}()", i.value.to_lowercase())) {
                    *expr = call;
                }
            }
            // `x <> ALL(array)`: the value is in none of the array's elements.
            Expr::AllOp {
                left,
                compare_op: BinaryOperator::NotEq,
                right,
            } => {
                if let Ok(none) = parse_expr(&format!("NOT array_has({right}, {left})")) {
                    *expr = none;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
