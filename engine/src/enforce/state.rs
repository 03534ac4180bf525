//! The DataFusion session states Veil plans in: the configuration both
//! share (Snowflake dialect, no identifier normalization, no information
//! schema), Snowflake type names, the internal state of a version (raw
//! relations, every UDF) and a user's state (their catalog, the scan check,
//! user-callable functions only).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Field;
use datafusion::catalog::CatalogProviderList;
use datafusion::common::plan_err;
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::SessionConfig;
use datafusion::sql::sqlparser::ast::{self};
use veil_udfs::context::SessionContextFunc;

use crate::enforce::PolicyScanCheck;

use super::catalog::*;

/// Maps Snowflake type names DataFusion does not know (`NUMBER(p,s)`,
/// `TIMESTAMP_NTZ`) in user SQL.
#[derive(Debug)]
pub struct SnowflakeTypePlanner;

impl TypePlanner for SnowflakeTypePlanner {
    fn plan_type_field(
        &self,
        sql_type: &ast::DataType,
    ) -> datafusion::common::Result<Option<datafusion::arrow::datatypes::FieldRef>> {
        let text = sql_type.to_string();
        let upper = text.to_ascii_uppercase();
        let known = upper.starts_with("NUMBER")
            || upper.starts_with("TIMESTAMP_NTZ")
            || upper.starts_with("DATETIME");
        if !known {
            return Ok(None);
        }
        match veil_udfs::SnowflakeType::parse(&text) {
            Ok(t) => Ok(Some(Arc::new(Field::new("", t.arrow_type(), true)))),
            Err(e) => plan_err!("{e}"),
        }
    }
}

pub(super) fn base_config(default_db: &str, default_schema: &str) -> SessionConfig {
    SessionConfig::new()
        .with_default_catalog_and_schema(default_db, default_schema)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false)
        .with_target_partitions(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
        .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
        .set_str("datafusion.sql_parser.dialect", "snowflake")
}

/// The DataFusion state user SQL is planned in: the session's catalog, the
/// policy scan check, user-callable functions only.
pub(super) fn user_state(
    core: &Arc<SessionCore>,
    catalog: Arc<dyn CatalogProviderList>,
) -> SessionState {
    let ws = &core.version.workspace;
    let mut config = base_config(&ws.settings.default_database, &ws.settings.default_schema);
    if core.executor.is_some() {
        for_cluster(&mut config);
    }
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(Arc::clone(core.internal.runtime_env()))
        .with_default_features()
        .with_catalog_list(catalog)
        .with_type_planner(Arc::new(SnowflakeTypePlanner))
        .with_analyzer_rule(Arc::new(PolicyScanCheck))
        .with_optimizer_rule(Arc::new(crate::guard::RebalanceBooleanChains))
        .with_physical_optimizer_rule(Arc::new(crate::guard::RebalanceFilterPredicates))
        .with_scalar_functions({
            let mut all = datafusion::execution::SessionStateDefaults::default_scalar_functions();
            all.extend(core.user_functions.iter().cloned());
            all
        })
        .build()
}

/// What a plan sent to a cluster must be planned without (also what `veil
/// scheduler` plans stages with): dynamic filters.
/// Ballista re-plans join stages after their inputs ran (it swaps hash join
/// sides by the sizes it saw), which DataFusion refuses once a join has
/// built its dynamic filter.
pub fn for_cluster(config: &mut SessionConfig) {
    // Each flag, not only the umbrella: the configuration travels to the
    // scheduler as key-value pairs, and a sub-flag left on turns it back on.
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
}

/// The state policy relations are planned in: `internal` without physical
/// optimizer rules. A policy relation's physical plan is always a subtree
/// of a statement's plan (its `PolicyBarrierExec` exposes it as a child),
/// and the statement's own physical optimizer runs over the whole tree,
/// the relation included: the same single pass DataFusion gives a view's
/// plan. Optimizing the relation first as well did the work twice (a third
/// of a point lookup's planning in inlined mode, half in profile-join).
pub(super) fn relation_state(internal: &SessionState) -> SessionState {
    SessionStateBuilder::new_from_existing(internal.clone())
        .with_physical_optimizer_rules(Vec::new())
        .build()
}

/// Whether a policy relation's optimized plan may serve every statement of
/// its session: it calls no function whose value may change between
/// statements (`now()`, `current_date`: anything not immutable), which the
/// optimizer would fold to one statement's value. Everything else in it is
/// fixed for the session: its version and entitlements are rendered into
/// the policy SQL, and its context functions (`CURRENT_USER()`, ...) are
/// the session's own instances, bound to its one identity.
pub(super) fn reusable(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::Volatility;
    let mut reusable = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e
                    && f.func.signature().volatility != Volatility::Immutable
                    && !f.func.inner().is::<SessionContextFunc>()
                {
                    reusable = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    reusable
}

/// The logical optimizer a scan runs over a relation already optimized
/// whole (`PolicyTable::base`, when `reusable`): what the scan adds on top is a filter
/// of safe predicates, a projection of columns and a limit, so it needs
/// pushing down (into the raw scans, where Parquet prunes on them),
/// folding (a predicate on a constant mask becomes a literal), and
/// projection pruning — not decorrelation, join rewriting or common
/// subexpressions, which the relation's one full pass did. A third of the
/// full optimizer's time on a point lookup in inlined mode, most of it in
/// profile-join mode, was that pass repeated on every statement.
pub(super) fn per_scan_optimizer() -> &'static datafusion::optimizer::Optimizer {
    use datafusion::optimizer::eliminate_filter::EliminateFilter;
    use datafusion::optimizer::eliminate_limit::EliminateLimit;
    use datafusion::optimizer::optimize_projections::OptimizeProjections;
    use datafusion::optimizer::propagate_empty_relation::PropagateEmptyRelation;
    use datafusion::optimizer::push_down_filter::PushDownFilter;
    use datafusion::optimizer::push_down_limit::PushDownLimit;
    use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
    static OPTIMIZER: std::sync::OnceLock<datafusion::optimizer::Optimizer> =
        std::sync::OnceLock::new();
    OPTIMIZER.get_or_init(|| {
        datafusion::optimizer::Optimizer::with_rules(vec![
            Arc::new(PushDownLimit::new()),
            Arc::new(PushDownFilter::new()),
            Arc::new(SimplifyExpressions::new()),
            Arc::new(EliminateFilter::new()),
            Arc::new(EliminateLimit::new()),
            Arc::new(PropagateEmptyRelation::new()),
            Arc::new(OptimizeProjections::new()),
            Arc::new(crate::guard::RebalanceBooleanChains),
        ])
    })
}

/// A copy of `state` with this query's start time, so `now()` folds once
/// per query (what `SessionContext::state()` does).
pub(super) fn fresh(state: &SessionState) -> SessionState {
    let mut state = state.clone();
    state.mark_start_execution();
    state
}

/// Runs a planned statement; an empty result keeps its column names.
pub(super) async fn execute_plan(
    state: &SessionState,
    plan: &LogicalPlan,
) -> datafusion::common::Result<Vec<RecordBatch>> {
    let physical = state.create_physical_plan(plan).await?;
    let schema = physical.schema();
    let batches =
        datafusion::physical_plan::collect(physical, Arc::new(TaskContext::from(state))).await?;
    if batches.is_empty() {
        return Ok(vec![RecordBatch::new_empty(schema)]);
    }
    Ok(batches)
}
