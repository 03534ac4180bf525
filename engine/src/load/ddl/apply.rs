//! Applying each parsed [`Ddl`] statement to the workspace, with the
//! `USE DATABASE/SCHEMA` scope names resolve against.

use crate::ident::resolve_table;
use crate::model::*;

use super::checks::*;
use super::parse::*;
use super::*;

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

pub(super) fn apply(ws: &mut Workspace, scope: &mut Scope, stmt: Ddl, origin: &Origin) -> R<()> {
    let exists = |kind: &str, name: &str| format!("{kind} '{name}' already exists.");
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
        Ddl::GrantUsage { on, name, role } => {
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
        }
        Ddl::GrantApply { privilege, role } => grant_privilege(ws, &role, privilege)?,
        Ddl::SetBody {
            masking,
            name,
            body,
        } => {
            let name = qualify(scope, &name)?;
            if masking {
                let def = ws
                    .snowflake
                    .masking_policies
                    .iter_mut()
                    .find(|p| p.name == name)
                    .ok_or_else(|| {
                        format!("Masking policy '{name}' does not exist or not authorized.")
                    })?;
                check_body("masking policy", &name, &body, &def.params)?;
                def.body = body;
            } else {
                let def = ws
                    .snowflake
                    .row_access_policies
                    .iter_mut()
                    .find(|p| p.name == name)
                    .ok_or_else(|| {
                        format!("Row access policy '{name}' does not exist or not authorized.")
                    })?;
                check_body("row access policy", &name, &body, &def.params)?;
                def.body = body;
            }
        }
        Ddl::CreateTable {
            name,
            columns,
            replace,
            if_not_exists,
        } => {
            let name = resolve_table(&name, &scope.database, &scope.schema)
                .ok_or_else(|| format!("'{}' is not a table name", name.join(".")))?;
            if ws.snowflake.view(&name).is_some() {
                return Err(exists("View", &name.to_string()));
            }
            let columns: Vec<Column> = columns
                .into_iter()
                .map(|(c, declared)| Column {
                    name: c,
                    declared,
                    tags: Vec::new(),
                    removed_tags: Vec::new(),
                    masking_policy: None,
                })
                .collect();
            match ws.tables.iter_mut().find(|t| t.name == name) {
                Some(_) if if_not_exists => {}
                Some(t) if replace && t.rows.is_some() => {
                    t.columns = columns;
                    t.rows = Some(Vec::new());
                    t.row_access_policy = None;
                    t.origin = origin.clone();
                }
                Some(t) if replace => {
                    return Err(format!(
                        "table {name} is read from {}; a DDL script cannot replace it",
                        t.origin
                    ));
                }
                Some(_) => return Err(exists("Table", &name.to_string())),
                None => ws.tables.push(Table {
                    name,
                    location: ws.dir.clone(),
                    format: FileFormat::Csv,
                    event_time: None,
                    owners: Vec::new(),
                    columns,
                    row_access_policy: None,
                    rows: Some(Vec::new()),
                    origin: origin.clone(),
                }),
            }
        }
        Ddl::Insert {
            table,
            columns,
            rows,
        } => {
            let t = table_mut(ws, scope, &table)?;
            let name = t.name.clone();
            let positions: Vec<usize> = match &columns {
                None => (0..t.columns.len()).collect(),
                Some(cs) => cs
                    .iter()
                    .map(|c| {
                        t.columns.iter().position(|x| x.name == *c).ok_or_else(|| {
                            format!("invalid identifier '{c}': table {name} has no such column")
                        })
                    })
                    .collect::<R<_>>()?,
            };
            let width = t.columns.len();
            let Some(stored) = t.rows.as_mut() else {
                return Err(format!(
                    "INSERT goes only into tables a DDL script created; {name} is read from its data files"
                ));
            };
            let mut added = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                if row.len() != positions.len() {
                    return Err(format!(
                        "row {} of the INSERT into {name} has {} value(s) but {} column(s) are listed",
                        i + 1,
                        row.len(),
                        positions.len()
                    ));
                }
                let mut full = vec![None; width];
                for (value, &at) in row.into_iter().zip(&positions) {
                    full[at] = value;
                }
                added.push(full);
            }
            stored.extend(added);
        }
        Ddl::CreateRole {
            name,
            replace,
            if_not_exists,
        } => match ws.roles.iter_mut().find(|r| r.name == name) {
            Some(_) if if_not_exists => {}
            Some(r) if replace => {
                // DROP + CREATE: the old role's grants and memberships go.
                r.grants.clear();
                r.inherits.clear();
                r.privileges.clear();
                for u in &mut ws.users {
                    u.roles.retain(|x| *x != name);
                }
                for other in &mut ws.roles {
                    other.inherits.retain(|x| *x != name);
                }
            }
            Some(_) => return Err(exists("Role", &name)),
            None => ws.roles.push(Role {
                name,
                grants: Vec::new(),
                inherits: Vec::new(),
                privileges: Vec::new(),
                origin: origin.clone(),
            }),
        },
        Ddl::CreateTag {
            name,
            replace,
            if_not_exists,
        } => match ws.snowflake.tags.get_mut(&name) {
            Some(_) if if_not_exists => {}
            Some(t) if replace => t.origin = origin.clone(),
            Some(_) => return Err(exists("Tag", &name)),
            None => {
                ws.snowflake.tags.insert(
                    name,
                    TagDef {
                        masking_policies: Vec::new(),
                        origin: origin.clone(),
                    },
                );
            }
        },
        Ddl::CreateMasking {
            mut def,
            name,
            replace,
            if_not_exists,
        } => {
            def.name = qualify(scope, &name)?;
            let Some(first) = def.params.first() else {
                return Err(format!(
                    "Masking policy {} needs at least one argument (the masked value).",
                    def.name
                ));
            };
            if TypeFamily::of(first.declared) != TypeFamily::of(def.returns) {
                return Err(format!(
                    "Masking policy {} returns {} but its first argument {} is {}: the return type must be the type of the value it masks.",
                    def.name,
                    TypeFamily::of(def.returns),
                    first.name,
                    TypeFamily::of(first.declared)
                ));
            }
            check_body("masking policy", &def.name, &def.body, &def.params)?;
            def.origin = origin.clone();
            let name = def.name.clone();
            create_named(
                &mut ws.snowflake.masking_policies,
                def,
                &name,
                "Masking policy",
                replace,
                if_not_exists,
                |p| &p.name,
            )?;
        }
        Ddl::CreateRowAccess {
            mut def,
            name,
            replace,
            if_not_exists,
        } => {
            def.name = qualify(scope, &name)?;
            check_body("row access policy", &def.name, &def.body, &def.params)?;
            def.origin = origin.clone();
            let name = def.name.clone();
            create_named(
                &mut ws.snowflake.row_access_policies,
                def,
                &name,
                "Row access policy",
                replace,
                if_not_exists,
                |p| &p.name,
            )?;
        }
        Ddl::CreateFunction { mut def, replace } => {
            def.origin = origin.clone();
            let name = def.name.clone();
            create_named(
                &mut ws.snowflake.functions,
                def,
                &name,
                "Function",
                replace,
                false,
                |f| &f.name,
            )?;
        }
        Ddl::CreateView {
            name,
            query,
            secure,
            replace,
        } => {
            let name = resolve_table(&name, &scope.database, &scope.schema)
                .ok_or_else(|| format!("'{}' is not a view name", name.join(".")))?;
            if ws.table(&name).is_some() {
                return Err(exists("Table", &name.to_string()));
            }
            let def = ViewDef {
                name: name.clone(),
                query,
                secure,
                column_policies: Vec::new(),
                origin: origin.clone(),
            };
            let views = &mut ws.snowflake.views;
            match views.iter_mut().find(|v| v.name == name) {
                Some(v) if replace => {
                    // DROP + CREATE: grants on the old view go.
                    *v = def;
                    for r in &mut ws.roles {
                        r.grants.retain(|g| *g != name);
                    }
                }
                Some(_) => return Err(exists("View", &name.to_string())),
                None => views.push(def),
            }
        }
        Ddl::ViewSetMasking {
            view,
            column,
            policy,
            using,
            force,
        } => {
            let policy = qualify(scope, &policy)?;
            masking_for(ws, &policy, &column, &using)?;
            let v = view_mut(ws, scope, &view)?;
            if v.column_policies.iter().any(|(c, _)| *c == column) {
                if !force {
                    return Err(ERROR_003529.to_string());
                }
                v.column_policies.retain(|(c, _)| *c != column);
            }
            v.column_policies.push((
                column,
                ColumnPolicy {
                    policy,
                    using,
                    origin: origin.clone(),
                },
            ));
        }
        Ddl::ViewUnsetMasking { view, column } => {
            view_mut(ws, scope, &view)?
                .column_policies
                .retain(|(c, _)| *c != column);
        }
        Ddl::GrantRoleToUser { role, user } => {
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
        }
        Ddl::GrantRoleToRole { role, to } => {
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
        }
        Ddl::GrantSelect { table, role } => {
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
        }
        Ddl::SetMasking {
            table,
            column,
            policy,
            using,
            force,
        } => {
            let policy = qualify(scope, &policy)?;
            let def = masking_for(ws, &policy, &column, &using)?;
            let t = table_mut(ws, scope, &table)?;
            let table_name = t.name.clone();
            for u in using.iter().skip(1) {
                column_mut(t, u)?;
            }
            let c = column_mut(t, &column)?;
            if TypeFamily::of(c.declared) != TypeFamily::of(def.returns) {
                return Err(format!(
                    "Specified column {table_name}.{column} is {} but masking policy {policy} masks {}: the types must match.",
                    c.declared,
                    TypeFamily::of(def.returns)
                ));
            }
            if c.masking_policy.is_some() && !force {
                return Err(ERROR_003529.to_string());
            }
            c.masking_policy = Some(ColumnPolicy {
                policy,
                using,
                origin: origin.clone(),
            });
        }
        Ddl::UnsetMasking { table, column } => {
            let t = table_mut(ws, scope, &table)?;
            column_mut(t, &column)?.masking_policy = None;
        }
        Ddl::SetTags {
            table,
            column,
            tags,
        } => {
            let known: Vec<String> = ws.snowflake.tags.keys().cloned().collect();
            let t = table_mut(ws, scope, &table)?;
            let c = column_mut(t, &column)?;
            for (tag, value) in tags {
                if !known.contains(&tag) {
                    return Err(format!("Tag '{tag}' does not exist or not authorized."));
                }
                c.tags.retain(|x| x.name != tag);
                c.tags.push(ColumnTag {
                    value: Some(value),
                    ..ColumnTag::new(tag, TagSource::Snowflake)
                });
            }
        }
        Ddl::UnsetTags {
            table,
            column,
            tags,
        } => {
            let t = table_mut(ws, scope, &table)?;
            let c = column_mut(t, &column)?;
            c.tags
                .retain(|x| !(x.source == TagSource::Snowflake && tags.contains(&x.name)));
        }
        Ddl::AddRowAccess {
            table,
            policy,
            columns,
        } => {
            let policy = qualify(scope, &policy)?;
            let def = ws
                .snowflake
                .row_access_policy(&policy)
                .cloned()
                .ok_or_else(|| {
                    format!("Row access policy '{policy}' does not exist or not authorized.")
                })?;
            let t = table_mut(ws, scope, &table)?;
            for c in &columns {
                column_mut(t, c)?;
            }
            if let Some(existing) = &t.row_access_policy {
                return Err(format!(
                    "Object '{}' already has a ROW_ACCESS_POLICY ({}). Only one ROW_ACCESS_POLICY is allowed at a time.",
                    t.name, existing.policy
                ));
            }
            if columns.len() != def.params.len() {
                return Err(format!(
                    "Row access policy {policy} takes {} argument(s) but ON names {} column(s).",
                    def.params.len(),
                    columns.len()
                ));
            }
            t.row_access_policy = Some(TableRowAccess {
                policy,
                columns,
                origin: origin.clone(),
            });
        }
        Ddl::DropRowAccess { table, policy } => {
            let policy = policy.map(|p| qualify(scope, &p)).transpose()?;
            let t = table_mut(ws, scope, &table)?;
            match (&t.row_access_policy, policy) {
                (Some(_), None) => t.row_access_policy = None,
                (Some(existing), Some(p)) if existing.policy == p => t.row_access_policy = None,
                (_, Some(p)) => {
                    return Err(format!(
                        "Row access policy '{p}' is not attached to table {}.",
                        t.name
                    ));
                }
                (None, None) => {}
            }
        }
        Ddl::TagSetMasking {
            tag,
            policies,
            force,
        } => {
            let policies: Vec<String> = policies
                .iter()
                .map(|p| qualify(scope, p))
                .collect::<R<_>>()?;
            let defs: Vec<MaskingPolicyDef> = policies
                .iter()
                .map(|p| {
                    ws.snowflake.masking_policy(p).cloned().ok_or_else(|| {
                        format!("Masking policy '{p}' does not exist or not authorized.")
                    })
                })
                .collect::<R<_>>()?;
            let family_of = |name: &str, ws: &Workspace| {
                ws.snowflake
                    .masking_policy(name)
                    .map(|d| TypeFamily::of(d.returns))
            };
            let current: Vec<(String, Option<TypeFamily>)> = ws
                .snowflake
                .tags
                .get(&tag)
                .ok_or_else(|| format!("Tag '{tag}' does not exist or not authorized."))?
                .masking_policies
                .iter()
                .map(|p| (p.clone(), family_of(p, ws)))
                .collect();
            let mut next = current;
            for def in defs {
                let family = Some(TypeFamily::of(def.returns));
                if let Some(pos) = next.iter().position(|(_, f)| *f == family) {
                    if !force {
                        return Err(format!(
                            "Tag {tag} already has masking policy {} for data type {}: a tag takes one masking policy per data type (use FORCE to replace it).",
                            next[pos].0,
                            TypeFamily::of(def.returns)
                        ));
                    }
                    next.remove(pos);
                }
                next.push((def.name.clone(), family));
            }
            if let Some(t) = ws.snowflake.tags.get_mut(&tag) {
                t.masking_policies = next.into_iter().map(|(p, _)| p).collect();
            }
        }
        Ddl::TagUnsetMasking { tag, policies } => {
            let policies: Vec<String> = policies
                .iter()
                .map(|p| qualify(scope, p))
                .collect::<R<_>>()?;
            let t = ws
                .snowflake
                .tags
                .get_mut(&tag)
                .ok_or_else(|| format!("Tag '{tag}' does not exist or not authorized."))?;
            t.masking_policies.retain(|p| !policies.contains(p));
        }
    }
    Ok(())
}
