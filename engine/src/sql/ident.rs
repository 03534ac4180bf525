//! Snowflake identifier rules (SPEC rule 24) and SQL parsing.
//!
//! Snowflake stores unquoted identifiers upper-case and compares quoted ones
//! exactly. Veil gets the same behaviour on DataFusion by upper-casing every
//! unquoted word token before parsing and planning with DataFusion's own
//! identifier normalization switched off: `select email from customers`
//! reads column `EMAIL` of table `CUSTOMERS`, `"email"` would need a
//! lower-case column, and result columns carry Snowflake's upper-case names.
//! (DataFusion lower-cases function names itself, so functions still resolve.)

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Statement, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Result, VeilError};
use crate::model::TableName;

/// Normalizes one identifier as written in a workspace file: `"Quoted"` stays
/// exact (a doubled quote read as one), anything else is upper-cased. The
/// rule itself lives in `veil-udfs` ([`veil_udfs::normalize_identifier`]),
/// below the engine, so the context functions apply the same one.
pub fn normalize_ident(text: &str) -> String {
    veil_udfs::normalize_identifier(text)
}

/// Normalizes a parsed identifier.
pub fn ident_value(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_uppercase(),
    }
}

/// A quoted identifier (for generated SQL, which never relies on case rules).
pub fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// The dialect every Veil parser reads.
static DIALECT: SnowflakeDialect = SnowflakeDialect {};

/// The one place a Snowflake-dialect parser is built: over `tokens` from
/// [`tokens`], so unquoted words are already upper-cased.
pub(crate) fn parser(tokens: Vec<TokenWithSpan>) -> Parser<'static> {
    Parser::new(&DIALECT).with_tokens_with_locations(tokens)
}

/// A parser over SQL Veil generated itself, read exactly as written (no
/// case folding: its identifiers are quoted where case matters).
pub(crate) fn generated_parser(sql: &str) -> std::result::Result<Parser<'static>, ParserError> {
    Parser::new(&DIALECT).try_with_sql(sql)
}

/// Tokens of `sql` with unquoted words upper-cased (Snowflake's rule), with
/// their locations.
pub(crate) fn tokens(sql: &str) -> Result<Vec<TokenWithSpan>> {
    let mut tokens = Tokenizer::new(&DIALECT, sql)
        .tokenize_with_location()
        .map_err(|e| VeilError::Parse(e.to_string()))?;
    for t in &mut tokens {
        if let Token::Word(w) = &mut t.token
            && w.quote_style.is_none()
        {
            w.value = w.value.to_uppercase();
        }
    }
    Ok(tokens)
}

/// Parses Snowflake SQL with unquoted identifiers upper-cased.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let tokens = tokens(sql)?;
    crate::guard::scan_tokens(&tokens)?;
    parser(tokens)
        .parse_statements()
        .map_err(|e| VeilError::Parse(e.to_string()))
}

/// Parses one SQL expression (a policy predicate) with unquoted identifiers
/// upper-cased.
pub fn parse_expr(sql: &str) -> Result<Expr> {
    let mut parser = parser(tokens(sql)?);
    let expr = parser
        .parse_expr()
        .map_err(|e| VeilError::Parse(e.to_string()))?;
    if parser.peek_token().token != Token::EOF {
        return Err(VeilError::Parse(format!(
            "unexpected text after the expression '{expr}'"
        )));
    }
    Ok(expr)
}

/// Parses generated SQL exactly as written (no case folding).
pub fn parse_generated_expr(sql: &str) -> Result<Expr> {
    generated_parser(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            VeilError::PolicyFailure(format!(
                "internal: generated SQL '{sql}' does not parse: {e}"
            ))
        })
}

/// Parses a generated template and replaces its first `NULL` literal (the
/// operand placeholder) with `inner`: `CAST(NULL AS VARCHAR)` around a column.
pub(crate) fn with_operand(template: &str, inner: Expr) -> Result<Expr> {
    struct Fill(Option<Expr>);
    impl VisitorMut for Fill {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if matches!(e, Expr::Value(v) if v.value == Value::Null)
                && let Some(inner) = self.0.take()
            {
                *e = inner;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut expr = parse_generated_expr(template)?;
    let _ = VisitMut::visit(&mut expr, &mut Fill(Some(inner)));
    Ok(expr)
}

/// Parses a dotted name such as `ANALYTICS.PUBLIC.CUSTOMERS` or `db."My T"`
/// into normalized parts.
pub fn parse_name_parts(text: &str) -> Result<Vec<String>, String> {
    let dialect = SnowflakeDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| format!("'{text}' is not a valid name: {e}"))?;
    let name = parser
        .parse_object_name(false)
        .map_err(|e| format!("'{text}' is not a valid name: {e}"))?;
    if parser.peek_token().token != Token::EOF {
        return Err(format!("'{text}' is not a valid name"));
    }
    object_name_parts(&name).ok_or_else(|| format!("'{text}' is not a valid name"))
}

/// The normalized parts of a parsed object name.
pub fn object_name_parts(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| p.as_ident().map(ident_value))
        .collect()
}

/// Resolves 1–3 name parts against the default database and schema.
pub fn resolve_table(
    parts: &[String],
    default_db: &str,
    default_schema: &str,
) -> Option<TableName> {
    let (database, schema, table) = match parts {
        [t] => (
            default_db.to_string(),
            default_schema.to_string(),
            t.clone(),
        ),
        [s, t] => (default_db.to_string(), s.clone(), t.clone()),
        [d, s, t] => (d.clone(), s.clone(), t.clone()),
        _ => return None,
    };
    Some(TableName {
        database,
        schema,
        table,
    })
}

/// Parses a fully qualified or partial table name from a workspace file.
pub fn parse_table_name(
    text: &str,
    default_db: &str,
    default_schema: &str,
) -> Result<TableName, String> {
    let parts = parse_name_parts(text)?;
    resolve_table(&parts, default_db, default_schema)
        .ok_or_else(|| format!("'{text}' is not a table name (DB.SCHEMA.TABLE)"))
}

/// The identifiers an expression names outside its subqueries (whose tables
/// have columns of their own), compound names joined with `.`, in order.
pub fn top_level_identifiers(expr: &Expr) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::{Query, Visit, Visitor};
    struct Find {
        depth: usize,
        found: Vec<String>,
    }
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0 {
                match e {
                    Expr::Identifier(i) => self.found.push(ident_value(i)),
                    Expr::CompoundIdentifier(parts) => self
                        .found
                        .push(parts.iter().map(ident_value).collect::<Vec<_>>().join(".")),
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut f = Find {
        depth: 0,
        found: Vec::new(),
    };
    let _ = expr.visit(&mut f);
    f.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_identifiers_are_upper_cased() {
        let stmts = parse_statements("select email, \"Mixed\" from customers c where c.id = 'abc'")
            .unwrap();
        assert_eq!(
            stmts[0].to_string(),
            "SELECT EMAIL, \"Mixed\" FROM CUSTOMERS C WHERE C.ID = 'abc'"
        );
    }

    #[test]
    fn names_follow_snowflake_rules() {
        assert_eq!(normalize_ident("email"), "EMAIL");
        assert_eq!(normalize_ident("\"email\""), "email");
        let t = parse_table_name("analytics.public.\"Customers\"", "X", "Y").unwrap();
        assert_eq!(t.to_string(), "ANALYTICS.PUBLIC.\"Customers\"");
        let t = parse_table_name("customers", "ANALYTICS", "PUBLIC").unwrap();
        assert_eq!(t.to_string(), "ANALYTICS.PUBLIC.CUSTOMERS");
        assert!(parse_table_name("a.b.c.d", "X", "Y").is_err());
        assert!(parse_table_name("a b", "X", "Y").is_err());
    }
}
