//! Policy compilation: a workspace's Immuta-style policies → one
//! user-independent [`CompiledTable`] per data source (which mask wins on
//! each column and why, the row rules, the subscription rule, and anything
//! that cannot be evaluated). [`crate::render`] turns a compiled table into the SQL
//! of its policy relation, either reading the user's `user_profile` row or
//! with one user's entitlements inlined.

pub mod decisions;
mod reach;
pub mod snowflake;
mod where_clause;

pub use decisions::{policies_applied, subscribed, unmask_grants};
use where_clause::compile_where;
pub use where_clause::{at_function, parse_where};

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::Expr;

use crate::model::*;

/// A mask as it will run on one column: the requested mask, or NULL when the
/// mask cannot apply to the column's type (SPEC rule 14).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveMask {
    /// The mask the policy asked for.
    pub spec: MaskSpec,
    /// Why it falls back to NULL, if it does.
    pub fallback: Option<String>,
    /// Which values show NULL although the mask applies (a reversible token
    /// too long for the column, a value too short for FF1), if any.
    pub note: Option<String>,
}

/// The masking rule that won a column.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMask {
    /// Policy name.
    pub policy: String,
    /// What made the policy reach the column (tag, column name, data source).
    pub reason: String,
    /// Mask for those the rule applies to.
    pub mask: EffectiveMask,
    /// Mask for the others (`for_everyone_who ... otherwise`).
    pub otherwise: Option<EffectiveMask>,
    /// To whom.
    pub applies: Applicability,
    /// Cell-level masking: the mask applies only to rows where this
    /// predicate (over raw values, Immuta `@` functions as `veil_at_*`
    /// calls) is TRUE.
    pub cell_where: Option<Box<Expr>>,
}

/// One column of a policy relation.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledColumn {
    /// Name.
    pub name: String,
    /// Declared type.
    pub declared: SnowflakeType,
    /// The winning masking rule, if any.
    pub mask: Option<AppliedMask>,
    /// Masking rules that also matched and lost (SPEC §2 conflicts).
    pub conflicts: Vec<String>,
}

/// Where a row rule reads the user's values.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource {
    /// The user's values of an attribute.
    Attribute(String),
    /// The user's groups.
    Groups,
}

/// A compiled row predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum RowPredicate {
    /// The column's value is one of the user's values.
    ValueIn {
        /// Column.
        column: String,
        /// Whether the column is a string (no cast needed).
        string_column: bool,
        /// Which values.
        source: ValueSource,
    },
    /// A custom predicate; Immuta `@` functions appear as `veil_at_*` calls
    /// that [`crate::render`] replaces.
    Where(Box<Expr>),
    /// Event time within a window.
    TimeWindow {
        /// Event-time column.
        column: String,
        /// Amount.
        amount: u32,
        /// Unit.
        unit: WindowUnit,
    },
    /// Deterministic sample.
    Minimize {
        /// Percentage.
        percent: String,
        /// Columns identifying a row.
        columns: Vec<String>,
    },
    /// Only under a purpose.
    Purpose(String),
    /// A Snowflake row access policy's body bound to the table's columns.
    Sql(Box<Expr>),
}

/// A row rule on one table.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRowRule {
    /// Policy name.
    pub policy: String,
    /// What made the policy reach the table.
    pub reason: String,
    /// Predicate.
    pub predicate: RowPredicate,
    /// To whom.
    pub applies: Applicability,
}

/// Who is subscribed to a table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompiledSubscription {
    /// Data owners (always subscribed).
    pub owners: Vec<String>,
    /// A grant policy allows anyone.
    pub anyone: bool,
    /// The workspace uses Snowflake's access model: the grant alone admits.
    pub grant_alone: bool,
    /// Grant policies (OR).
    pub grants: Vec<(String, Condition)>,
    /// Guardrail policies (AND).
    pub guardrails: Vec<(String, Condition)>,
}

/// The user-independent enforcement plan of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledTable {
    /// Table.
    pub name: TableName,
    /// Columns in declared order.
    pub columns: Vec<CompiledColumn>,
    /// Row rules (combined with AND).
    pub row_rules: Vec<CompiledRowRule>,
    /// Subscription.
    pub subscription: CompiledSubscription,
    /// Policies that cannot be evaluated: queries on the table fail closed.
    pub failures: Vec<String>,
    /// A problem in the table's data files found when the workspace loaded
    /// (the whole user-facing sentence): queries on the table fail closed.
    pub data_error: Option<String>,
}

/// Compiled policies of a whole workspace.
#[derive(Debug, Clone, Default)]
pub struct CompiledWorkspace {
    /// Per table.
    pub tables: BTreeMap<TableName, CompiledTable>,
}

/// Why a mask cannot apply to a declared type, if it cannot.
pub fn mask_fallback(spec: &MaskSpec, declared: SnowflakeType) -> Option<String> {
    let cannot = |what: &str| {
        Some(format!(
            "{what} cannot mask a {declared} column, so it shows NULL"
        ))
    };
    match spec {
        MaskSpec::Nullify => None,
        MaskSpec::Hash if !declared.is_string() => cannot("hash"),
        MaskSpec::Regex { .. } if !declared.is_string() => cannot("regex"),
        MaskSpec::ShowFirst(_) if !declared.is_string() => cannot("show_first"),
        MaskSpec::ShowLast(_) if !declared.is_string() => cannot("show_last"),
        MaskSpec::Round(RoundTo::Step(_)) if !declared.is_numeric() => cannot("rounding to a step"),
        MaskSpec::Round(RoundTo::Unit(_)) if !declared.is_temporal() => {
            cannot("rounding to a time unit")
        }
        MaskSpec::Reversible if !declared.is_string() => cannot("reversible"),
        MaskSpec::FormatPreserving if !declared.is_string() => cannot("format_preserving"),
        MaskSpec::RandomizedResponse(RandomizedResponse::Categorical { .. })
            if !declared.is_string() =>
        {
            cannot("randomized_response with a probability")
        }
        MaskSpec::KAnonymize(_)
            if !(declared.is_string() || declared.is_numeric() || declared.is_temporal()) =>
        {
            cannot("k_anonymize")
        }
        MaskSpec::RandomizedResponse(RandomizedResponse::Laplace { .. })
            if !declared.is_numeric() =>
        {
            cannot("randomized_response with an epsilon")
        }
        MaskSpec::Reversible => match declared {
            SnowflakeType::Varchar(n)
                if veil_udfs::mask_reversible::max_plaintext_bytes(n).is_none() =>
            {
                Some(format!(
                    "a reversible token has at least {} characters, more than {declared} holds, and a truncated token could not be decrypted, so it shows NULL",
                    veil_udfs::mask_reversible::token_chars(0)
                ))
            }
            _ => None,
        },
        MaskSpec::Constant(c) => {
            let fits = match declared {
                SnowflakeType::Varchar(_) => true,
                SnowflakeType::Number { .. } => veil_udfs::fit::parse_decimal(c).is_some(),
                SnowflakeType::Float => c.trim().parse::<f64>().is_ok(),
                SnowflakeType::Boolean => {
                    matches!(c.trim().to_ascii_lowercase().as_str(), "true" | "false")
                }
                SnowflakeType::Date => {
                    chrono::NaiveDate::parse_from_str(c.trim(), "%Y-%m-%d").is_ok()
                }
                SnowflakeType::TimestampNtz => {
                    chrono::NaiveDateTime::parse_from_str(c.trim(), "%Y-%m-%d %H:%M:%S").is_ok()
                        || chrono::NaiveDate::parse_from_str(c.trim(), "%Y-%m-%d").is_ok()
                }
            };
            if fits {
                None
            } else {
                Some(format!(
                    "constant '{c}' is not a {declared} value, so it shows NULL"
                ))
            }
        }
        _ => None,
    }
}

/// The id of a column in randomized response's domains and draws.
pub fn rr_column_id(table: &TableName, column: &str) -> String {
    format!("{table}.{column}")
}

/// The columns of `compiled` with a randomized-response mask that runs
/// (as the mask or the `otherwise` mask), with their parameters.
pub fn rr_columns(compiled: &CompiledTable) -> Vec<(&CompiledColumn, &RandomizedResponse)> {
    let mut out = Vec::new();
    for c in &compiled.columns {
        let Some(applied) = &c.mask else { continue };
        for m in [Some(&applied.mask), applied.otherwise.as_ref()]
            .into_iter()
            .flatten()
        {
            if let (MaskSpec::RandomizedResponse(rr), None) = (&m.spec, &m.fallback) {
                out.push((c, rr));
            }
        }
    }
    out
}

/// Which values of a column a mask that does apply still shows as NULL.
pub fn mask_note(spec: &MaskSpec, declared: SnowflakeType) -> Option<String> {
    match (spec, declared) {
        (MaskSpec::Reversible, SnowflakeType::Varchar(n)) if n < veil_udfs::sftype::MAX_VARCHAR => {
            let fits = veil_udfs::mask_reversible::max_plaintext_bytes(n)?;
            Some(format!(
                "values longer than {fits} bytes show NULL: their reversible tokens ({} + 4/3 characters per byte) do not fit {declared}, and a truncated token could not be decrypted",
                veil_udfs::mask_reversible::token_chars(0)
            ))
        }
        (MaskSpec::FormatPreserving, _) => Some(format!(
            "values with 1 to {} digits or 1 to {} letters show NULL: FF1 needs at least a million possible values per character class; values longer than the column show NULL too",
            veil_udfs::mask_fpe::MIN_DIGITS - 1,
            veil_udfs::mask_fpe::MIN_LETTERS - 1
        )),
        _ => None,
    }
}

fn effective(spec: &MaskSpec, declared: SnowflakeType) -> EffectiveMask {
    let fallback = mask_fallback(spec, declared);
    EffectiveMask {
        spec: spec.clone(),
        note: if fallback.is_none() {
            mask_note(spec, declared)
        } else {
            None
        },
        fallback,
    }
}

fn compile_row_rule(
    policy: &Policy,
    rule: &RowRule,
    table: &Table,
    tagged: Option<&Column>,
) -> Result<RowPredicate, String> {
    let pick_column = |explicit: &Option<String>| -> Result<&Column, String> {
        match (explicit, tagged) {
            (Some(c), _) => table.column(c).ok_or_else(|| {
                format!(
                    "the rule names column {c}, which table {} does not have",
                    table.name
                )
            }),
            (None, Some(c)) => Ok(c),
            (None, None) => Err("the rule needs column: when it targets data sources".to_string()),
        }
    };
    let _ = policy;
    Ok(match rule {
        RowRule::MatchAttribute { key, column } => {
            let c = pick_column(column)?;
            RowPredicate::ValueIn {
                column: c.name.clone(),
                string_column: c.declared.is_string(),
                source: ValueSource::Attribute(key.clone()),
            }
        }
        RowRule::MatchGroups { column } => {
            let c = pick_column(column)?;
            RowPredicate::ValueIn {
                column: c.name.clone(),
                string_column: c.declared.is_string(),
                source: ValueSource::Groups,
            }
        }
        RowRule::Where(text) => RowPredicate::Where(Box::new(compile_where(text, table)?)),
        RowRule::TimeWindow { amount, unit } => match &table.event_time {
            Some(e) => RowPredicate::TimeWindow {
                column: e.clone(),
                amount: *amount,
                unit: *unit,
            },
            None => {
                return Err(format!(
                    "table {} has no event_time column for a time window",
                    table.name
                ));
            }
        },
        RowRule::Minimize(p) => RowPredicate::Minimize {
            percent: p.clone(),
            columns: table.columns.iter().map(|c| c.name.clone()).collect(),
        },
        RowRule::Purpose(p) => RowPredicate::Purpose(p.clone()),
    })
}

/// Compiles one table.
pub fn compile_table(ws: &Workspace, table: &Table) -> CompiledTable {
    let mut failures = Vec::new();
    let mut row_rules = Vec::new();
    // Masks: collect candidates per column with their specificity.
    let mut columns = Vec::new();
    for column in &table.columns {
        // (specificity, declaration index, policy, reason)
        let mut candidates: Vec<((u8, usize), usize, &Policy, String)> = Vec::new();
        for (index, policy) in ws.policies.iter().enumerate() {
            if !matches!(policy.kind, PolicyKind::Masking { .. }) {
                continue;
            }
            let hit = reach::column(policy, table, column);
            if let Some((spec, reason)) = hit {
                candidates.push((spec, index, policy, reason));
            }
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut mask = None;
        let mut conflicts = Vec::new();
        for (i, (_, _, policy, reason)) in candidates.iter().enumerate() {
            if i == 0 {
                if let PolicyKind::Masking {
                    mask: spec,
                    otherwise,
                    applies,
                    cell_where,
                } = &policy.kind
                {
                    let cell_where = match cell_where {
                        None => None,
                        Some(text) => match compile_where(text, table) {
                            Ok(e) => Some(Box::new(e)),
                            Err(e) => {
                                // Fail closed: queries on the table are denied.
                                failures.push(format!(
                                    "policy '{}' ({}) cannot be evaluated on {}: {e}",
                                    policy.name, policy.origin, table.name
                                ));
                                None
                            }
                        },
                    };
                    let kanon = |m: &MaskSpec| matches!(m, MaskSpec::KAnonymize(_));
                    if (kanon(spec) && (otherwise.is_some() || cell_where.is_some()))
                        || otherwise.as_ref().is_some_and(kanon)
                    {
                        failures.push(format!(
                            "policy '{}' ({}): k_anonymize generalizes the rows a user sees as a whole, so it takes neither where: nor otherwise (nor is an otherwise mask)",
                            policy.name, policy.origin
                        ));
                    }
                    mask = Some(AppliedMask {
                        policy: policy.name.clone(),
                        reason: reason.clone(),
                        mask: effective(spec, column.declared),
                        otherwise: otherwise.as_ref().map(|o| effective(o, column.declared)),
                        applies: applies.clone(),
                        cell_where,
                    });
                }
            } else {
                conflicts.push(format!(
                    "policy '{}' ({}) also matches but '{}' wins (deeper tag, or declared earlier)",
                    policy.name, reason, candidates[0].2.name
                ));
            }
        }
        // Snowflake masking policies (DDL): set on the column, or through
        // its tags. The loader refuses a column masked by both layers.
        let ddl = crate::model::ddl_masks(ws, column);
        if ddl.len() > 1 {
            let names: Vec<String> = ddl.iter().map(|(p, why)| format!("{p} ({why})")).collect();
            failures.push(format!(
                "column {}.{} is reached by more than one masking policy through its tags: {}; queries on it fail, as in Snowflake",
                table.name,
                column.name,
                names.join("; ")
            ));
        } else if let Some((policy, reason)) = ddl.into_iter().next() {
            let using = column
                .masking_policy
                .as_ref()
                .map(|p| p.using.clone())
                .unwrap_or_default();
            let bound = ws
                .snowflake
                .masking_policy(&policy)
                .ok_or_else(|| format!("masking policy {policy} does not exist"))
                .and_then(|def| {
                    snowflake::bind_masking_policy(
                        &ws.snowflake,
                        &table.name.to_string(),
                        column,
                        def,
                        &using,
                    )
                });
            match bound {
                Ok(expr) => {
                    mask = Some(AppliedMask {
                        policy: short_object_name(&policy),
                        reason,
                        mask: EffectiveMask {
                            spec: MaskSpec::Sql {
                                policy,
                                expr: Box::new(expr),
                            },
                            fallback: None,
                            note: None,
                        },
                        otherwise: None,
                        applies: Applicability::Everyone,
                        cell_where: None,
                    });
                }
                Err(e) => failures.push(format!(
                    "masking policy {policy} cannot be evaluated on {}.{}: {e}",
                    table.name, column.name
                )),
            }
        }
        columns.push(CompiledColumn {
            name: column.name.clone(),
            declared: column.declared,
            mask,
            conflicts,
        });
    }

    // Row rules and subscription.
    let mut subscription = CompiledSubscription {
        owners: table.owners.clone(),
        anyone: !ws.settings.subscriptions_required,
        grant_alone: !ws.settings.subscriptions_required,
        ..Default::default()
    };
    if let Some(rap) = &table.row_access_policy {
        let bound = ws
            .snowflake
            .row_access_policy(&rap.policy)
            .ok_or_else(|| format!("row access policy {} does not exist", rap.policy))
            .and_then(|def| snowflake::bind_row_access_policy(&ws.snowflake, def, &rap.columns));
        match bound {
            Ok(expr) => row_rules.push(CompiledRowRule {
                policy: rap.policy.clone(),
                reason: format!(
                    "row access policy {} on ({}) ({})",
                    rap.policy,
                    rap.columns.join(", "),
                    rap.origin
                ),
                predicate: RowPredicate::Sql(Box::new(expr)),
                applies: Applicability::Everyone,
            }),
            Err(e) => failures.push(format!(
                "row access policy {} cannot be evaluated on {}: {e}",
                rap.policy, table.name
            )),
        }
    }
    for policy in &ws.policies {
        let Some((reason, tagged)) = reach::table(policy, table) else {
            continue;
        };
        match &policy.kind {
            PolicyKind::Row { rule, applies } => {
                match compile_row_rule(policy, rule, table, tagged) {
                    Ok(predicate) => row_rules.push(CompiledRowRule {
                        policy: policy.name.clone(),
                        reason,
                        predicate,
                        applies: applies.clone(),
                    }),
                    Err(e) => failures.push(format!(
                        "policy '{}' ({}) cannot be evaluated on {}: {e}",
                        policy.name, policy.origin, table.name
                    )),
                }
            }
            PolicyKind::Subscription { allow, guardrail } => match (allow, guardrail) {
                (Allow::Anyone, false) => subscription.anyone = true,
                (Allow::Anyone, true) => {}
                (Allow::Condition(c), false) => {
                    subscription.grants.push((policy.name.clone(), c.clone()))
                }
                (Allow::Condition(c), true) => subscription
                    .guardrails
                    .push((policy.name.clone(), c.clone())),
                // The users a data owner approved, folded from the journal;
                // none yet: a condition nobody meets (fail closed).
                (Allow::Approval, guardrail) => {
                    let approved = (policy.name.clone(), approved_users(ws, table));
                    if *guardrail {
                        subscription.guardrails.push(approved);
                    } else {
                        subscription.grants.push(approved);
                    }
                }
            },
            PolicyKind::Masking { .. } => {}
        }
    }
    CompiledTable {
        name: table.name.clone(),
        columns,
        row_rules,
        subscription,
        failures,
        data_error: None,
    }
}

/// The condition "one of the users holding an access request for `table`
/// approved by one of its data owners" (an empty `any` condition, which
/// nobody meets, when none do).
fn approved_users(ws: &Workspace, table: &Table) -> Condition {
    Condition {
        groups: Vec::new(),
        attributes: Vec::new(),
        purposes: Vec::new(),
        users: ws.journal.access.approved_users(&table.name, &table.owners),
        roles: Vec::new(),
        operator: Operator::Any,
    }
}

/// Compiles every table of a workspace.
pub fn compile(ws: &Workspace) -> CompiledWorkspace {
    CompiledWorkspace {
        tables: ws
            .tables
            .iter()
            .map(|t| (t.name.clone(), compile_table(ws, t)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_follow_types() {
        let num = SnowflakeType::parse("NUMBER(3,0)").unwrap();
        assert!(mask_fallback(&MaskSpec::Hash, num).is_some());
        assert!(mask_fallback(&MaskSpec::Round(RoundTo::Step("10".into())), num).is_none());
        assert!(
            mask_fallback(
                &MaskSpec::Round(RoundTo::Step("10".into())),
                SnowflakeType::Varchar(3)
            )
            .is_some()
        );
        assert!(mask_fallback(&MaskSpec::Constant("x".into()), num).is_some());
        assert!(mask_fallback(&MaskSpec::Constant("5".into()), num).is_none());
    }
}
