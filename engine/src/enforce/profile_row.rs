//! Profile-join relations with the session's profile row folded in.
//!
//! The policy SQL of profile-join mode stays user-independent: it
//! cross-joins the current user's row of `VEIL.SYSTEM.USER_PROFILE`
//! (selected by `current_user()`). That row is fixed for a session (its
//! version's profile table, its one identity), so the session evaluates the
//! uncorrelated profile subquery once, when it plans a relation, and the
//! relation's plan takes the row's values as literals: conditions on the
//! user fold before any row is read, and the plan has no cross join and no
//! per-row mark column left to build, re-derive and run for every
//! statement — as Snowflake evaluates a memoizable function once rather
//! than per row. Attribute matches stay a hash semi-join on
//! `VEIL.SYSTEM.USER_VALUES`; the rows are those of the unfolded SQL (a
//! user without a profile row sees none).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{EmptyRelation, Expr, JoinType, LogicalPlan, Projection};

use crate::model::PROFILE_TABLE;

use super::state::{execute_plan, fresh, reusable};

/// The alias the policy SQL gives the profile subquery (`render::skeleton`).
const PROFILE_ALIAS: &str = "p";

/// `plan` (a profile-join policy relation, before analysis) with its
/// profile subquery evaluated in `state` and its cross join replaced by the
/// row's values as literal columns (or by no rows when the user has no
/// profile row). A plan without a profile subquery, or whose profile
/// subquery reads the clock, is returned as it is.
pub(super) async fn fold_profile_row(
    plan: LogicalPlan,
    state: &SessionState,
) -> Result<LogicalPlan> {
    let Some(profile) = profile_subquery(&plan) else {
        return Ok(plan);
    };
    if !reusable(&profile) {
        return Ok(plan);
    }
    let batches = execute_plan(&fresh(state), &profile).await?;
    let row = match ProfileRow::of(&batches)? {
        ProfileRow::Several => return Ok(plan),
        row => row,
    };
    plan.transform_up_with_subqueries(|node| {
        if profile_join(&node).is_none() {
            return Ok(Transformed::no(node));
        }
        let LogicalPlan::Join(join) = node else {
            return Ok(Transformed::no(node));
        };
        let folded = match &row {
            ProfileRow::Missing | ProfileRow::Several => {
                LogicalPlan::EmptyRelation(EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::clone(&join.schema),
                })
            }
            ProfileRow::Values(values) => {
                let mut exprs: Vec<Expr> = join
                    .left
                    .schema()
                    .columns()
                    .into_iter()
                    .map(Expr::Column)
                    .collect();
                for ((qualifier, field), value) in join.right.schema().iter().zip(values) {
                    exprs.push(
                        Expr::Literal(value.clone(), None)
                            .alias_qualified(qualifier.cloned(), field.name()),
                    );
                }
                LogicalPlan::Projection(Projection::try_new_with_schema(
                    exprs,
                    Arc::clone(&join.left),
                    Arc::clone(&join.schema),
                )?)
            }
        };
        Ok(Transformed::yes(folded))
    })
    .map(|t| t.data)
}

/// What the profile subquery returned.
enum ProfileRow {
    /// No row: the user has no profile, and the relation no rows.
    Missing,
    /// The user's row.
    Values(Vec<ScalarValue>),
    /// More than one row (never for a profile keyed by user): the plan is
    /// left as it is.
    Several,
}

impl ProfileRow {
    fn of(batches: &[RecordBatch]) -> Result<Self> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(Self::Missing);
        };
        if rows > 1 {
            return Ok(Self::Several);
        }
        let values = batch
            .columns()
            .iter()
            .map(|c| ScalarValue::try_from_array(c, 0))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::Values(values))
    }
}

/// The first profile subquery cross-joined in `plan`.
fn profile_subquery(plan: &LogicalPlan) -> Option<LogicalPlan> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let Some(p) = profile_join(node) {
            found = Some(p.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// When `node` is the policy SQL's cross join with the profile subquery
/// (`… CROSS JOIN (SELECT … FROM VEIL.SYSTEM.USER_PROFILE …) AS "p"`), that
/// subquery.
fn profile_join(node: &LogicalPlan) -> Option<&LogicalPlan> {
    let LogicalPlan::Join(join) = node else {
        return None;
    };
    if join.join_type != JoinType::Inner || !join.on.is_empty() || join.filter.is_some() {
        return None;
    }
    let LogicalPlan::SubqueryAlias(alias) = join.right.as_ref() else {
        return None;
    };
    (alias.alias.table() == PROFILE_ALIAS && reads_profile(&alias.input))
        .then_some(join.right.as_ref())
}

/// Whether `plan` scans `VEIL.SYSTEM.USER_PROFILE`.
fn reads_profile(plan: &LogicalPlan) -> bool {
    let profile = TableReference::full(PROFILE_TABLE[0], PROFILE_TABLE[1], PROFILE_TABLE[2]);
    let mut reads = false;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name == profile
        {
            reads = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    reads
}

#[cfg(test)]
mod tests {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;

    use crate::enforce::Engine;
    use crate::enforce::pushdown::tests::sample;
    use crate::model::{EnforcementMode, SessionOptions, TableName};

    use super::*;

    fn count(plan: &LogicalPlan, what: impl Fn(&LogicalPlan) -> bool) -> usize {
        let mut n = 0;
        let _ = plan.apply_with_subqueries(|node| {
            n += usize::from(what(node));
            Ok(TreeNodeRecursion::Continue)
        });
        n
    }

    #[tokio::test]
    async fn a_profile_join_relation_takes_the_sessions_profile_row_as_literals() {
        let engine = Engine::load(sample()).await.unwrap();
        let customers = TableName {
            database: "ANALYTICS".into(),
            schema: "PUBLIC".into(),
            table: "CUSTOMERS".into(),
        };
        for user in ["alice", "bob", "carol"] {
            let session = |mode| {
                engine
                    .session_with(SessionOptions {
                        mode: Some(mode),
                        ..SessionOptions::user(user)
                    })
                    .unwrap()
            };
            let joined = session(EnforcementMode::ProfileJoin);
            let core = &joined.bound().unwrap().core;
            let relation = core.policy_table(&customers).await.unwrap();
            // No profile scan and no cross join left to plan per statement.
            assert_eq!(count(&relation.base, reads_profile), 0, "{user}");
            assert_eq!(
                count(&relation.base, |n| profile_join(n).is_some()),
                0,
                "{user}"
            );
            // The SQL still reads the profile; the rows are inlined mode's.
            let sql = "SELECT * FROM CUSTOMERS ORDER BY ID";
            let text = |batches| {
                datafusion::arrow::util::pretty::pretty_format_batches(batches)
                    .unwrap()
                    .to_string()
            };
            let inlined = session(EnforcementMode::Inlined).sql(sql).await.unwrap();
            assert_eq!(
                text(&joined.sql(sql).await.unwrap()),
                text(&inlined),
                "{user}"
            );
        }
    }

    #[tokio::test]
    async fn a_user_without_a_profile_row_gets_no_rows_and_several_rows_are_left_alone() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine
            .session_with(SessionOptions {
                mode: Some(EnforcementMode::ProfileJoin),
                ..SessionOptions::user("bob")
            })
            .unwrap();
        let state = &bob.bound().unwrap().core.internal;
        let plan = |selection: &str| {
            let sql = format!(
                "SELECT t.x, p.\"veil$groups\" FROM (VALUES (1), (2)) AS t(x) CROSS JOIN \
                 (SELECT \"GROUPS\" AS \"veil$groups\" FROM \"VEIL\".\"SYSTEM\".\"USER_PROFILE\" \
                 WHERE {selection}) AS \"p\""
            );
            async move { state.create_logical_plan(&sql).await.unwrap() }
        };
        let rows = |plan: LogicalPlan| async move {
            let batches = execute_plan(state, &plan).await.unwrap();
            batches.iter().map(RecordBatch::num_rows).sum::<usize>()
        };
        // Nobody's row: no rows, and nothing left to join.
        let nobody = fold_profile_row(plan("\"USER_NAME\" = 'NOBODY'").await, state)
            .await
            .unwrap();
        assert_eq!(count(&nobody, reads_profile), 0);
        assert_eq!(rows(nobody).await, 0);
        // Bob's row: each of t's rows with bob's groups.
        let mine = fold_profile_row(plan("\"USER_NAME\" = current_user()").await, state)
            .await
            .unwrap();
        assert_eq!(count(&mine, reads_profile), 0);
        assert_eq!(rows(mine).await, 2);
        // Every user's row (never rendered so): the cross join stays.
        let everyone = fold_profile_row(plan("true").await, state).await.unwrap();
        assert_eq!(count(&everyone, |n| profile_join(n).is_some()), 1);
        assert_eq!(rows(everyone).await, 2 * engine_users(&engine));
    }

    fn engine_users(engine: &Engine) -> usize {
        engine.current().workspace.users.len()
    }
}
