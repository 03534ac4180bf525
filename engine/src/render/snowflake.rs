//! The Snowflake export target: the objects exported policies read
//! ([`SnowflakeExport`], purpose roles) and Immuta-style masks and row rules
//! rendered as Snowflake policy bodies.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};

use crate::compile::{CompiledTable, EffectiveMask};
use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ident::with_operand;

use super::*;
use crate::sql::ast::*;

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

/// `a || b || ...`.
pub(super) fn concat(parts: Vec<Expr>) -> Expr {
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
pub(super) fn hide_classes(v: Expr) -> Expr {
    [("[a-z]", "x"), ("[A-Z]", "X"), ("[0-9]", "n")]
        .into_iter()
        .fold(v, |acc, (pattern, class)| {
            call("REGEXP_REPLACE", vec![acc, string(pattern), string(class)])
        })
}

/// A Rust-regex replacement (`$1`, `${1}`, `$$`) in Snowflake's syntax
/// (`\1`, and `$` is literal).
pub(super) fn replacement_to_snowflake(rust: &str) -> String {
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
        MaskSpec::Reversible => {
            return Err(VeilError::PolicyFailure(
                "reversible (AES-256-SIV) has no Snowflake equivalent: Snowflake has no AES-SIV function (ENCRYPT is randomized AES-GCM), and a SQL or JavaScript UDF computing it would put the workspace key into the DDL text, so Veil refuses to export it rather than emit different tokens".into(),
            ));
        }
        MaskSpec::FormatPreserving => {
            return Err(VeilError::PolicyFailure(
                "format_preserving (NIST FF1) has no Snowflake equivalent: Snowflake has no FF1 function, and a SQL or JavaScript UDF computing it would put the workspace key into the DDL text, so Veil refuses to export it rather than emit different values".into(),
            ));
        }
        MaskSpec::KAnonymize(_) => {
            return Err(VeilError::PolicyFailure(
                "k_anonymize has no Snowflake equivalent: it needs counts across rows, which a masking policy (one value at a time) cannot compute, so Veil refuses to export it".into(),
            ));
        }
        MaskSpec::RandomizedResponse(_) => {
            return Err(VeilError::PolicyFailure(
                "randomized_response has no Snowflake equivalent: its draws are seeded per row with the workspace secret (which the DDL text would then hold) and its domain is computed by Veil over the column's values, so Veil refuses to export it rather than emit different values".into(),
            ));
        }
        MaskSpec::Sql { policy, .. } => {
            return Err(VeilError::PolicyFailure(format!(
                "masking policy {policy} is already Snowflake DDL; export covers Immuta-style policies"
            )));
        }
    })
}

/// A scaled integer as decimal text (`12345`, scale 2 → `123.45`).
pub(super) fn decimal_text(value: i128, scale: u32) -> String {
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
