//! `CREATE` statements (tables, roles, tags, policies, functions, views)
//! and `INSERT`.

use crate::sql::ident::resolve_table;

use super::super::checks::*;
use super::super::parse::*;
use super::*;

/// `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (col type, ...)`.
pub(super) fn create_table(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    name: Vec<String>,
    columns: Vec<(String, SnowflakeType)>,
    replace: bool,
    if_not_exists: bool,
) -> R<()> {
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
    Ok(())
}

/// `INSERT INTO t [(cols)] VALUES (...), ...`: rows of a table created in DDL.
pub(super) fn insert(
    ws: &mut Workspace,
    scope: &Scope,
    table: Vec<String>,
    columns: Option<Vec<String>>,
    rows: Vec<Vec<Option<String>>>,
) -> R<()> {
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
    Ok(())
}

/// `CREATE [OR REPLACE] MASKING POLICY [IF NOT EXISTS] ...`.
pub(super) fn create_masking(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    mut def: MaskingPolicyDef,
    name: Vec<String>,
    replace: bool,
    if_not_exists: bool,
) -> R<()> {
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
    Ok(())
}

/// `CREATE [OR REPLACE] ROW ACCESS POLICY [IF NOT EXISTS] ...`.
pub(super) fn create_row_access(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    mut def: RowAccessPolicyDef,
    name: Vec<String>,
    replace: bool,
    if_not_exists: bool,
) -> R<()> {
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
    Ok(())
}

/// `CREATE [OR REPLACE] FUNCTION ...` (a SQL function policies may call).
pub(super) fn create_function(
    ws: &mut Workspace,
    origin: &Origin,
    mut def: SqlFunction,
    replace: bool,
) -> R<()> {
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
    Ok(())
}

/// `CREATE [OR REPLACE] [SECURE] VIEW v AS SELECT ...`.
pub(super) fn create_view(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    name: Vec<String>,
    query: Box<datafusion::sql::sqlparser::ast::Query>,
    secure: bool,
    replace: bool,
) -> R<()> {
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
    Ok(())
}

/// `CREATE [OR REPLACE] ROLE [IF NOT EXISTS] r`.
pub(super) fn create_role(
    ws: &mut Workspace,
    origin: &Origin,
    name: String,
    replace: bool,
    if_not_exists: bool,
) -> R<()> {
    match ws.roles.iter_mut().find(|r| r.name == name) {
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
    }
    Ok(())
}

/// `CREATE [OR REPLACE] TAG [IF NOT EXISTS] t`.
pub(super) fn create_tag(
    ws: &mut Workspace,
    origin: &Origin,
    name: String,
    replace: bool,
    if_not_exists: bool,
) -> R<()> {
    match ws.snowflake.tags.get_mut(&name) {
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
    }
    Ok(())
}
