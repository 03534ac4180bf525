//! Custom `where` predicates of row rules: Immuta's `@` functions
//! (`@isInGroups`, `@attributeValuesContains`, `@columnTagged`, ...) read
//! as `veil_at_*` calls, and checked against the table they filter.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value, VisitMut, VisitorMut,
};

use crate::model::*;
use crate::sql::ident::{normalize_ident, parse_expr, quoted};

/// The Immuta `@` functions Veil understands, by lower-case name.
pub(super) const AT_FUNCTIONS: &[&str] = &[
    "attributevaluescontains",
    "groupscontains",
    "hasattribute",
    "isingroups",
    "isusingpurpose",
    "username",
    "columntagged",
];

/// Rewrites `@name(` to `veil_at_name(` and `@username` to
/// `veil_at_username()` so the predicate parses as SQL.
fn preprocess_at_functions(text: &str) -> String {
    // Compiled once per process: every condition of every policy goes through it.
    static AT_FUNCTION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"@([A-Za-z_]+)(\s*\()?").unwrap_or_else(|_| unreachable!("static regex"))
    });
    AT_FUNCTION
        .replace_all(text, |caps: &regex::Captures<'_>| {
            let name = &caps[1];
            if caps.get(2).is_some() {
                format!("veil_at_{name}(")
            } else {
                format!("veil_at_{name}()")
            }
        })
        .to_string()
}

/// The `veil_at_*` name of a function call, lower-case.
pub fn at_function(expr: &Expr) -> Option<(String, Vec<String>)> {
    let Expr::Function(f) = expr else { return None };
    let name = f.name.to_string().to_ascii_lowercase();
    let at = name.strip_prefix("veil_at_")?.to_string();
    let mut args = Vec::new();
    if let FunctionArguments::List(list) = &f.args {
        for a in &list.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
                    Value::SingleQuotedString(s) => args.push(s.clone()),
                    other => args.push(other.to_string()),
                },
                other => args.push(format!("\u{0}{other}")),
            }
        }
    }
    Some((at, args))
}

/// Checks the `@` functions of a custom predicate against the table and
/// replaces `@columnTagged('Tag')` by the tagged column.
struct AtFunctionCheck<'a> {
    table: &'a Table,
    error: Option<String>,
}

impl VisitorMut for AtFunctionCheck<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Some((name, args)) = at_function(expr) else {
            return ControlFlow::Continue(());
        };
        if args.iter().any(|a| a.starts_with('\u{0}')) {
            self.error = Some(format!("@{name} takes string literals only"));
            return ControlFlow::Break(());
        }
        let arity_ok = match name.as_str() {
            "attributevaluescontains" | "hasattribute" => args.len() == 2,
            "groupscontains" | "isusingpurpose" | "columntagged" => args.len() == 1,
            "isingroups" => !args.is_empty(),
            "username" => args.is_empty(),
            _ => {
                self.error = Some(format!(
                    "@{name} is not an Immuta function Veil knows ({})",
                    AT_FUNCTIONS.join(", ")
                ));
                return ControlFlow::Break(());
            }
        };
        if !arity_ok {
            self.error = Some(format!("@{name} has the wrong number of arguments"));
            return ControlFlow::Break(());
        }
        let column_arg = match name.as_str() {
            "attributevaluescontains" => Some(&args[1]),
            "groupscontains" => Some(&args[0]),
            _ => None,
        };
        if let Some(c) = column_arg {
            let c = normalize_ident(c);
            if self.table.column(&c).is_none() {
                self.error = Some(format!(
                    "@{name} names column {c}, which table {} does not have",
                    self.table.name
                ));
                return ControlFlow::Break(());
            }
        }
        if name == "columntagged" {
            let tag = &args[0];
            match self
                .table
                .columns
                .iter()
                .find(|c| c.tags.iter().any(|t| tag_is_under(&t.name, tag)))
            {
                Some(c) => *expr = Expr::Identifier(quoted(&c.name)),
                None => {
                    self.error = Some(format!(
                        "@columnTagged('{tag}') matches no column of table {} (an error in Veil, a silent no-op in Immuta)",
                        self.table.name
                    ));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Parses a custom `where` predicate, its Immuta `@` functions as
/// `veil_at_*` calls.
pub fn parse_where(text: &str) -> Result<Expr, String> {
    parse_expr(&preprocess_at_functions(text))
        .map_err(|e| format!("the where predicate does not parse: {e}"))
}

pub(super) fn compile_where(text: &str, table: &Table) -> Result<Expr, String> {
    let mut expr = parse_where(text)?;
    let mut check = AtFunctionCheck { table, error: None };
    let _ = VisitMut::visit(&mut expr, &mut check);
    if let Some(e) = check.error {
        return Err(e);
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_functions_become_calls() {
        assert_eq!(
            preprocess_at_functions("@isInGroups('A') OR @username = OWNER"),
            "veil_at_isInGroups('A') OR veil_at_username() = OWNER"
        );
    }
}
