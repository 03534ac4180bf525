//! Rendering a [`CompiledTable`] as the SQL of its policy relation.
//!
//! Two modes produce the same rows (tested):
//! - [`RenderMode::ProfileJoin`]: user-independent SQL that cross-joins the
//!   current user's row of `VEIL.SYSTEM.USER_PROFILE` (selected by
//!   `current_user()`, which each session binds), like Immuta's secure views;
//!   one compilation serves every user.
//! - [`RenderMode::Inlined`]: one user's entitlements substituted as literals,
//!   so conditions fold and DataFusion can prune.
//!
//! Everything is built as sqlparser AST nodes; entitlement values are never
//! spliced into SQL text. Row rules go in `WHERE` over the raw columns, masks
//! in the select list, so rows are filtered on raw values before masking.

mod conditions;
mod kanon;
mod masks;
mod snowflake;

pub use crate::model::{Entitlements, PROFILE_TABLE, USER_VALUES_TABLE, meets};
pub(crate) use conditions::canonical_integer;
pub(crate) use masks::fit;
pub use snowflake::{
    SnowflakeExport, SnowflakePolicies, purpose_role, snowflake_mask, snowflake_policies,
};

use std::collections::{BTreeMap, BTreeSet};

use datafusion::sql::sqlparser::ast::{Expr, ObjectName, Query, SelectItem, SetExpr, TableFactor};

use crate::compile::CompiledTable;
use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ast::*;
use crate::sql::ident::quoted;

/// How to read entitlements.
#[derive(Debug, Clone, Copy)]
pub enum RenderMode<'a> {
    /// Join the current user's profile row.
    ProfileJoin,
    /// Substitute this user's entitlements.
    Inlined(&'a Entitlements),
    /// Snowflake SQL for `veil export snowflake`: entitlements from the
    /// exported lookup functions, purposes as roles, masks as Snowflake
    /// expressions instead of Veil's functions.
    Snowflake(&'a SnowflakeExport),
}

pub(super) struct Renderer<'a> {
    mode: RenderMode<'a>,
    table: &'a CompiledTable,
    settings: &'a Settings,
    /// Profile-join mode: conditions that depend on the user only, computed
    /// once per query in the profile subquery as `p."veil$c<i>"` instead of
    /// once per row.
    /// Each with its SQL text, which identifies repeats.
    hoisted: std::cell::RefCell<Vec<(String, Expr)>>,
}

/// The object name of a table in generated SQL (always quoted).
pub fn object_name(name: &TableName) -> ObjectName {
    ObjectName::from(vec![
        quoted(&name.database),
        quoted(&name.schema),
        quoted(&name.table),
    ])
}

pub(super) fn skeleton(mode: RenderMode<'_>) -> Result<Query> {
    let profile = PROFILE_TABLE.map(|p| format!("\"{p}\"")).join(".");
    let sql = match mode {
        RenderMode::Inlined(_) | RenderMode::Snowflake(_) => "SELECT 1 FROM x AS \"t\"".to_string(),
        RenderMode::ProfileJoin => format!(
            "SELECT 1 FROM x AS \"t\" CROSS JOIN (SELECT \"GROUPS\" AS \"veil$groups\", \"ATTRIBUTES\" AS \"veil$attributes\" \
             FROM {profile} WHERE \"USER_NAME\" = current_user()) AS \"p\""
        ),
    };
    let query = crate::sql::ident::generated_parser(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| {
            VeilError::PolicyFailure(format!("internal: policy skeleton does not parse: {e}"))
        })?;
    Ok(*query)
}

/// `SELECT <columns> FROM (inner) AS "t"`, each column either passed
/// through (`None`) or replaced by its mask expression over `t`.
pub(crate) fn masked_projection(
    inner: Query,
    columns: Vec<(String, Option<Expr>)>,
) -> Result<Query> {
    let mut query = skeleton(RenderMode::Inlined(&Entitlements {
        user: String::new(),
        groups: BTreeSet::new(),
        attributes: BTreeMap::new(),
        purposes: BTreeSet::new(),
        current_purpose: None,
        roles_in_session: BTreeSet::new(),
    }))?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(VeilError::PolicyFailure(
            "internal: policy skeleton is not a SELECT".into(),
        ));
    };
    if let Some(from) = select.from.first_mut() {
        from.relation = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(inner),
            alias: Some(datafusion::sql::sqlparser::ast::TableAlias {
                explicit: true,
                name: quoted("t"),
                columns: vec![],
                at: None,
            }),
            sample: None,
        };
    }
    select.projection = columns
        .into_iter()
        .map(|(name, masked)| SelectItem::ExprWithAlias {
            expr: masked.unwrap_or_else(|| raw(&name)),
            alias: quoted(&name),
        })
        .collect();
    Ok(query)
}

/// The policy relation of `table` as a SQL query over its raw relation.
/// Fails closed when a policy on the table cannot be evaluated.
pub fn policy_query(
    table: &CompiledTable,
    settings: &Settings,
    mode: RenderMode<'_>,
) -> Result<Query> {
    if let Some(data_error) = &table.data_error {
        return Err(VeilError::PolicyFailure(data_error.clone()));
    }
    if let Some(failure) = table.failures.first() {
        return Err(VeilError::PolicyFailure(format!(
            "{failure}; queries on {} are denied",
            table.name
        )));
    }
    let r = Renderer {
        mode,
        table,
        settings,
        hoisted: Default::default(),
    };
    let (qis, k) = kanon::quasi_identifiers(table);
    if let RenderMode::Snowflake(_) = mode {
        kanon::refuse_export(table)?;
    }
    let mut query = skeleton(mode)?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(VeilError::PolicyFailure(
            "internal: policy skeleton is not a SELECT".into(),
        ));
    };
    if let Some(TableFactor::Table { name, .. }) = select.from.first_mut().map(|f| &mut f.relation)
    {
        *name = object_name(&table.name);
    }
    select.projection = table
        .columns
        .iter()
        .map(|c| {
            Ok(SelectItem::ExprWithAlias {
                expr: match &c.mask {
                    // Quasi-identifiers pass through raw to the k-anonymity
                    // selects around this one.
                    Some(_) if qis.iter().any(|q| q.name == c.name) => raw(&c.name),
                    Some(m) => r.column_expr(&c.name, c.declared, m)?,
                    None => raw(&c.name),
                },
                alias: quoted(&c.name),
            })
        })
        .collect::<Result<_>>()?;
    if !qis.is_empty() {
        select.projection.extend(r.kanon_inner_items(&qis)?);
    }
    select.selection = match r.row_filter()? {
        B::Lit(true) => None,
        other => Some(other.into_expr()),
    };
    let hoisted = r.hoisted.into_inner();
    if !hoisted.is_empty() {
        let profile = select
            .from
            .first_mut()
            .and_then(|f| f.joins.first_mut())
            .map(|j| &mut j.relation);
        let Some(TableFactor::Derived { subquery, .. }) = profile else {
            return Err(VeilError::PolicyFailure(
                "internal: profile-join skeleton has no profile subquery".into(),
            ));
        };
        let SetExpr::Select(inner) = subquery.body.as_mut() else {
            return Err(VeilError::PolicyFailure(
                "internal: profile subquery is not a SELECT".into(),
            ));
        };
        for (i, (_, expr)) in hoisted.into_iter().enumerate() {
            inner.projection.push(SelectItem::ExprWithAlias {
                expr,
                alias: quoted(&format!("veil$c{i}")),
            });
        }
    }
    if !qis.is_empty() {
        query = kanon::wrap(query, table, &qis, k)?;
    }
    Ok(query)
}
