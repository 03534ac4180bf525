//! What a compiled table decides for one user's entitlements, without
//! rendering any SQL: whether they are subscribed to it, and which policies
//! shape what they see (the names an audit record lists).

use super::CompiledTable;
use crate::model::{Applicability, Condition, Entitlements, MaskSpec, SaltScope, Settings, meets};
use veil_udfs::unmask::{UnmaskGrant, UnmaskKind, column_key};

/// Whether `e` is subscribed to `table` under its default session.
pub fn subscribed(compiled: &CompiledTable, e: &Entitlements) -> bool {
    let sub = &compiled.subscription;
    if sub.owners.contains(&e.user) {
        return true;
    }
    let meets = |c: &Condition| meets(c, e);
    let granted = sub.anyone || sub.grants.iter().any(|(_, c)| meets(c));
    granted && sub.guardrails.iter().all(|(_, c)| meets(c))
}

/// The policies that shape what `e` sees of `compiled`: each row rule that
/// applies to them, and each column mask that shows them a masked value
/// (the mask itself, or the `otherwise` mask of a rule that does not apply
/// to them). In the table's order; a policy may repeat.
pub fn policies_applied<'a>(
    compiled: &'a CompiledTable,
    e: &'a Entitlements,
) -> impl Iterator<Item = &'a str> + 'a {
    let rows = compiled
        .row_rules
        .iter()
        .filter(|r| r.applies.applies_to(e))
        .map(|r| r.policy.as_str());
    let masks = compiled
        .columns
        .iter()
        .filter_map(|c| c.mask.as_ref())
        .filter(|m| m.applies.applies_to(e) || m.otherwise.is_some())
        .map(|m| m.policy.as_str());
    rows.chain(masks)
}

/// The columns of `compiled` whose `reversible` or `format_preserving`
/// values `e` may decrypt with `VEIL_UNMASK` (SPEC rule 21): those whose
/// policy's exception admits them, i.e. the rule does not apply to them
/// and no `otherwise` mask does either, so they see the raw value. Only
/// on a table they are subscribed to (fail closed: a user who may not read
/// the table's rows gets nothing from its tokens). Keyed by
/// [`column_key`].
pub fn unmask_grants(
    compiled: &CompiledTable,
    e: &Entitlements,
    settings: &Settings,
) -> Vec<(String, UnmaskGrant)> {
    if !subscribed(compiled, e) {
        return Vec::new();
    }
    let scope = match settings.salt_scope {
        SaltScope::DataSource => compiled.name.to_string().to_uppercase(),
        SaltScope::Global => String::new(),
    };
    let mut grants = Vec::new();
    for column in &compiled.columns {
        let Some(applied) = &column.mask else {
            continue;
        };
        let kind = match applied.mask.spec {
            MaskSpec::Reversible => UnmaskKind::Reversible,
            MaskSpec::FormatPreserving => UnmaskKind::FormatPreserving,
            _ => continue,
        };
        // Admitted: an exception (or a `for_everyone_who` condition) that
        // leaves this user the raw value. `Everyone` admits nobody.
        let admitted = match &applied.applies {
            Applicability::Everyone => false,
            Applicability::EveryoneExcept(_) | Applicability::EveryoneWho(_) => {
                !applied.applies.applies_to(e) && applied.otherwise.is_none()
            }
        };
        if !admitted {
            continue;
        }
        grants.push((
            column_key(
                &compiled.name.database,
                &compiled.name.schema,
                &compiled.name.table,
                &column.name,
            ),
            UnmaskGrant {
                kind,
                scope: scope.clone(),
                policy: applied.policy.clone(),
            },
        ));
    }
    grants
}
