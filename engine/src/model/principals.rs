//! Principals: roles (inheritance, the path between two roles, cycles)
//! and the privileges DDL grants them, users and their entitlements, and
//! the conditions on the querying user.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{Origin, TableName, fmt_ident};

/// A Snowflake role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Normalized name.
    pub name: String,
    /// Tables this role may SELECT.
    pub grants: Vec<TableName>,
    /// Roles granted to this role (their privileges are inherited).
    pub inherits: Vec<String>,
    /// Privileges other than SELECT that DDL scripts granted this role
    /// (`USAGE ON DATABASE`, `APPLY MASKING POLICY ON ACCOUNT`, ...).
    /// Recorded, not enforced: `veil lint` reports reads without USAGE.
    pub privileges: Vec<Privilege>,
    /// Where it was declared.
    pub origin: Origin,
}

/// A privilege a DDL script grants a role besides SELECT on a table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privilege {
    /// `USAGE ON DATABASE d`.
    UsageOnDatabase(String),
    /// `USAGE ON SCHEMA d.s`.
    UsageOnSchema {
        /// Database.
        database: String,
        /// Schema.
        schema: String,
    },
    /// `USAGE ON WAREHOUSE w`.
    UsageOnWarehouse(String),
    /// `APPLY MASKING POLICY ON ACCOUNT`.
    ApplyMaskingPolicy,
    /// `APPLY ROW ACCESS POLICY ON ACCOUNT`.
    ApplyRowAccessPolicy,
    /// `APPLY TAG ON ACCOUNT`.
    ApplyTag,
}

impl fmt::Display for Privilege {
    /// The privilege as a `GRANT` names it: `USAGE ON SCHEMA DB.S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UsageOnDatabase(d) => {
                f.write_str("USAGE ON DATABASE ")?;
                fmt_ident(f, d)
            }
            Self::UsageOnSchema { database, schema } => {
                f.write_str("USAGE ON SCHEMA ")?;
                fmt_ident(f, database)?;
                f.write_str(".")?;
                fmt_ident(f, schema)
            }
            Self::UsageOnWarehouse(w) => {
                f.write_str("USAGE ON WAREHOUSE ")?;
                fmt_ident(f, w)
            }
            Self::ApplyMaskingPolicy => f.write_str("APPLY MASKING POLICY ON ACCOUNT"),
            Self::ApplyRowAccessPolicy => f.write_str("APPLY ROW ACCESS POLICY ON ACCOUNT"),
            Self::ApplyTag => f.write_str("APPLY TAG ON ACCOUNT"),
        }
    }
}

/// The roles from `from` to `to` (both included) along inheritance
/// (each role inherits the next), if `from` inherits `to` at all.
pub fn inheritance_path(roles: &[Role], from: &str, to: &str) -> Option<Vec<String>> {
    let inherits: BTreeMap<&str, &[String]> = roles
        .iter()
        .map(|r| (r.name.as_str(), r.inherits.as_slice()))
        .collect();
    // Breadth-first, remembering each role's predecessor: no recursion.
    let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(r) = queue.pop_front() {
        if r == to {
            let mut path = vec![to.to_string()];
            let mut at = to;
            while at != from {
                at = previous.get(at)?;
                path.push(at.to_string());
            }
            path.reverse();
            return Some(path);
        }
        for parent in inherits.get(r).copied().unwrap_or_default() {
            if parent != from && !previous.contains_key(parent.as_str()) {
                previous.insert(parent, r);
                queue.push_back(parent);
            }
        }
    }
    None
}

/// A role inheritance cycle, if there is one: `[A, B, A]` when A
/// inherits B and B inherits A. Roles are visited in declaration order,
/// so the same workspace always reports the same cycle.
pub fn role_cycle(roles: &[Role]) -> Option<Vec<String>> {
    let index: BTreeMap<&str, usize> = roles
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    // Depth-first on an explicit stack (no recursion, any depth):
    // 0 = not seen, 1 = on the current path, 2 = finished.
    let mut state = vec![0u8; roles.len()];
    for start in 0..roles.len() {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some(&(r, next)) = path.last() {
            let Some(parent) = roles[r].inherits.get(next) else {
                state[r] = 2;
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let Some(&q) = index.get(parent.as_str()) else {
                continue;
            };
            match state[q] {
                0 => {
                    state[q] = 1;
                    path.push((q, 0));
                }
                1 => {
                    let from = path.iter().position(|(x, _)| *x == q)?;
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|(x, _)| roles[*x].name.clone())
                        .collect();
                    cycle.push(roles[q].name.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

/// Lifecycle status of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// May query.
    Active,
    /// Provisioned but not yet allowed to query.
    Staged,
    /// May not query.
    Disabled,
}

/// A user and their entitlements.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Normalized name.
    pub name: String,
    /// Status.
    pub status: UserStatus,
    /// Granted roles; the first is the default role.
    pub roles: Vec<String>,
    /// Immuta groups.
    pub groups: BTreeSet<String>,
    /// Attributes: key → values.
    pub attributes: BTreeMap<String, BTreeSet<String>>,
    /// Acknowledged purposes.
    pub purposes: BTreeSet<String>,
    /// Where it was declared.
    pub origin: Origin,
}

/// How the members of a condition combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Any member suffices (OR).
    Any,
    /// Every member is needed (AND).
    All,
}

/// A condition on the querying user (Immuta's "members of group ...,
/// possessing attribute ..., acting under purpose ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Group memberships.
    pub groups: Vec<String>,
    /// Attribute values (key, value).
    pub attributes: Vec<(String, String)>,
    /// Purposes the session acts under.
    pub purposes: Vec<String>,
    /// Named users.
    pub users: Vec<String>,
    /// Roles in the session.
    pub roles: Vec<String>,
    /// How members combine.
    pub operator: Operator,
}

impl Condition {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.groups.len()
            + self.attributes.len()
            + self.purposes.len()
            + self.users.len()
            + self.roles.len()
    }

    /// Whether the condition has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        parts.extend(self.groups.iter().map(|g| format!("group {g}")));
        parts.extend(
            self.attributes
                .iter()
                .map(|(k, v)| format!("attribute {k}={v}")),
        );
        parts.extend(self.purposes.iter().map(|p| format!("purpose {p}")));
        parts.extend(self.users.iter().map(|u| format!("user {u}")));
        parts.extend(self.roles.iter().map(|r| format!("role {r}")));
        let join = match self.operator {
            Operator::Any => " or ",
            Operator::All => " and ",
        };
        f.write_str(&parts.join(join))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn roles(edges: &[(&str, &[&str])]) -> Vec<Role> {
        edges
            .iter()
            .map(|(name, inherits)| Role {
                name: name.to_string(),
                grants: vec![],
                inherits: inherits.iter().map(|s| s.to_string()).collect(),
                privileges: vec![],
                origin: Origin::default(),
            })
            .collect()
    }

    #[test]
    fn role_cycles_are_found_in_declaration_order() {
        let rs = roles(&[("A", &["B", "PUBLIC"]), ("B", &["C"]), ("C", &["A"])]);
        assert_eq!(role_cycle(&rs).unwrap(), ["A", "B", "C", "A"]);
        assert_eq!(inheritance_path(&rs, "B", "A").unwrap(), ["B", "C", "A"]);
        let rs = roles(&[("A", &["B"]), ("B", &[]), ("C", &["C"])]);
        assert_eq!(role_cycle(&rs).unwrap(), ["C", "C"]);
        let rs = roles(&[("A", &["B", "C"]), ("B", &["C"]), ("C", &[])]);
        assert_eq!(role_cycle(&rs), None);
        assert_eq!(inheritance_path(&rs, "C", "A"), None);
    }

    #[test]
    fn role_cycles_are_found_at_any_depth() {
        let names: Vec<String> = (0..100_000).map(|i| format!("R{i}")).collect();
        let mut rs: Vec<Role> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Role {
                name: name.clone(),
                grants: vec![],
                inherits: vec![names[(i + 1) % names.len()].clone()],
                privileges: vec![],
                origin: Origin::default(),
            })
            .collect();
        assert_eq!(role_cycle(&rs).map(|c| c.len()), Some(100_001));
        rs.last_mut().unwrap().inherits.clear();
        assert_eq!(role_cycle(&rs), None);
    }
}
