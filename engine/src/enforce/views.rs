//! Views as a session sees them: planned with the view owner's rights but
//! each table through this session's policies, the view's own column masks
//! applied on top, self-reading views denied, and the result behind the
//! barrier like a table's policy relation.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, Query, Statement};

use crate::error::{Result, VeilError, from_datafusion};
use crate::model::{TableName, Workspace};
use crate::sql::gate::check_statement;

use super::catalog::*;
use super::lock;
use super::policy_table::*;
use super::pushdown::Pushdown;
use super::state::*;

impl SessionCore {
    /// A view as this session sees it, planned once per session.
    pub(super) async fn view_table(
        core: &Arc<Self>,
        name: &TableName,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(v) = lock(&core.views).get(name) {
            return Ok(Arc::clone(v));
        }
        if view_reads_itself(&core.version.workspace, name) {
            return Err(VeilError::PolicyFailure(format!(
                "View {name} reads itself; queries on it are denied."
            )));
        }
        let view = Box::pin(Self::plan_view(core, name)).await?;
        lock(&core.views).insert(name.clone(), Arc::clone(&view));
        Ok(view)
    }

    /// Plans a view's query with the view owner's rights — every table and
    /// view of the workspace, each through *this* session's policies — then
    /// applies the view's own column masking policies (SPEC rule 5).
    pub(super) async fn plan_view(
        core: &Arc<Self>,
        name: &TableName,
    ) -> Result<Arc<dyn TableProvider>> {
        let ws = &core.version.workspace;
        let view = ws
            .snowflake
            .view(name)
            .ok_or_else(|| VeilError::NotAuthorized(name.to_string()))?;
        let everything = ws
            .tables
            .iter()
            .map(|t| t.name.clone())
            .chain(ws.snowflake.views.iter().map(|v| v.name.clone()));
        let state = user_state(core, build_catalog(core, everything));
        let mut query = (*view.query).clone();
        crate::sql::snowflake::rewrite_snowflake(&mut query)?;
        let plan_query = |q: Query| {
            let state = state.clone();
            async move {
                state
                    .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
                        Box::new(q),
                    ))))
                    .await
                    .map_err(from_datafusion)
            }
        };
        if !view.column_policies.is_empty() {
            let inner = plan_query(query.clone()).await?;
            let mut columns = Vec::new();
            for field in inner.schema().fields() {
                let masked = match view.column_policies.iter().find(|(c, _)| c == field.name()) {
                    None => None,
                    Some((column, policy)) => Some(view_column_mask(
                        ws,
                        view,
                        column,
                        policy,
                        field.data_type(),
                    )?),
                };
                columns.push((field.name().clone(), masked));
            }
            if let Some((missing, _)) = view
                .column_policies
                .iter()
                .find(|(c, _)| !columns.iter().any(|(n, _)| n == c))
            {
                return Err(VeilError::PolicyFailure(format!(
                    "A masking policy is set on column {missing} of view {name}, which has no such column; queries on it are denied."
                )));
            }
            query = crate::render::masked_projection(query, columns)?;
        }
        let plan = plan_query(query).await?;
        // Behind the barrier like a table's policy relation: no user
        // predicate is evaluated on rows the view leaves out.
        Ok(Arc::new(PolicyTable::analyzed(
            name.clone(),
            plan,
            relation_state(&state),
            |_| Pushdown::none(),
            None,
        )?))
    }
}

/// Whether view `name` reads itself, directly or through other views.
pub(super) fn view_reads_itself(ws: &Workspace, name: &TableName) -> bool {
    let reads = |view: &TableName| -> Vec<TableName> {
        ws.snowflake
            .view(view)
            .and_then(|v| {
                check_statement(
                    Statement::Query(v.query.clone()),
                    &ws.settings.default_database,
                    &ws.settings.default_schema,
                )
                .ok()
            })
            .map(|c| c.tables)
            .unwrap_or_default()
    };
    let mut seen = BTreeSet::new();
    let mut stack = reads(name);
    while let Some(t) = stack.pop() {
        if t == *name {
            return true;
        }
        if seen.insert(t.clone()) {
            stack.extend(reads(&t));
        }
    }
    false
}

/// A view column's masking policy, bound to the view's output and fitted to
/// the column's type.
pub(super) fn view_column_mask(
    ws: &Workspace,
    view: &crate::model::ViewDef,
    column: &str,
    policy: &crate::model::ColumnPolicy,
    data_type: &DataType,
) -> Result<ast::Expr> {
    let deny = |m: String| {
        VeilError::PolicyFailure(format!("{m}; queries on view {} are denied.", view.name))
    };
    let def = ws
        .snowflake
        .masking_policy(&policy.policy)
        .ok_or_else(|| deny(format!("masking policy {} does not exist", policy.policy)))?;
    let declared = declared_of(data_type).ok_or_else(|| {
        deny(format!(
            "column {column} has type {data_type}, which no masking policy can mask"
        ))
    })?;
    if crate::model::TypeFamily::of(declared) != crate::model::TypeFamily::of(def.returns) {
        return Err(deny(format!(
            "masking policy {} masks {} but view column {column} is {declared}",
            def.name,
            crate::model::TypeFamily::of(def.returns)
        )));
    }
    let col = crate::model::Column {
        name: column.to_string(),
        declared,
        tags: Vec::new(),
        removed_tags: Vec::new(),
        masking_policy: None,
    };
    let bound = crate::compile::snowflake::bind_masking_policy(
        &ws.snowflake,
        &view.name.to_string(),
        &col,
        def,
        &policy.using,
    )
    .map_err(deny)?;
    if has_subquery(&bound) {
        // Table masks read mapping tables with the owner's rights in the
        // internal catalog; a view's mask is planned in the user's catalog,
        // where a lookup would see the user's policies instead.
        return Err(deny(format!(
            "masking policy {} on view column {column} reads a table, which Veil supports on table columns only",
            def.name
        )));
    }
    Ok(crate::render::fit(bound, declared))
}

pub(super) fn has_subquery(e: &ast::Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Find(bool);
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &ast::Expr) -> std::ops::ControlFlow<()> {
            if matches!(
                e,
                ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. }
            ) {
                self.0 = true;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut f = Find(false);
    let _ = e.visit(&mut f);
    f.0
}

/// The Snowflake type a view column of Arrow type `t` has.
pub(super) fn declared_of(t: &DataType) -> Option<veil_udfs::SnowflakeType> {
    use veil_udfs::SnowflakeType as T;
    Some(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => T::Varchar(16_777_216),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => T::Number {
            precision: 38,
            scale: 0,
        },
        DataType::Decimal128(p, s) if *s >= 0 => T::Number {
            precision: *p,
            scale: *s as u8,
        },
        DataType::Float32 | DataType::Float64 => T::Float,
        DataType::Boolean => T::Boolean,
        DataType::Date32 => T::Date,
        DataType::Timestamp(_, None) => T::TimestampNtz,
        _ => return None,
    })
}
