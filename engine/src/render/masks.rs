//! Mask expressions: a column's select-list expression under its masking
//! policy, and a Snowflake body's value fitted to the declared type.

use datafusion::sql::sqlparser::ast::Expr;

use crate::compile::{AppliedMask, EffectiveMask};
use crate::error::Result;
use crate::model::*;
use crate::sql::ident::{parse_generated_expr, with_operand};

use super::*;
use crate::sql::ast::*;

impl Renderer<'_> {
    pub(super) fn mask_expr(
        &self,
        column: &str,
        declared: SnowflakeType,
        mask: &EffectiveMask,
        policy: &str,
        alone: bool,
    ) -> Result<Expr> {
        if let RenderMode::Snowflake(x) = self.mode {
            return snowflake_mask(
                raw(column),
                declared,
                mask,
                &self.table.name,
                self.settings,
                x,
            )
            .map_err(|e| match e {
                // Name the policy an export refuses.
                crate::error::VeilError::PolicyFailure(m)
                    if matches!(
                        mask.spec,
                        MaskSpec::Reversible
                            | MaskSpec::FormatPreserving
                            | MaskSpec::RandomizedResponse(_)
                            | MaskSpec::KAnonymize(_)
                    ) =>
                {
                    crate::error::VeilError::PolicyFailure(format!(
                        "policy '{policy}' on column {}.{column}: {m}",
                        self.table.name
                    ))
                }
                other => other,
            });
        }
        let v = raw(column);
        let ty = string(&declared.to_string());
        // Standing alone, NULL and a VARCHAR constant are literals: the raw
        // column is not even read, as in a hand-written view.
        let typed_null = || {
            if alone {
                parse_generated_expr(&format!("CAST(NULL AS {declared})"))
            } else {
                Ok(call("veil_mask_null", vec![raw(column)]))
            }
        };
        if mask.fallback.is_some() {
            return typed_null();
        }
        let scope = match self.settings.salt_scope {
            SaltScope::DataSource => self.table.name.to_string().to_uppercase(),
            SaltScope::Global => String::new(),
        };
        Ok(match &mask.spec {
            MaskSpec::Hash => call("veil_mask_hash", vec![v, string(&scope), ty]),
            MaskSpec::Reversible => call(
                "veil_mask_reversible",
                vec![v, string(&scope), string(policy), ty],
            ),
            MaskSpec::FormatPreserving => {
                call("veil_mask_fpe", vec![v, string(&scope), string(policy), ty])
            }
            // Rendered around the relation (render/kanon.rs), never here: a
            // k_anonymize that reaches a single column shows NULL.
            MaskSpec::KAnonymize(_) => typed_null()?,
            MaskSpec::RandomizedResponse(rr) => {
                let (kind, parameter, seed) = match rr {
                    RandomizedResponse::Categorical { probability, seed } => {
                        ("categorical", probability.to_string(), seed)
                    }
                    RandomizedResponse::Laplace { epsilon, seed } => {
                        ("laplace", epsilon.to_string(), seed)
                    }
                };
                let columns: Vec<String> =
                    self.table.columns.iter().map(|c| c.name.clone()).collect();
                call(
                    "veil_mask_rr",
                    vec![
                        v,
                        self.row_key(&columns)?,
                        string(&crate::compile::rr_column_id(&self.table.name, column)),
                        string(kind),
                        string(&parameter),
                        string(&seed.to_string()),
                        ty,
                    ],
                )
            }
            MaskSpec::Constant(c) => match declared {
                SnowflakeType::Varchar(n) if alone => with_operand(
                    "CAST(NULL AS VARCHAR)",
                    string(veil_udfs::fit::truncate_chars(c, n)),
                )?,
                _ => call("veil_mask_constant", vec![v, string(c), ty]),
            },
            MaskSpec::Nullify => typed_null()?,
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
        })
    }

    pub(super) fn column_expr(
        &self,
        column: &str,
        declared: SnowflakeType,
        applied: &AppliedMask,
    ) -> Result<Expr> {
        // Inside a CASE next to the raw column a mask keeps the column's
        // type (the UDFs); standing alone it may be a literal.
        let policy = applied.policy.as_str();
        // A cell-level mask sits in a CASE next to the raw column: no literals.
        let cell = applied.cell_where.is_some();
        let masked =
            |alone| self.mask_expr(column, declared, &applied.mask, policy, alone && !cell);
        let others = |alone| match &applied.otherwise {
            Some(o) => self.mask_expr(column, declared, o, policy, alone && !cell),
            None => Ok(raw(column)),
        };
        let expr = match &applied.applies {
            Applicability::Everyone => masked(true)?,
            Applicability::EveryoneExcept(c) => match self.condition(c) {
                B::Lit(true) => raw(column),
                B::Lit(false) => masked(true)?,
                // NULL condition → ELSE → masked: fail closed.
                B::E(e) => case(e, raw(column), masked(false)?),
            },
            Applicability::EveryoneWho(c) => match self.condition(c) {
                B::Lit(true) => masked(true)?,
                B::Lit(false) => others(true)?,
                B::E(e) => case(not(B::E(e)).into_expr(), others(false)?, masked(false)?),
            },
        };
        // "mask … where": only rows whose raw values satisfy the predicate
        // are masked (a NULL predicate, like FALSE, shows the raw value, as
        // Immuta's CASE WHEN does); the predicate reads the raw row.
        Ok(match &applied.cell_where {
            Some(predicate) if expr != raw(column) => {
                case(self.where_expr(predicate)?, expr, raw(column))
            }
            _ => expr,
        })
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
