//! One user's entitlements in one session ([`Entitlements`]), the profile
//! table they are read from in profile-join mode ([`PROFILE_TABLE`]),
//! whether they meet a condition ([`meets`]) and whether a rule applies to
//! them ([`Applicability::applies_to`]). Plain data and pure functions.

use std::collections::{BTreeMap, BTreeSet};

use super::{Applicability, Condition, Operator};

/// The entitlement table's location in Veil's internal catalog.
pub const PROFILE_TABLE: [&str; 3] = ["VEIL", "SYSTEM", "USER_PROFILE"];

/// The table (in [`PROFILE_TABLE`]'s schema) of every user's group and
/// attribute values, one per row, that profile-join row rules probe.
pub const USER_VALUES_TABLE: &str = "USER_VALUES";

/// One user's entitlements in one session (the inlined mode's literals).
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlements {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: BTreeSet<String>,
    /// Attributes.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// Acknowledged purposes.
    pub purposes: BTreeSet<String>,
    /// The purpose the session acts under.
    pub current_purpose: Option<String>,
    /// Roles active in the session (with inheritance).
    pub roles_in_session: BTreeSet<String>,
}

/// Whether the user with entitlements `e` meets condition `c` (the
/// inlined mode's folding, `explain` and the profile's subscriptions).
pub fn meets(c: &Condition, e: &Entitlements) -> bool {
    let mut checks =
        c.groups
            .iter()
            .map(|g| e.groups.contains(g))
            .chain(
                c.attributes
                    .iter()
                    .map(|(k, v)| e.attributes.get(k).is_some_and(|vs| vs.contains(v))),
            )
            .chain(c.purposes.iter().map(|p| {
                e.current_purpose.as_deref() == Some(p.as_str()) && e.purposes.contains(p)
            }))
            .chain(c.users.iter().map(|u| e.user == *u))
            .chain(c.roles.iter().map(|r| e.roles_in_session.contains(r)));
    match c.operator {
        Operator::Any => checks.any(|x| x),
        Operator::All => checks.all(|x| x),
    }
}

impl Applicability {
    /// Whether a rule with this applicability applies to the user with
    /// entitlements `e` (the inlined mode's folding, `explain`, the audit).
    pub fn applies_to(&self, e: &Entitlements) -> bool {
        match self {
            Applicability::Everyone => true,
            Applicability::EveryoneExcept(c) => !meets(c, e),
            Applicability::EveryoneWho(c) => meets(c, e),
        }
    }
}
