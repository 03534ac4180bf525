//! Profile-join relations with the session's profile lookups folded in.
//!
//! The policy SQL of profile-join mode stays user-independent: it
//! cross-joins the current user's row of `VEIL.SYSTEM.USER_PROFILE`
//! (selected by `current_user()`) and probes `VEIL.SYSTEM.USER_VALUES` for
//! a row's value (`match_attribute`, `match_groups`). Both lookups are
//! fixed for a session (its version's tables, its one identity), so the
//! session evaluates them once, when it plans a relation, as Snowflake
//! evaluates a memoizable function once per query rather than per row:
//! - the profile subquery's row becomes literal columns (no rows when the
//!   user has none), so conditions on the user fold before any row is
//!   read, and no cross join is left to plan for every statement;
//! - an `EXISTS` probe of the user's values becomes a hash probe of the
//!   row's value in the literal list of those values (`x IS NOT NULL AND x
//!   IN (…)`, never NULL, as the probe; integers for an integer column), not
//!   a semi-join to plan and build per statement.
//!
//! Each distinct lookup runs once per session ([`Lookups`]), whichever
//! tables make it. The rows are those of the unfolded SQL (tested against
//! it, and against inlined mode). A lookup that reads the clock, or a
//! profile subquery that returns several rows, is left as it is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    EmptyRelation, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Operator, Projection, lit,
};

use crate::model::{PROFILE_TABLE, USER_VALUES_TABLE};
use crate::render::canonical_integer;

use super::lock;
use super::state::{execute_plan, reusable};

/// A session's evaluated lookups, by plan: tables whose relations make the
/// same lookup (the profile row without conditions of its own, the user's
/// values of one attribute) evaluate it once per session.
#[derive(Debug, Default)]
pub(crate) struct Lookups(Mutex<HashMap<String, Vec<RecordBatch>>>);

impl Lookups {
    /// `plan`'s result in `state` (the session's internal state), or
    /// `None` when it reads the clock (its value is the statement's, not
    /// the session's).
    async fn run(
        &self,
        state: &SessionState,
        plan: &LogicalPlan,
    ) -> Result<Option<Vec<RecordBatch>>> {
        if !reusable(plan) {
            return Ok(None);
        }
        let key = plan.display_indent_schema().to_string();
        if let Some(batches) = lock(&self.0).get(&key) {
            return Ok(Some(batches.clone()));
        }
        let batches = execute_plan(state, plan).await?;
        lock(&self.0).insert(key, batches.clone());
        Ok(Some(batches))
    }
}

/// The alias the policy SQL gives the profile subquery (`render::skeleton`).
const PROFILE_ALIAS: &str = "p";

/// `plan` (a profile-join policy relation, before analysis) with its
/// profile lookups evaluated in `state` (through the session's `lookups`)
/// and folded in.
pub(super) async fn fold_profile_lookups(
    plan: LogicalPlan,
    state: &SessionState,
    lookups: &Lookups,
) -> Result<LogicalPlan> {
    let plan = fold_profile_row(plan, state, lookups).await?;
    fold_value_probes(plan, state, lookups).await
}

/// `plan` with its profile subquery evaluated in `state` and its cross
/// join replaced by the row's values as literal columns (or by no rows
/// when the user has no profile row). A plan without a profile subquery,
/// or whose profile subquery reads the clock, is returned as it is.
async fn fold_profile_row(
    plan: LogicalPlan,
    state: &SessionState,
    lookups: &Lookups,
) -> Result<LogicalPlan> {
    let Some(profile) = profile_subquery(&plan) else {
        return Ok(plan);
    };
    let Some(batches) = lookups.run(state, &profile).await? else {
        return Ok(plan);
    };
    let row = match ProfileRow::of(&batches)? {
        ProfileRow::Several => return Ok(plan),
        ProfileRow::Missing => None,
        ProfileRow::Values(values) => Some(values),
    };
    plan.transform_up_with_subqueries(|node| {
        // Only the joins with the subquery evaluated (the policy SQL has one).
        if profile_join(&node) != Some(&profile) {
            return Ok(Transformed::no(node));
        }
        let LogicalPlan::Join(join) = node else {
            return Ok(Transformed::no(node));
        };
        let folded = match &row {
            // No profile row: no rows.
            None => LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: Arc::clone(&join.schema),
            }),
            Some(values) => {
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
    reads(plan, PROFILE_TABLE[2])
}

/// Whether `plan` scans the table `name` of `VEIL.SYSTEM`.
fn reads(plan: &LogicalPlan, name: &str) -> bool {
    let table = TableReference::full(PROFILE_TABLE[0], PROFILE_TABLE[1], name);
    let mut reads = false;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name == table
        {
            reads = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    reads
}

/// `plan` with each `EXISTS` probe of `VEIL.SYSTEM.USER_VALUES` replaced
/// by a membership test of the probed value in the values the probe's
/// uncorrelated conditions select (evaluated once, in `state`).
async fn fold_value_probes(
    plan: LogicalPlan,
    state: &SessionState,
    lookups: &Lookups,
) -> Result<LogicalPlan> {
    // Each distinct probe evaluated once, then substituted everywhere.
    let mut probes: Vec<(Expr, Expr)> = Vec::new();
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Some(p) = ValueProbe::of(e) {
                    found.push((e.clone(), p));
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    for (exists, probe) in found {
        if probes.iter().any(|(e, _)| *e == exists) {
            continue;
        }
        if let Some(folded) = probe.fold(state, lookups).await? {
            probes.push((exists, folded));
        }
    }
    if probes.is_empty() {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| match probes.iter().find(|(p, _)| *p == e) {
                Some((_, folded)) => Ok(Transformed::yes(folded.clone())),
                None => Ok(Transformed::no(e)),
            })
        })
    })
    .map(|t| t.data)
}

/// An `EXISTS (SELECT … FROM USER_VALUES WHERE <uncorrelated> AND VALUE =
/// <outer value>)` probe, as the policy SQL renders `match_attribute` and
/// `match_groups`.
struct ValueProbe {
    /// The probe's table, filtered by its uncorrelated conditions.
    values: LogicalPlan,
    /// The outer value, over the outer query's columns.
    value: Expr,
    /// When the value is an integer column's text (`CAST(c AS VARCHAR)`),
    /// that column: the probe then compares integers.
    integer: Option<Expr>,
    negated: bool,
}

impl ValueProbe {
    fn of(e: &Expr) -> Option<Self> {
        let Expr::Exists(exists) = e else {
            return None;
        };
        let LogicalPlan::Projection(projection) = exists.subquery.subquery.as_ref() else {
            return None;
        };
        let LogicalPlan::Filter(filter) = projection.input.as_ref() else {
            return None;
        };
        if !reads(&filter.input, USER_VALUES_TABLE) {
            return None;
        }
        let mut compared = None;
        let mut uncorrelated = Vec::new();
        for c in split_conjunction(&filter.predicate) {
            if !c.contains_outer() {
                uncorrelated.push(c.clone());
                continue;
            }
            let Expr::BinaryExpr(b) = c else {
                return None;
            };
            let pair = match (b.left.as_ref(), b.right.as_ref()) {
                (column @ Expr::Column(_), value) | (value, column @ Expr::Column(_))
                    if b.op == Operator::Eq && compared.is_none() && !column.contains_outer() =>
                {
                    (column.clone(), value.clone())
                }
                _ => return None,
            };
            compared = Some(pair);
        }
        let (column, value) = compared?;
        // The outer value must be the outer query's alone to run there.
        if !value.column_refs().is_empty() {
            return None;
        }
        let values = match conjunction(uncorrelated) {
            Some(p) => LogicalPlanBuilder::from(filter.input.as_ref().clone()).filter(p),
            None => Ok(LogicalPlanBuilder::from(filter.input.as_ref().clone())),
        }
        .and_then(|b| b.project(vec![column]))
        .and_then(|b| b.build())
        .ok()?;
        let integer = match &value {
            Expr::Cast(c) if matches!(c.field.data_type(), DataType::Utf8 | DataType::Utf8View) => {
                match c.expr.as_ref() {
                    Expr::OuterReferenceColumn(field, column)
                        if field.data_type().is_signed_integer() =>
                    {
                        Some(Expr::Column(column.clone()))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        Some(Self {
            values,
            value: strip_outer_references(value).ok()?,
            integer,
            negated: exists.negated,
        })
    }

    /// The probe as a membership test of its value in the values it
    /// selects, or `None` when it reads the clock.
    async fn fold(self, state: &SessionState, lookups: &Lookups) -> Result<Option<Expr>> {
        let Some(batches) = lookups.run(state, &self.values).await? else {
            return Ok(None);
        };
        let mut held: Vec<ScalarValue> = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                let v = ScalarValue::try_from_array(batch.column(0), row)?;
                // A NULL value is held by nobody (`VALUE = x` is never true).
                if !v.is_null() {
                    held.push(v);
                }
            }
        }
        let (value, list) = match self.integer {
            // An integer column compares as integers (Parquet prunes on
            // them, and no row is cast to text), as inlined mode's list:
            // exact, as the text of an integer is canonical, so a value
            // that is not canonical integer text ('01', '+1', '1.0') or
            // is out of range never equalled a row's text.
            Some(column) => (
                column,
                held.iter()
                    .filter_map(integer_value)
                    .map(|n| lit(ScalarValue::Int64(Some(n))))
                    .collect::<Vec<_>>(),
            ),
            None => (
                self.value,
                held.into_iter().map(|v| Expr::Literal(v, None)).collect(),
            ),
        };
        let member = if list.is_empty() {
            lit(false)
        } else {
            value.clone().is_not_null().and(value.in_list(list, false))
        };
        Ok(Some(if self.negated { !member } else { member }))
    }
}

/// The integer whose text `v` is, when `v` is the canonical text of one
/// that fits 64 bits.
fn integer_value(v: &ScalarValue) -> Option<i64> {
    let (ScalarValue::Utf8(Some(t))
    | ScalarValue::Utf8View(Some(t))
    | ScalarValue::LargeUtf8(Some(t))) = v
    else {
        return None;
    };
    canonical_integer(t).and_then(|n| i64::try_from(n).ok())
}

/// `e` with its outer references (`OuterReferenceColumn`) as the columns
/// they name, for use in the outer query itself.
fn strip_outer_references(e: Expr) -> Result<Expr> {
    e.transform(|e| match e {
        Expr::OuterReferenceColumn(_, c) => Ok(Transformed::yes(Expr::Column(c))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;

    use crate::enforce::Engine;
    use crate::enforce::pushdown::tests::sample;
    use crate::model::{EnforcementMode, SessionOptions, TableName};

    use super::*;

    /// The sample workspace, and bob's session in profile-join mode (bob
    /// holds Region EU and the group Analysts).
    async fn bob_in_profile_join() -> (Engine, crate::enforce::Session) {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine
            .session_with(SessionOptions {
                mode: Some(EnforcementMode::ProfileJoin),
                ..SessionOptions::user("bob")
            })
            .unwrap();
        (engine, bob)
    }

    fn customers() -> TableName {
        TableName {
            database: "ANALYTICS".into(),
            schema: "PUBLIC".into(),
            table: "CUSTOMERS".into(),
        }
    }

    /// Whether a node is a scan of `VEIL.SYSTEM.<name>`.
    fn scans(name: &str) -> impl Fn(&LogicalPlan) -> bool {
        move |n| matches!(n, LogicalPlan::TableScan(s) if s.table_name.table() == name)
    }

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
        let customers = customers();
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
            // No profile lookup and no cross join left to plan per statement.
            assert_eq!(count(&relation.base, scans(PROFILE_TABLE[2])), 0, "{user}");
            assert_eq!(count(&relation.base, scans(USER_VALUES_TABLE)), 0, "{user}");
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
        let (engine, bob) = bob_in_profile_join().await;
        let state = &bob.bound().unwrap().core.internal;
        // The plan of t cross joined with the profile rows `selection`
        // picks, with its profile row folded.
        let folded = |selection: &str| {
            let sql = format!(
                "SELECT t.x, p.\"veil$groups\" FROM (VALUES (1), (2)) AS t(x) CROSS JOIN \
                 (SELECT \"GROUPS\" AS \"veil$groups\" FROM \"VEIL\".\"SYSTEM\".\"USER_PROFILE\" \
                 WHERE {selection}) AS \"p\""
            );
            async move {
                let plan = state.create_logical_plan(&sql).await.unwrap();
                fold_profile_row(plan, state, &Lookups::default())
                    .await
                    .unwrap()
            }
        };
        let rows = |plan: LogicalPlan| async move {
            let batches = execute_plan(state, &plan).await.unwrap();
            batches.iter().map(RecordBatch::num_rows).sum::<usize>()
        };
        // Nobody's row: no rows, and nothing left to join.
        let nobody = folded("\"USER_NAME\" = 'NOBODY'").await;
        assert_eq!(count(&nobody, scans(PROFILE_TABLE[2])), 0);
        assert_eq!(rows(nobody).await, 0);
        // Bob's row: each of t's rows with bob's groups.
        let mine = folded("\"USER_NAME\" = current_user()").await;
        assert_eq!(count(&mine, scans(PROFILE_TABLE[2])), 0);
        assert_eq!(rows(mine).await, 2);
        // Every user's row (never rendered so): the cross join stays.
        let everyone = folded("true").await;
        assert_eq!(count(&everyone, |n| profile_join(n).is_some()), 1);
        assert_eq!(rows(everyone).await, 2 * engine_users(&engine));
    }

    fn engine_users(engine: &Engine) -> usize {
        engine.current().workspace.users.len()
    }

    #[tokio::test]
    async fn a_folded_value_probe_holds_the_rows_the_probe_holds() {
        let (_engine, bob) = bob_in_profile_join().await;
        let state = &bob.bound().unwrap().core.internal;
        let probe = |kind: &str, key: &str| {
            format!(
                "EXISTS (SELECT 1 FROM \"VEIL\".\"SYSTEM\".\"USER_VALUES\" AS \"veil$v\" \
                 WHERE \"veil$v\".\"USER_NAME\" = current_user() AND \"veil$v\".\"KIND\" = '{kind}' \
                 AND \"veil$v\".\"KEY\" = '{key}' AND \"veil$v\".\"VALUE\" = t.x)"
            )
        };
        let region = probe("attribute", "Region");
        let groups = probe("group", "");
        let nothing = probe("attribute", "Clearance");
        // Every value anyone holds, one nobody holds, and NULL.
        let from = "(SELECT \"VALUE\" AS x FROM \"VEIL\".\"SYSTEM\".\"USER_VALUES\" \
                    UNION SELECT 'nobody' UNION SELECT NULL) AS t";
        for condition in [
            region.clone(),
            format!("NOT {region}"),
            format!("{groups} OR {region}"),
            format!("NOT ({groups} AND NOT {region})"),
            format!("({region}) IS NOT TRUE"),
            nothing.clone(),
            format!("NOT {nothing}"),
        ] {
            let sql = format!("SELECT x FROM {from} WHERE {condition} ORDER BY x NULLS FIRST");
            let plan = state.create_logical_plan(&sql).await.unwrap();
            let folded = fold_profile_lookups(plan.clone(), state, &Lookups::default())
                .await
                .unwrap();
            assert_eq!(count(&folded, scans(USER_VALUES_TABLE)), 1, "{condition}");
            let rows = |plan| async move {
                let batches = execute_plan(state, &plan).await.unwrap();
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            };
            let expected = rows(plan).await;
            assert_eq!(rows(folded).await, expected, "{condition}");
            if condition == region {
                assert!(
                    expected.contains("EU") && !expected.contains("US"),
                    "{expected}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_session_evaluates_each_lookup_once() {
        let (_engine, bob) = bob_in_profile_join().await;
        let core = &bob.bound().unwrap().core;
        let query = core.policy_query(&customers()).unwrap();
        let plan = core
            .internal
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                datafusion::sql::sqlparser::ast::Statement::Query(Box::new(query)),
            )))
            .await
            .unwrap();
        let lookups = Lookups::default();
        let first = fold_profile_lookups(plan.clone(), &core.internal, &lookups)
            .await
            .unwrap();
        // The profile row and the Region values.
        let evaluated = lock(&lookups.0).len();
        assert_eq!(evaluated, 2);
        let again = fold_profile_lookups(plan, &core.internal, &lookups)
            .await
            .unwrap();
        assert_eq!(lock(&lookups.0).len(), evaluated);
        assert_eq!(again, first);
    }
}
