//! `ALTER` statements: policy bodies, masking policies and tags on
//! columns (of tables and views) and on tags, row access policies.

use super::super::checks::*;
use super::super::parse::*;
use super::super::*;
use super::*;

/// `ALTER MASKING|ROW ACCESS POLICY p SET BODY -> expr`.
pub(super) fn set_body(
    ws: &mut Workspace,
    scope: &Scope,
    masking: bool,
    name: Vec<String>,
    body: Expr,
) -> R<()> {
    let name = qualify(scope, &name)?;
    if masking {
        let def = ws
            .snowflake
            .masking_policies
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("Masking policy '{name}' does not exist or not authorized."))?;
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
    Ok(())
}

/// What `SET MASKING POLICY` on a column says: the column, the policy, the
/// `USING` columns and `FORCE`.
pub(super) struct SetMasking {
    pub(super) column: String,
    pub(super) policy: Vec<String>,
    pub(super) using: Vec<String>,
    pub(super) force: bool,
}

/// `ALTER VIEW v MODIFY COLUMN c SET MASKING POLICY p [USING (...)] [FORCE]`.
pub(super) fn view_set_masking(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    view: Vec<String>,
    set: SetMasking,
) -> R<()> {
    let SetMasking {
        column,
        policy,
        using,
        force,
    } = set;
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
    Ok(())
}

/// `ALTER TABLE t MODIFY COLUMN c SET MASKING POLICY p [USING (...)] [FORCE]`.
pub(super) fn set_masking(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    table: Vec<String>,
    set: SetMasking,
) -> R<()> {
    let SetMasking {
        column,
        policy,
        using,
        force,
    } = set;
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
    let name = t.name.clone();
    super::exempt::check_table(ws, &name)
}

/// `ALTER TABLE t MODIFY COLUMN c SET TAG tag = 'value', ...`.
pub(super) fn set_tags(
    ws: &mut Workspace,
    scope: &Scope,
    table: Vec<String>,
    column: String,
    tags: Vec<(String, String)>,
) -> R<()> {
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
    Ok(())
}

/// `ALTER TABLE t MODIFY COLUMN c UNSET TAG tag, ...`.
pub(super) fn unset_tags(
    ws: &mut Workspace,
    scope: &Scope,
    table: Vec<String>,
    column: String,
    tags: Vec<String>,
) -> R<()> {
    let t = table_mut(ws, scope, &table)?;
    let c = column_mut(t, &column)?;
    c.tags
        .retain(|x| !(x.source == TagSource::Snowflake && tags.contains(&x.name)));
    Ok(())
}

/// `ALTER TABLE t ADD ROW ACCESS POLICY p ON (cols)`.
pub(super) fn add_row_access(
    ws: &mut Workspace,
    scope: &Scope,
    origin: &Origin,
    table: Vec<String>,
    policy: Vec<String>,
    columns: Vec<String>,
) -> R<()> {
    let policy = qualify(scope, &policy)?;
    let def = ws
        .snowflake
        .row_access_policy(&policy)
        .cloned()
        .ok_or_else(|| format!("Row access policy '{policy}' does not exist or not authorized."))?;
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
    let name = t.name.clone();
    super::exempt::check_table(ws, &name)
}

/// `ALTER TABLE t DROP [ALL] ROW ACCESS POLICY [p]`.
pub(super) fn drop_row_access(
    ws: &mut Workspace,
    scope: &Scope,
    table: Vec<String>,
    policy: Option<Vec<String>>,
) -> R<()> {
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
    Ok(())
}

/// `ALTER TAG tag SET MASKING POLICY p, ... [FORCE]`.
pub(super) fn tag_set_masking(
    ws: &mut Workspace,
    scope: &Scope,
    tag: String,
    policies: Vec<Vec<String>>,
    force: bool,
) -> R<()> {
    let policies: Vec<String> = policies
        .iter()
        .map(|p| qualify(scope, p))
        .collect::<R<_>>()?;
    let defs: Vec<MaskingPolicyDef> = policies
        .iter()
        .map(|p| {
            ws.snowflake
                .masking_policy(p)
                .cloned()
                .ok_or_else(|| format!("Masking policy '{p}' does not exist or not authorized."))
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
    Ok(())
}

/// `ALTER TAG tag UNSET MASKING POLICY p, ...`.
pub(super) fn tag_unset_masking(
    ws: &mut Workspace,
    scope: &Scope,
    tag: String,
    policies: Vec<Vec<String>>,
) -> R<()> {
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
    Ok(())
}
