//! `GRANT` statements: roles to users and roles, `SELECT`, `USAGE`.

use crate::sql::ident::resolve_table;

use super::super::parse::*;
use super::*;

/// `GRANT USAGE ON DATABASE|SCHEMA|WAREHOUSE name TO ROLE r`.
pub(super) fn grant_usage(
    ws: &mut Workspace,
    scope: &Scope,
    on: UsageOn,
    name: Vec<String>,
    role: String,
) -> R<()> {
    let privilege = match (on, name.as_slice()) {
        (UsageOn::Database, [d]) => Privilege::UsageOnDatabase(d.clone()),
        (UsageOn::Schema, [s]) => Privilege::UsageOnSchema {
            database: scope.database.clone(),
            schema: s.clone(),
        },
        (UsageOn::Schema, [d, s]) => Privilege::UsageOnSchema {
            database: d.clone(),
            schema: s.clone(),
        },
        (UsageOn::Warehouse, [w]) => Privilege::UsageOnWarehouse(w.clone()),
        (UsageOn::Schema, _) => {
            return Err(format!(
                "'{}' is not a schema name ([database.]schema)",
                name.join(".")
            ));
        }
        (on, _) => {
            return Err(format!(
                "'{}' is not a {} name",
                name.join("."),
                if on == UsageOn::Database {
                    "database"
                } else {
                    "warehouse"
                }
            ));
        }
    };
    grant_privilege(ws, &role, privilege)?;
    Ok(())
}

/// `GRANT ROLE r TO USER u`.
pub(super) fn grant_role_to_user(ws: &mut Workspace, role: String, user: String) -> R<()> {
    if role != "PUBLIC" && ws.role(&role).is_none() {
        return Err(format!("Role '{role}' does not exist or not authorized."));
    }
    let u = ws
        .users
        .iter_mut()
        .find(|u| u.name == user)
        .ok_or_else(|| format!("User '{user}' does not exist or not authorized."))?;
    if !u.roles.contains(&role) {
        u.roles.push(role);
    }
    Ok(())
}

/// `GRANT ROLE r TO ROLE parent`.
pub(super) fn grant_role_to_role(ws: &mut Workspace, role: String, to: String) -> R<()> {
    if ws.role(&role).is_none() {
        return Err(format!("Role '{role}' does not exist or not authorized."));
    }
    let r = ws
        .roles
        .iter_mut()
        .find(|r| r.name == to)
        .ok_or_else(|| format!("Role '{to}' does not exist or not authorized."))?;
    if !r.inherits.contains(&role) {
        r.inherits.push(role.clone());
    }
    // Snowflake refuses a grant that closes a cycle; so does Veil.
    if let Some(mut path) = inheritance_path(&ws.roles, &role, &to) {
        path.insert(0, to);
        return Err(crate::load::role_cycle_message(&path));
    }
    Ok(())
}

/// `GRANT SELECT ON [TABLE] t TO ROLE r`.
pub(super) fn grant_select(
    ws: &mut Workspace,
    scope: &Scope,
    table: Vec<String>,
    role: String,
) -> R<()> {
    let name = match resolve_table(&table, &scope.database, &scope.schema) {
        Some(v) if ws.snowflake.view(&v).is_some() => v,
        _ => table_mut(ws, scope, &table)?.name.clone(),
    };
    let r = ws
        .roles
        .iter_mut()
        .find(|r| r.name == role)
        .ok_or_else(|| format!("Role '{role}' does not exist or not authorized."))?;
    if !r.grants.contains(&name) {
        r.grants.push(name);
    }
    Ok(())
}
