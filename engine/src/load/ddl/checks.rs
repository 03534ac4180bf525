//! Checks a statement makes against the workspace before it is applied:
//! a policy body names only its arguments, a masking policy's `USING`
//! matches its arguments.

use datafusion::sql::sqlparser::ast::Expr;

use crate::model::*;
use crate::sql::ident::top_level_identifiers;

use super::parse::R;

/// The first identifier of a policy body (outside subqueries) that is not
/// one of the policy's arguments: Snowflake refuses such a policy at CREATE.
pub(super) fn unknown_identifier(body: &Expr, params: &[SqlParam]) -> Option<String> {
    top_level_identifiers(body)
        .into_iter()
        .find(|name| !params.iter().any(|p| p.name == *name))
}

/// Refuses a policy body that names anything but its arguments.
pub(super) fn check_body(kind: &str, name: &str, body: &Expr, params: &[SqlParam]) -> R<()> {
    match unknown_identifier(body, params) {
        None => Ok(()),
        Some(unknown) => Err(format!(
            "invalid identifier '{unknown}': the body of {kind} {name} may use only its arguments ({})",
            params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The masking policy `policy`, checked against the column it is being set
/// on: `USING` names the column first, then one column per further argument.
pub(super) fn masking_for(
    ws: &Workspace,
    policy: &str,
    column: &str,
    using: &[String],
) -> R<MaskingPolicyDef> {
    let def = ws
        .snowflake
        .masking_policy(policy)
        .cloned()
        .ok_or_else(|| format!("Masking policy '{policy}' does not exist or not authorized."))?;
    let bound = if using.is_empty() { 1 } else { using.len() };
    if using.first().is_some_and(|u| u != column) || bound != def.params.len() {
        return Err(format!(
            "Masking policy {policy} takes {} argument(s): USING must list the masked column {column} first, then {} conditional column(s).",
            def.params.len(),
            def.params.len().saturating_sub(1)
        ));
    }
    Ok(def)
}
