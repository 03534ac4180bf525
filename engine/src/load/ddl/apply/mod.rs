//! Applying each parsed [`Ddl`] statement to the workspace, with the
//! `USE DATABASE/SCHEMA` scope names resolve against.

use crate::model::*;
use crate::sql::ident::resolve_table;

use super::parse::*;
use super::*;

mod alter;
mod create;
mod exempt;
mod grant;

pub(super) struct Scope {
    pub(super) database: String,
    pub(super) schema: String,
}

/// The fully qualified name of a schema-level policy (`DB.SCHEMA.NAME`),
/// resolved like a table name against `USE DATABASE/SCHEMA`: policies in two
/// schemas may share a name.
pub(super) fn qualify(scope: &Scope, parts: &[String]) -> R<String> {
    resolve_table(parts, &scope.database, &scope.schema)
        .map(|n| n.to_string())
        .ok_or_else(|| format!("'{}' is not a policy name", parts.join(".")))
}

pub(super) fn table_mut<'a>(
    ws: &'a mut Workspace,
    scope: &Scope,
    parts: &[String],
) -> R<&'a mut Table> {
    let name = resolve_table(parts, &scope.database, &scope.schema)
        .ok_or_else(|| format!("'{}' is not a table name", parts.join(".")))?;
    ws.tables
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| format!("Table '{name}' does not exist or not authorized."))
}

pub(super) fn view_mut<'a>(
    ws: &'a mut Workspace,
    scope: &Scope,
    parts: &[String],
) -> R<&'a mut ViewDef> {
    let name = resolve_table(parts, &scope.database, &scope.schema)
        .ok_or_else(|| format!("'{}' is not a view name", parts.join(".")))?;
    ws.snowflake
        .views
        .iter_mut()
        .find(|v| v.name == name)
        .ok_or_else(|| format!("View '{name}' does not exist or not authorized."))
}

pub(super) fn column_mut<'a>(table: &'a mut Table, column: &str) -> R<&'a mut Column> {
    let t = table.name.clone();
    table
        .columns
        .iter_mut()
        .find(|c| c.name == column)
        .ok_or_else(|| format!("invalid identifier '{column}': table {t} has no such column"))
}

/// `CREATE [OR REPLACE] ... [IF NOT EXISTS]` of a named object in `list`.
pub(super) fn create_named<T>(
    list: &mut Vec<T>,
    def: T,
    name: &str,
    kind: &str,
    replace: bool,
    if_not_exists: bool,
    name_of: impl Fn(&T) -> &str,
) -> R<()> {
    match list.iter_mut().find(|x| name_of(x) == name) {
        Some(_) if if_not_exists => Ok(()),
        Some(x) if replace => {
            *x = def;
            Ok(())
        }
        Some(_) => Err(format!("{kind} '{name}' already exists.")),
        None => {
            list.push(def);
            Ok(())
        }
    }
}

/// Records `privilege` on `role`.
pub(super) fn grant_privilege(ws: &mut Workspace, role: &str, privilege: Privilege) -> R<()> {
    let r = ws
        .roles
        .iter_mut()
        .find(|r| r.name == role)
        .ok_or_else(|| format!("Role '{role}' does not exist or not authorized."))?;
    if !r.privileges.contains(&privilege) {
        r.privileges.push(privilege);
    }
    Ok(())
}

/// Snowflake's text for an object created twice.
fn exists(kind: &str, name: &str) -> String {
    format!("{kind} '{name}' already exists.")
}

/// Applies one statement to the workspace: each kind of statement is one
/// function below.
pub(super) fn apply(ws: &mut Workspace, scope: &mut Scope, stmt: Ddl, origin: &Origin) -> R<()> {
    match stmt {
        Ddl::UseDatabase(d) => scope.database = d,
        Ddl::UseSchema(parts) => match parts.as_slice() {
            [s] => scope.schema = s.clone(),
            [d, s] => {
                scope.database = d.clone();
                scope.schema = s.clone();
            }
            _ => return Err("USE SCHEMA takes [database.]schema".into()),
        },
        Ddl::UseRole | Ddl::CreateSchema => {}
        Ddl::Each(changes) => {
            for (at, change) in changes {
                apply(ws, scope, change, origin).map_err(|e| located(e, at))?;
            }
        }
        Ddl::GrantUsage { on, name, role } => grant::grant_usage(ws, scope, on, name, role)?,
        Ddl::GrantApply { privilege, role } => grant_privilege(ws, &role, privilege)?,
        Ddl::SetBody {
            masking,
            name,
            body,
        } => alter::set_body(ws, scope, masking, name, body)?,
        Ddl::CreateTable {
            name,
            columns,
            replace,
            if_not_exists,
        } => create::create_table(ws, scope, origin, name, columns, replace, if_not_exists)?,
        Ddl::Insert {
            table,
            columns,
            rows,
        } => create::insert(ws, scope, table, columns, rows)?,
        Ddl::CreateRole {
            name,
            replace,
            if_not_exists,
        } => create::create_role(ws, origin, name, replace, if_not_exists)?,
        Ddl::CreateTag {
            name,
            replace,
            if_not_exists,
        } => create::create_tag(ws, origin, name, replace, if_not_exists)?,
        Ddl::CreateMasking {
            def,
            name,
            replace,
            if_not_exists,
        } => create::create_masking(ws, scope, origin, def, name, replace, if_not_exists)?,
        Ddl::CreateRowAccess {
            def,
            name,
            replace,
            if_not_exists,
        } => create::create_row_access(ws, scope, origin, def, name, replace, if_not_exists)?,
        Ddl::CreateFunction { def, replace } => create::create_function(ws, origin, def, replace)?,
        Ddl::CreateView {
            name,
            query,
            secure,
            replace,
        } => create::create_view(ws, scope, origin, name, query, secure, replace)?,
        Ddl::ViewSetMasking {
            view,
            column,
            policy,
            using,
            force,
        } => alter::view_set_masking(
            ws,
            scope,
            origin,
            view,
            alter::SetMasking {
                column,
                policy,
                using,
                force,
            },
        )?,
        Ddl::ViewUnsetMasking { view, column } => {
            view_mut(ws, scope, &view)?
                .column_policies
                .retain(|(c, _)| *c != column);
        }
        Ddl::GrantRoleToUser { role, user } => grant::grant_role_to_user(ws, role, user)?,
        Ddl::GrantRoleToRole { role, to } => grant::grant_role_to_role(ws, role, to)?,
        Ddl::GrantSelect { table, role } => grant::grant_select(ws, scope, table, role)?,
        Ddl::SetMasking {
            table,
            column,
            policy,
            using,
            force,
        } => alter::set_masking(
            ws,
            scope,
            origin,
            table,
            alter::SetMasking {
                column,
                policy,
                using,
                force,
            },
        )?,
        Ddl::UnsetMasking { table, column } => {
            let t = table_mut(ws, scope, &table)?;
            column_mut(t, &column)?.masking_policy = None;
        }
        Ddl::SetTags {
            table,
            column,
            tags,
        } => alter::set_tags(ws, scope, table, column, tags)?,
        Ddl::UnsetTags {
            table,
            column,
            tags,
        } => alter::unset_tags(ws, scope, table, column, tags)?,
        Ddl::AddRowAccess {
            table,
            policy,
            columns,
        } => alter::add_row_access(ws, scope, origin, table, policy, columns)?,
        Ddl::DropRowAccess { table, policy } => alter::drop_row_access(ws, scope, table, policy)?,
        Ddl::TagSetMasking {
            tag,
            policies,
            force,
        } => alter::tag_set_masking(ws, scope, tag, policies, force)?,
        Ddl::TagUnsetMasking { tag, policies } => {
            alter::tag_unset_masking(ws, scope, tag, policies)?
        }
    }
    Ok(())
}
