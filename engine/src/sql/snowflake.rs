//! Snowflake SQL that DataFusion 55 lacks or reads differently, rewritten
//! into DataFusion's equivalents before planning (user queries and, later,
//! policy bodies):
//!
//! | Snowflake | becomes |
//! | --- | --- |
//! | `IFF(c, a, b)` | `CASE WHEN c THEN a ELSE b END` (only the taken branch runs) |
//! | `ZEROIFNULL(x)` | `COALESCE(x, 0)` |
//! | `NVL2(x, a, b)` | `CASE WHEN x IS NOT NULL THEN a ELSE b END` |
//! | `DIV0(a, b)` | `CASE WHEN b = 0 THEN 0 ELSE a / b END` |
//! | `SHA2(x [, 224\|256\|384\|512])`, `SHA2_HEX` | `encode(sha256(CAST(x AS VARCHAR)), 'hex')` (lower-case hex, as Snowflake) |
//! | `LISTAGG(x [, sep]) [WITHIN GROUP (ORDER BY o)]` | `string_agg(x, sep ORDER BY o)` (default separator `''`) |
//! | `ARRAY_CONTAINS(value, array)` | `array_has(array, value)` (Snowflake's argument order) |
//! | `GREATEST(a, ...)`, `LEAST(a, ...)` | NULL when any argument is NULL, as in Snowflake |
//! | `REGEXP_REPLACE(s, p [, r])` | `regexp_replace(s, p, r, 'g')`: every match, as Snowflake (default `r` is `''`) |
//! | `x [I]LIKE ANY (p1, p2)` | `(x [I]LIKE p1 OR x [I]LIKE p2)` |
//! | `t SAMPLE (p)` / `TABLESAMPLE BERNOULLI (p)` | `(SELECT * FROM t WHERE random() * 100 < p) AS t` |
//! | `t SAMPLE (n ROWS)` | `n` rows in random order (a projected `random()` sort key, then `* EXCLUDE` it) |
//!
//! DataFusion silently ignores `SAMPLE`, returning every row as if sampled;
//! Veil samples, and refuses the forms it cannot honour (`SEED`/`REPEATABLE`,
//! `BUCKET`, `NOT [I]LIKE ANY`) with a clear error rather than return
//! something else.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, Ident, ObjectName, Query, SetExpr, TableAlias, TableFactor, TableSample,
    TableSampleKind, TableSampleUnit, Value, VisitMut, VisitorMut,
};

use crate::error::{Result, VeilError};
use crate::sql::ast::{case, nested};
use crate::sql::ident::{ident_value, with_operand};

fn lit_int(n: i64) -> Expr {
    Expr::Value(Value::Number(n.to_string(), false).with_empty_span())
}

fn lit_str(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).with_empty_span())
}

fn rename(f: &mut Function, name: &str) {
    f.name = ObjectName::from(vec![Ident::new(name)]);
}

/// Positional argument expressions of a plain call, or `None` for anything
/// fancier (named arguments, `*`).
fn plain_args(f: &Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return if matches!(f.args, FunctionArguments::None) {
            Some(Vec::new())
        } else {
            None
        };
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn set_args(f: &mut Function, args: Vec<Expr>) {
    if let FunctionArguments::List(list) = &mut f.args {
        list.args = args
            .into_iter()
            .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
            .collect();
    }
}

fn arity(name: &str, args: &[Expr], want: std::ops::RangeInclusive<usize>) -> Result<()> {
    if want.contains(&args.len()) {
        Ok(())
    } else {
        Err(VeilError::Parse(format!(
            "{name} takes {} arguments, got {}",
            if want.start() == want.end() {
                want.start().to_string()
            } else {
                format!("{} to {}", want.start(), want.end())
            },
            args.len()
        )))
    }
}

/// The rewrite of one function call, if it is one of Snowflake's.
fn rewrite_function(f: &mut Function) -> Result<Option<Expr>> {
    let name = f.name.to_string().to_ascii_uppercase();
    let Some(args) = plain_args(f) else {
        return Ok(None);
    };
    Ok(match name.as_str() {
        "IFF" => {
            arity("IFF", &args, 3..=3)?;
            let [c, a, b] =
                <[Expr; 3]>::try_from(args).map_err(|_| VeilError::Parse("IFF".into()))?;
            Some(case(c, a, b))
        }
        "GREATEST" | "LEAST" if !args.is_empty() => {
            // Snowflake returns NULL when any argument is NULL; DataFusion
            // skips NULLs.
            let any_null = args
                .iter()
                .map(|a| Expr::IsNull(Box::new(nested(a.clone()))))
                .reduce(|l, r| Expr::BinaryOp {
                    left: Box::new(l),
                    op: BinaryOperator::Or,
                    right: Box::new(r),
                })
                .unwrap_or_else(|| lit_str(""));
            rename(f, &name.to_ascii_lowercase());
            Some(case(
                any_null,
                Expr::Value(Value::Null.with_empty_span()),
                Expr::Function(f.clone()),
            ))
        }
        "ZEROIFNULL" => {
            arity("ZEROIFNULL", &args, 1..=1)?;
            rename(f, "coalesce");
            let mut args = args;
            args.push(lit_int(0));
            set_args(f, args);
            None
        }
        "NVL2" => {
            arity("NVL2", &args, 3..=3)?;
            let [x, a, b] =
                <[Expr; 3]>::try_from(args).map_err(|_| VeilError::Parse("NVL2".into()))?;
            Some(case(Expr::IsNotNull(Box::new(nested(x))), a, b))
        }
        "DIV0" => {
            arity("DIV0", &args, 2..=2)?;
            let [a, b] =
                <[Expr; 2]>::try_from(args).map_err(|_| VeilError::Parse("DIV0".into()))?;
            Some(case(
                Expr::BinaryOp {
                    left: Box::new(nested(b.clone())),
                    op: BinaryOperator::Eq,
                    right: Box::new(lit_int(0)),
                },
                lit_int(0),
                Expr::BinaryOp {
                    left: Box::new(nested(a)),
                    op: BinaryOperator::Divide,
                    right: Box::new(nested(b)),
                },
            ))
        }
        "SHA2" | "SHA2_HEX" => {
            arity(&name, &args, 1..=2)?;
            let bits = match args.get(1) {
                None => "256".to_string(),
                Some(Expr::Value(v)) => match &v.value {
                    Value::Number(n, _) => n.clone(),
                    other => other.to_string(),
                },
                Some(other) => other.to_string(),
            };
            if !matches!(bits.as_str(), "224" | "256" | "384" | "512") {
                return Err(VeilError::Parse(format!(
                    "{name} digest size must be 224, 256, 384 or 512, got {bits}"
                )));
            }
            Some(with_operand(
                &format!("encode(sha{bits}(CAST(NULL AS VARCHAR)), 'hex')"),
                args[0].clone(),
            )?)
        }
        "LISTAGG" => {
            arity("LISTAGG", &args, 1..=2)?;
            rename(f, "string_agg");
            let mut args = args;
            if args.len() == 1 {
                args.push(lit_str(""));
            }
            set_args(f, args);
            if !f.within_group.is_empty() {
                let order = std::mem::take(&mut f.within_group);
                if let FunctionArguments::List(list) = &mut f.args {
                    list.clauses.push(FunctionArgumentClause::OrderBy(order));
                }
            }
            None
        }
        "REGEXP_REPLACE" => {
            if args.len() > 4 || args.get(3).is_some_and(|p| p.to_string() != "1") {
                return Err(VeilError::Refused(
                    "REGEXP_REPLACE with a position other than 1, an occurrence or regex parameters is not supported by Veil.".into(),
                ));
            }
            arity("REGEXP_REPLACE", &args, 2..=4)?;
            rename(f, "regexp_replace");
            set_args(
                f,
                vec![
                    args[0].clone(),
                    args[1].clone(),
                    match args.get(2) {
                        None => lit_str(""),
                        Some(Expr::Value(v)) => match &v.value {
                            Value::SingleQuotedString(r) => lit_str(&replacement_to_rust(r)),
                            _ => args[2].clone(),
                        },
                        Some(other) => other.clone(),
                    },
                    lit_str("g"),
                ],
            );
            None
        }
        "ARRAY_CONTAINS" => {
            arity("ARRAY_CONTAINS", &args, 2..=2)?;
            rename(f, "array_has");
            // `value::VARIANT` is how Snowflake code passes a value; Arrow
            // arrays are typed, so the cast is dropped.
            let value = match &args[0] {
                Expr::Cast {
                    expr, data_type, ..
                } if data_type.to_string().eq_ignore_ascii_case("VARIANT") => *expr.clone(),
                other => other.clone(),
            };
            set_args(f, vec![args[1].clone(), value]);
            None
        }
        _ => None,
    })
}

/// A Snowflake `REGEXP_REPLACE` replacement (`\\1` names group 1, `$` is
/// literal) in the Rust regex syntax DataFusion uses (`${1}`, `$$`).
fn replacement_to_rust(snowflake: &str) -> String {
    let mut out = String::with_capacity(snowflake.len());
    let mut chars = snowflake.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// `x [I]LIKE ANY (p1, p2, ...)` as an OR of single matches.
fn like_any(e: &Expr) -> Result<Option<Expr>> {
    let (negated, any, expr, pattern, escape, ilike) = match e {
        Expr::Like {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        } => (*negated, *any, expr, pattern, escape_char, false),
        Expr::ILike {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        } => (*negated, *any, expr, pattern, escape_char, true),
        _ => return Ok(None),
    };
    if !any {
        return Ok(None);
    }
    let word = if ilike { "ILIKE" } else { "LIKE" };
    if negated {
        return Err(VeilError::Refused(format!(
            "NOT {word} ANY is not supported by Veil; write NOT ({word} ANY (...)) or list the patterns with AND."
        )));
    }
    let patterns: Vec<Expr> = match pattern.as_ref() {
        Expr::Tuple(items) => items.clone(),
        Expr::Nested(p) => vec![(**p).clone()],
        other => vec![other.clone()],
    };
    let one = |p: Expr| {
        if ilike {
            Expr::ILike {
                negated: false,
                any: false,
                expr: expr.clone(),
                pattern: Box::new(p),
                escape_char: escape.clone(),
            }
        } else {
            Expr::Like {
                negated: false,
                any: false,
                expr: expr.clone(),
                pattern: Box::new(p),
                escape_char: escape.clone(),
            }
        }
    };
    let mut parts = patterns.into_iter().map(one);
    let first = parts
        .next()
        .ok_or_else(|| VeilError::Parse(format!("{word} ANY needs at least one pattern")))?;
    let combined = parts.fold(first, |left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::Or,
        right: Box::new(right),
    });
    Ok(Some(Expr::Nested(Box::new(combined))))
}

/// `t SAMPLE (...)` as a derived table that really samples.
fn sampled(
    name: &ObjectName,
    alias: &Option<TableAlias>,
    sample: &TableSample,
) -> Result<TableFactor> {
    if sample.seed.is_some() || sample.bucket.is_some() || sample.offset.is_some() {
        return Err(VeilError::Refused(format!(
            "Sampling {name} with SEED/REPEATABLE, BUCKET or OFFSET is not supported by Veil (it would not return the rows Snowflake returns)."
        )));
    }
    let Some(quantity) = &sample.quantity else {
        return Err(VeilError::Refused(format!(
            "SAMPLE on {name} needs a quantity: a percentage or (n ROWS)."
        )));
    };
    let value = &quantity.value;
    let sql = match quantity.unit {
        Some(TableSampleUnit::Rows) => {
            // The sort key is a projected column: DataFusion 55 fails to sort
            // zero-column batches by random() when the outer query needs no
            // column (count(*)).
            format!(
                "SELECT * EXCLUDE (\"veil$sample\") FROM (SELECT *, random() AS \"veil$sample\" FROM {name} ORDER BY \"veil$sample\" LIMIT {value})"
            )
        }
        _ => format!("SELECT * FROM {name} WHERE random() * 100 < {value}"),
    };
    let query: Query = *crate::sql::ident::generated_parser(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| VeilError::Parse(format!("SAMPLE on {name}: {e}")))?;
    if !matches!(query.body.as_ref(), SetExpr::Select(_)) {
        return Err(VeilError::Parse(format!("SAMPLE on {name}")));
    }
    let alias = alias.clone().unwrap_or_else(|| TableAlias {
        explicit: true,
        name: Ident::with_quote(
            '"',
            name.0
                .last()
                .and_then(|p| p.as_ident())
                .map(ident_value)
                .unwrap_or_default(),
        ),
        columns: vec![],
        at: None,
    });
    Ok(TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(alias),
        sample: None,
    })
}

struct Rewrite {
    error: Option<VeilError>,
}

impl VisitorMut for Rewrite {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let replaced = match e {
            Expr::Function(f) => rewrite_function(f),
            _ => like_any(e),
        };
        match replaced {
            Ok(Some(new)) => *e = new,
            Ok(None) => {}
            Err(err) => {
                self.error = Some(err);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            sample: Some(kind),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let sample = match kind {
            TableSampleKind::BeforeTableAlias(s) | TableSampleKind::AfterTableAlias(s) => s,
        };
        match sampled(name, alias, sample) {
            Ok(new) => *factor = new,
            Err(err) => {
                self.error = Some(err);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites Snowflake functions and `SAMPLE` in anything visitable (a
/// statement, a policy body).
pub fn rewrite_snowflake<T: VisitMut>(node: &mut T) -> Result<()> {
    let mut r = Rewrite { error: None };
    let _ = node.visit(&mut r);
    match r.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ident::parse_statements;

    fn rewritten(sql: &str) -> String {
        let mut s = parse_statements(sql).unwrap().remove(0);
        rewrite_snowflake(&mut s).unwrap();
        s.to_string()
    }

    #[test]
    fn functions_become_datafusion_equivalents() {
        assert_eq!(
            rewritten("select iff(a > 1, 'x', 'y'), zeroifnull(b), nvl2(c, 1, 2), div0(d, e)"),
            "SELECT CASE WHEN A > 1 THEN 'x' ELSE 'y' END, coalesce(B, 0), CASE WHEN C IS NOT NULL THEN 1 ELSE 2 END, CASE WHEN E = 0 THEN 0 ELSE D / E END"
        );
        assert_eq!(
            rewritten("select sha2(x), sha2_hex(x, 512), array_contains(1, arr)"),
            "SELECT encode(sha256(CAST(X AS VARCHAR)), 'hex'), encode(sha512(CAST(X AS VARCHAR)), 'hex'), array_has(ARR, 1)"
        );
        assert_eq!(
            rewritten("select listagg(n, ', ') within group (order by n) from t"),
            "SELECT string_agg(N, ', ' ORDER BY N) FROM T"
        );
    }

    #[test]
    fn like_any_becomes_an_or_and_sample_samples() {
        assert_eq!(
            rewritten("select 1 from t where n ilike any ('a%', 'b%')"),
            "SELECT 1 FROM T WHERE (N ILIKE 'a%' OR N ILIKE 'b%')"
        );
        assert_eq!(
            rewritten("select * from t sample (10)"),
            "SELECT * FROM (SELECT * FROM T WHERE random() * 100 < 10) AS \"T\""
        );
        assert_eq!(
            rewritten("select * from t as x sample (3 rows)"),
            "SELECT * FROM (SELECT * EXCLUDE (\"veil$sample\") FROM (SELECT *, random() AS \"veil$sample\" FROM T ORDER BY \"veil$sample\" LIMIT 3)) AS X"
        );
    }

    #[test]
    fn unsupported_forms_are_refused() {
        for sql in [
            "select * from t sample (10) seed (42)",
            "select 1 from t where n not ilike any ('a%')",
            "select sha2(x, 100)",
            "select iff(a, b)",
        ] {
            let mut s = parse_statements(sql).unwrap().remove(0);
            assert!(rewrite_snowflake(&mut s).is_err(), "{sql}");
        }
    }

    #[test]
    fn regexp_replace_takes_snowflake_back_references() {
        assert_eq!(replacement_to_rust("\\1-$x\\\\"), "${1}-$$x\\");
        assert_eq!(
            rewritten(
                "select regexp_replace(a, '(b)', '<\\\\1>'), array_contains('x'::variant, arr)"
            ),
            "SELECT regexp_replace(A, '(b)', '<${1}>', 'g'), array_has(ARR, 'x')"
        );
    }
}
