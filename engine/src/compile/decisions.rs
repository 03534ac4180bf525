//! What a compiled table decides for one user's entitlements, without
//! rendering any SQL: whether they are subscribed to it, and which policies
//! shape what they see (the names an audit record lists).

use super::CompiledTable;
use crate::model::{Condition, Entitlements, meets};

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
