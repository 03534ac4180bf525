//! The policy relation: [`PolicyTable`], a table as one session may see it
//! (its policy SQL planned over the raw relation, behind a
//! [`PolicyBarrierExec`]); which user filters it takes below the barrier is
//! `pushdown`'s concern.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::common::Column as DfColumn;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, TableType, col,
};
use datafusion::physical_plan::ExecutionPlan;
use quick_cache::sync::Cache;

use crate::enforce::PolicyBarrierExec;
use crate::load::data_check::DataFiles;
use crate::model::TableName;

use super::pushdown::{Pushdown, under_top_projection};
use super::state::*;

/// A table as one session may see it: its policy SQL planned over the raw
/// relation, executed behind a [`PolicyBarrierExec`].
#[derive(Debug)]
pub struct PolicyTable {
    pub(super) name: TableName,
    pub(super) schema: SchemaRef,
    /// The policy SQL's plan, analyzed, and when `reusable` also through
    /// the full logical optimizer, once: each scan then only pushes its
    /// filters, projection and limit into it (`per_scan_optimizer`).
    pub(super) base: LogicalPlan,
    /// Whether `base` is optimized for every statement of the session (it
    /// reads no clock: see `reusable`); otherwise each scan optimizes it
    /// whole, with the statement's start time.
    pub(super) reusable: bool,
    /// Where it is planned: `relation_state` of the session's internal state.
    pub(super) state: SessionState,
    /// Which user filters run below the barrier, and as what.
    pub(super) pushdown: Pushdown,
    pub(super) data: Option<Arc<DataFiles>>,
    /// When `reusable`: the optimized plans of recent scans, by what each
    /// asked of the relation (at most [`SCAN_PLANS`]).
    scans: Cache<ScanKey, LogicalPlan>,
}

/// Optimized scan plans a reusable relation keeps.
const SCAN_PLANS: usize = 32;

/// What a statement asks of a policy relation's scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScanKey {
    projection: Option<Vec<usize>>,
    filters: Vec<Expr>,
    limit: Option<usize>,
}

impl PolicyTable {
    /// The relation of `plan` (the policy SQL, planned in `state`, a
    /// `relation_state`), analyzed once here, and optimized once when it
    /// reads no clock: what `scan` adds on top (pushed filters, which
    /// arrive analyzed from the statement's plan, a projection of columns,
    /// a limit) needs no analysis. `pushdown` says, of the plan scans build
    /// on, which filters go below the barrier.
    pub(super) fn analyzed(
        name: TableName,
        plan: LogicalPlan,
        state: SessionState,
        pushdown: impl FnOnce(&LogicalPlan) -> Pushdown,
        data: Option<Arc<DataFiles>>,
    ) -> datafusion::common::Result<Self> {
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})?;
        // A plan the optimizer refuses here is left to each scan, which
        // reports the error with the statement that reached it.
        let optimized = reusable(&plan)
            .then(|| {
                let state = fresh(&state);
                state.optimizer().optimize(plan.clone(), &state, |_, _| {})
            })
            .and_then(|r| r.ok());
        let reusable = optimized.is_some();
        let base = optimized.unwrap_or(plan);
        Ok(Self {
            name,
            schema: Arc::new(base.schema().as_arrow().clone()),
            pushdown: pushdown(&base),
            base,
            reusable,
            state,
            data,
            scans: Cache::new(SCAN_PLANS),
        })
    }

    /// The table this relation protects.
    pub fn table_name(&self) -> &TableName {
        &self.name
    }

    /// A reusable relation's scan, optimized: the plan kept for the same
    /// projection, filters and limit, or a new one, kept.
    fn kept_scan(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<LogicalPlan> {
        let key = ScanKey {
            projection: projection.cloned(),
            filters: filters.to_vec(),
            limit,
        };
        if let Some(plan) = self.scans.get(&key) {
            return Ok(plan);
        }
        let plan = self.scan_plan(projection, filters, limit)?;
        let optimized = per_scan_optimizer().optimize(plan, &self.state, |_, _| {})?;
        self.scans.insert(key, optimized.clone());
        Ok(optimized)
    }

    /// `base` with a scan's filters, projection and limit, before the
    /// optimizer pushes them down.
    fn scan_plan(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<LogicalPlan> {
        // Only filters `accepts` took arrive here; any other fails the
        // statement (closed), as does a relation with nowhere to put them.
        let refused = || {
            datafusion::common::internal_datafusion_err!(
                "a filter that may not run below the policy of {} reached its scan",
                self.name
            )
        };
        let pushed = self.pushdown.split(filters).ok_or_else(refused)?;
        let mut builder = match pushed.on_raw {
            None => LogicalPlanBuilder::from(self.base.clone()),
            Some(p) => {
                LogicalPlanBuilder::from(under_top_projection(&self.base, p).ok_or_else(refused)?)
            }
        };
        if let Some(predicate) = pushed.on_output {
            builder = builder.filter(predicate)?;
        }
        if let Some(indices) = projection {
            let columns: Vec<Expr> = indices
                .iter()
                .map(|i| col(DfColumn::new_unqualified(self.schema.field(*i).name())))
                .collect();
            builder = builder.project(columns)?;
        }
        if let Some(n) = limit {
            builder = builder.limit(0, Some(n))?;
        }
        builder.build()
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| self.pushdown.accepts(f)).collect())
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        // A relation that reads the clock is planned in a copy of its state
        // with this statement's start time, so `now()` folds once per
        // statement, by the full optimizer; one that does not needs neither,
        // and keeps what each kind of scan optimized to for the next
        // statement that asks the same of it.
        let phase = crate::trace::phase("relation: optimize");
        let (state, optimized) = if self.reusable {
            let optimized = self.kept_scan(projection, filters, limit)?;
            (Cow::Borrowed(&self.state), optimized)
        } else {
            let state = fresh(&self.state);
            let plan = self.scan_plan(projection, filters, limit)?;
            let optimized = state.optimizer().optimize(plan, &state, |_, _| {})?;
            (Cow::Owned(state), optimized)
        };
        phase.end();
        let phase = crate::trace::phase("relation: physical plan");
        let physical = state
            .query_planner()
            .create_physical_plan(&optimized, state.as_ref())
            .await?;
        phase.end();
        Ok(Arc::new(PolicyBarrierExec::new(
            physical,
            self.name.to_string(),
            self.data.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::enforce::Engine;
    use crate::enforce::pushdown::tests::sample;

    #[tokio::test]
    async fn a_policy_relation_is_optimized_once_unless_it_reads_the_clock() {
        use crate::model::{EnforcementMode, SessionOptions, TableName};
        let engine = Engine::load(sample()).await.unwrap();
        for mode in [EnforcementMode::Inlined, EnforcementMode::ProfileJoin] {
            let bob = engine
                .session_with(SessionOptions {
                    mode: Some(mode),
                    ..SessionOptions::user("bob")
                })
                .unwrap();
            let core = &bob.bound().unwrap().core;
            let relation = |table: &str| {
                let name = TableName {
                    database: "ANALYTICS".into(),
                    schema: "PUBLIC".into(),
                    table: table.into(),
                };
                async move { core.policy_table(&name).await.unwrap() }
            };
            // Customers' policies (and, in profile-join mode, bob's
            // CURRENT_USER()) are fixed for bob's session: optimized once.
            let customers = relation("CUSTOMERS").await;
            assert!(customers.reusable, "{mode:?}");
            // Orders' time window compares with now(): folding it once would
            // keep the window where the session's first statement put it.
            let orders = relation("ORDERS").await;
            assert!(!orders.reusable, "{mode:?}");
            assert!(!crate::enforce::state::reusable(&orders.base), "{mode:?}");
        }
        // A clock read inside a subquery counts too.
        let state = datafusion::prelude::SessionContext::new().state();
        for (sql, reusable) in [
            ("SELECT 1 AS x WHERE 1 < 2", true),
            ("SELECT 1 AS x WHERE now() IS NOT NULL", false),
            (
                "SELECT 1 AS x WHERE EXISTS (SELECT 1 WHERE current_date() IS NOT NULL)",
                false,
            ),
        ] {
            let plan = state.create_logical_plan(sql).await.unwrap();
            assert_eq!(crate::enforce::state::reusable(&plan), reusable, "{sql}");
        }
    }

    #[tokio::test]
    async fn a_reusable_relation_optimizes_each_kind_of_scan_once() {
        use crate::model::TableName;
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let core = &bob.bound().unwrap().core;
        let table = |t: &str| TableName {
            database: "ANALYTICS".into(),
            schema: "PUBLIC".into(),
            table: t.into(),
        };
        let customers = core.policy_table(&table("CUSTOMERS")).await.unwrap();
        let scans = || customers.scans.len();
        let text = |b: &[datafusion::arrow::array::RecordBatch]| {
            datafusion::arrow::util::pretty::pretty_format_batches(b)
                .unwrap()
                .to_string()
        };
        let sql = "SELECT ID, NAME, BALANCE FROM CUSTOMERS WHERE ID > 1 ORDER BY ID";
        let first = text(&bob.sql(sql).await.unwrap());
        assert_eq!(scans(), 1);
        // The same statement again: the same answer from the kept plan.
        assert_eq!(text(&bob.sql(sql).await.unwrap()), first);
        assert_eq!(scans(), 1);
        // Another filter is another kind of scan, with its own answer.
        let other = text(
            &bob.sql("SELECT ID, NAME, BALANCE FROM CUSTOMERS WHERE ID > 2 ORDER BY ID")
                .await
                .unwrap(),
        );
        assert_eq!(scans(), 2);
        assert_ne!(other, first);
        // A relation that reads the clock keeps nothing.
        let orders = core.policy_table(&table("ORDERS")).await.unwrap();
        bob.sql("SELECT COUNT(*) AS N FROM ORDERS").await.unwrap();
        bob.sql("SELECT COUNT(*) AS N FROM ORDERS").await.unwrap();
        assert_eq!(orders.scans.len(), 0);
    }

    #[tokio::test]
    async fn a_policy_relation_reports_estimated_statistics() {
        use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let bound = bob.bound().unwrap();
        let checked = bound.check("SELECT ORDER_ID, AMOUNT FROM ORDERS").unwrap();
        let (state, plan) = bound.plan_user_statement(checked.statement).await.unwrap();
        let physical = state.create_physical_plan(&plan).await.unwrap();
        fn barrier(
            p: &std::sync::Arc<dyn ExecutionPlan>,
        ) -> Option<std::sync::Arc<dyn ExecutionPlan>> {
            if p.name() == "PolicyBarrierExec" {
                return Some(std::sync::Arc::clone(p));
            }
            p.children().into_iter().find_map(barrier)
        }
        let barrier = barrier(&physical).expect("the scan is a policy relation");
        let stats = StatisticsContext::new()
            .compute(barrier.as_ref(), &StatisticsArgs::new())
            .unwrap();
        // The Parquet row count reaches the planner (joins are ordered by
        // it), as an estimate only: nothing may answer COUNT(*) from it.
        assert!(
            stats.num_rows.get_value().is_some_and(|n| *n > 0),
            "{stats:?}"
        );
        assert!(!stats.num_rows.is_exact().unwrap_or(false), "{stats:?}");
        // An unmasked column's bounds come through (as estimates); the
        // masked amount carries none from the raw values.
        let id = &stats.column_statistics[0];
        assert!(id.min_value.get_value().is_some(), "{stats:?}");
        assert!(!id.min_value.is_exact().unwrap_or(false), "{stats:?}");
        let amount = &stats.column_statistics[1];
        assert!(amount.min_value.get_value().is_none(), "{stats:?}");
        assert!(amount.max_value.get_value().is_none(), "{stats:?}");
    }
}
