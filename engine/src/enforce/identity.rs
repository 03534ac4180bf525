//! Who a session is: its user, primary role, the roles active in it, the
//! tables those roles are granted and the user's entitlements, resolved
//! from [`SessionOptions`] against a workspace. Unknown, staged or disabled
//! users, roles not granted and purposes not acknowledged are refused (SPEC
//! rule 9). Pure functions over the model: no DataFusion here.

use std::collections::BTreeSet;

use crate::error::{Result, VeilError};
use crate::model::{Entitlements, SessionOptions, TableName, UserStatus, Workspace};
use crate::sql::ident::normalize_ident;

/// A resolved session identity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Identity {
    /// The user (normalized).
    pub(crate) user: String,
    /// The primary role: the one asked for, else the user's first role, else
    /// `PUBLIC`.
    pub(crate) role: String,
    /// Every role granted to the user, with inheritance.
    pub(crate) granted_roles: BTreeSet<String>,
    /// The roles active in the session (primary and secondary), with
    /// inheritance.
    pub(crate) roles_in_session: BTreeSet<String>,
    /// The tables and views the active roles are granted.
    pub(crate) granted_tables: BTreeSet<TableName>,
    /// The user's entitlements in this session.
    pub(crate) entitlements: Entitlements,
}

/// Resolves `options` against `ws` (SPEC rule 9).
pub(crate) fn resolve_identity(ws: &Workspace, options: &SessionOptions) -> Result<Identity> {
    let user_name = normalize_ident(&options.user);
    let Some(user) = ws.user(&user_name) else {
        return Err(VeilError::Session(format!(
            "User '{user_name}' does not exist in this workspace."
        )));
    };
    match user.status {
        UserStatus::Active => {}
        UserStatus::Staged => {
            return Err(VeilError::Session(format!(
                "User '{user_name}' is staged and cannot query yet."
            )));
        }
        UserStatus::Disabled => {
            return Err(VeilError::Session(format!(
                "User '{user_name}' is disabled."
            )));
        }
    }
    let granted_roles: BTreeSet<String> = ws.role_closure(&user.roles);
    let role = match &options.role {
        Some(r) => {
            let r = normalize_ident(r);
            if !granted_roles.contains(&r) {
                return Err(VeilError::Session(format!(
                    "Role '{r}' is not granted to user '{user_name}'."
                )));
            }
            r
        }
        None => user
            .roles
            .first()
            .cloned()
            .unwrap_or_else(|| "PUBLIC".to_string()),
    };
    if let Some(p) = &options.purpose
        && !user.purposes.contains(p)
    {
        return Err(VeilError::Session(format!(
            "User '{user_name}' has not acknowledged purpose '{p}'."
        )));
    }
    let roles_in_session: BTreeSet<String> = match &options.secondary_roles {
        Some(secondary) => {
            let mut active = vec![role.clone()];
            for r in secondary {
                let r = normalize_ident(r);
                if !granted_roles.contains(&r) {
                    return Err(VeilError::Session(format!(
                        "Role '{r}' is not granted to user '{user_name}'."
                    )));
                }
                active.push(r);
            }
            ws.role_closure(&active)
        }
        None if ws.settings.secondary_roles_all => granted_roles.clone(),
        None => ws.role_closure(std::slice::from_ref(&role)),
    };
    let granted_tables: BTreeSet<TableName> = roles_in_session
        .iter()
        .filter_map(|r| ws.role(r))
        .flat_map(|r| r.grants.iter().cloned())
        .collect();
    let entitlements = Entitlements {
        user: user_name.clone(),
        groups: user.groups.clone(),
        attributes: user.attributes.clone(),
        purposes: user.purposes.clone(),
        current_purpose: options.purpose.clone(),
        roles_in_session: roles_in_session.clone(),
    };
    Ok(Identity {
        user: user_name,
        role,
        granted_roles,
        roles_in_session,
        granted_tables,
        entitlements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Workspace {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample");
        crate::load::load_workspace(&dir).unwrap()
    }

    fn refused(options: SessionOptions) -> String {
        match resolve_identity(&sample(), &options) {
            Err(VeilError::Session(m)) => m,
            other => panic!("expected a session error, got {other:?}"),
        }
    }

    #[test]
    fn the_default_role_is_the_users_first_and_names_are_normalized() {
        let id = resolve_identity(&sample(), &SessionOptions::user("alice")).unwrap();
        assert_eq!(id.user, "ALICE");
        assert_eq!(id.role, "ANALYST");
        assert_eq!(id.entitlements.user, "ALICE");
        assert_eq!(id.entitlements.current_purpose, None);
        assert!(id.roles_in_session.contains("ANALYST"));
        assert!(
            id.granted_tables
                .iter()
                .any(|t| t.to_string().ends_with("CUSTOMERS")),
            "{:?}",
            id.granted_tables
        );
    }

    #[test]
    fn inherited_roles_are_active_and_grant_their_tables() {
        let id = resolve_identity(&sample(), &SessionOptions::user("carol")).unwrap();
        assert_eq!(id.role, "COMPLIANCE_OFFICER");
        assert!(id.roles_in_session.contains("HR_ANALYST"));
        assert!(
            id.granted_tables
                .iter()
                .any(|t| t.to_string().ends_with("EMPLOYEES")),
            "{:?}",
            id.granted_tables
        );
    }

    #[test]
    fn a_role_not_granted_is_refused() {
        let m = refused(SessionOptions {
            role: Some("hr_analyst".into()),
            ..SessionOptions::user("alice")
        });
        assert_eq!(m, "Role 'HR_ANALYST' is not granted to user 'ALICE'.");
        let m = refused(SessionOptions {
            secondary_roles: Some(vec!["HR_ANALYST".into()]),
            ..SessionOptions::user("alice")
        });
        assert_eq!(m, "Role 'HR_ANALYST' is not granted to user 'ALICE'.");
    }

    #[test]
    fn unknown_and_disabled_users_and_unacknowledged_purposes_are_refused() {
        assert_eq!(
            refused(SessionOptions::user("nobody")),
            "User 'NOBODY' does not exist in this workspace."
        );
        assert_eq!(
            refused(SessionOptions::user("dave")),
            "User 'DAVE' is disabled."
        );
        assert_eq!(
            refused(SessionOptions {
                purpose: Some("Fraud Analysis".into()),
                ..SessionOptions::user("bob")
            }),
            "User 'BOB' has not acknowledged purpose 'Fraud Analysis'."
        );
    }

    #[test]
    fn an_acknowledged_purpose_enters_the_entitlements() {
        let id = resolve_identity(
            &sample(),
            &SessionOptions {
                purpose: Some("Fraud Analysis".into()),
                ..SessionOptions::user("alice")
            },
        )
        .unwrap();
        assert_eq!(
            id.entitlements.current_purpose.as_deref(),
            Some("Fraud Analysis")
        );
    }
}
