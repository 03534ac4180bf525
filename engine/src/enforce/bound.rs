//! [`Bound`]: one session identity compiled against one engine version, and
//! everything one statement does with it — the statement and access check,
//! planning on the planning thread ([`Planned`]), running or starting a
//! stream, SHOW TABLES and DESCRIBE, the printable rewrite, and the policy
//! names the audit records.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement};

use crate::compile::CompiledTable;
use crate::error::{Result, VeilError, from_datafusion};
use crate::model::{EnforcementMode, SessionOptions, TableName, Workspace, short_object_name};
use crate::output::SnowflakeNames;
use crate::render::{Entitlements, policy_query};
use crate::sql::gate::{
    CheckedStatement, StatementKind, check_statement, looks_like_read, rewrite_statement,
    statement_kind_of_text,
};
use crate::sql::ident::parse_statements;

use super::catalog::*;
use super::engine::*;
use super::identity::{Identity, resolve_identity};
use super::session::*;
use super::state::*;
use super::statements::Checked;
use super::system_tables::*;
use super::views::*;

/// One session identity compiled against one engine version: the user's
/// catalog of policy relations and the DataFusion state that plans on it.
/// This is what the decision cache holds; a query runs on one `Bound` from
/// start to end.
pub(crate) struct Bound {
    pub(super) core: Arc<SessionCore>,
    pub(super) state: SessionState,
    pub(super) role: String,
    pub(super) user: String,
}

impl fmt::Debug for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bound")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("version", &self.core.version.id)
            .finish()
    }
}

impl Bound {
    /// Compiles the session identity `options` against version `v`: refuses
    /// unknown, staged or disabled users, roles not granted and purposes not
    /// acknowledged (SPEC rule 9).
    pub(super) fn new(
        v: &Arc<EngineVersion>,
        options: &SessionOptions,
        executor: Option<Arc<dyn super::PlanExecutor>>,
    ) -> Result<Self> {
        let ws = &v.workspace;
        let Identity {
            user: user_name,
            role,
            granted_roles,
            roles_in_session,
            granted_tables,
            entitlements,
        } = resolve_identity(ws, options)?;
        let identity = veil_udfs::SessionIdentity {
            user: user_name.clone(),
            role: role.clone(),
            roles_in_session: roles_in_session.iter().cloned().collect(),
            available_roles: granted_roles.iter().cloned().collect(),
            purpose: options.purpose.clone(),
        };
        let mut internal = v.internal.clone();
        if executor.is_some() {
            // Policy relations are planned in this state: see `user_state`.
            super::state::for_cluster(internal.config_mut());
        }
        let context = veil_udfs::context_functions(identity);
        for f in &context {
            datafusion::execution::FunctionRegistry::register_udf(&mut internal, Arc::clone(f))?;
        }
        let mode = options.mode.unwrap_or(ws.settings.mode);
        // VEIL_UNMASK, the one Veil function user SQL may call, admits this
        // user to the columns of granted tables whose policy exception
        // admits them (SPEC rule 21).
        let grants = granted_tables
            .iter()
            .filter_map(|t| v.compiled.tables.get(t))
            .flat_map(|t| crate::compile::unmask_grants(t, &entitlements, &ws.settings))
            .collect();
        let unmask = veil_udfs::unmask::veil_unmask(&ws.settings.secret, grants);
        let relations = relation_state(&internal);
        let core = Arc::new(SessionCore {
            version: Arc::clone(v),
            internal,
            relations,
            mode,
            entitlements,
            granted: granted_tables.clone(),
            tables: Mutex::new(HashMap::new()),
            user_functions: context
                .into_iter()
                .filter(|f| !f.name().starts_with("veil_"))
                .chain(std::iter::once(unmask))
                .collect(),
            views: Mutex::new(HashMap::new()),
            lookups: Default::default(),
            statements: Default::default(),
            executor,
        });
        let state = user_state(&core, build_user_catalog(&core));
        Ok(Bound {
            core,
            state,
            role,
            user: user_name,
        })
    }

    /// The session's user.
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    /// The session's primary role.
    pub(crate) fn role(&self) -> &str {
        &self.role
    }

    /// The enforcement mode.
    pub(crate) fn mode(&self) -> EnforcementMode {
        self.core.mode
    }

    /// The compiled policies of `table`.
    pub(crate) fn compiled_table(&self, table: &TableName) -> Option<&CompiledTable> {
        self.core.compiled(table)
    }

    /// The session's entitlements.
    pub(crate) fn entitlements(&self) -> &Entitlements {
        &self.core.entitlements
    }

    /// The workspace of the version this statement is bound to.
    pub(crate) fn workspace(&self) -> &Workspace {
        &self.core.version.workspace
    }

    /// Parses and checks one statement, and checks every table it names is
    /// granted (SPEC rules 8, 10, 11).
    pub(crate) fn check(&self, sql: &str) -> Result<CheckedStatement> {
        Ok(self.check_naming(sql, &mut Vec::new())?.0)
    }

    /// [`Self::check`], reporting in `tables` every table the statement
    /// names, also when the access check refuses it (for the audit); with
    /// the Snowflake names of its result columns.
    pub(super) fn check_naming(&self, sql: &str, tables: &mut Vec<TableName>) -> Result<Checked> {
        // Deep statements recurse as deep as they nest: parse, shape and
        // check them (and drop what is refused) on the planning stack.
        crate::guard::on_planning_stack(|| self.check_here(sql, tables))
    }

    pub(super) fn check_here(&self, sql: &str, tables: &mut Vec<TableName>) -> Result<Checked> {
        let ws = &self.core.version.workspace;
        let (checked, names) = self
            .core
            .statements
            .checked(sql, |sql| self.parse_and_check(sql))?;
        tables.clone_from(&checked.tables);
        for t in &checked.tables {
            let exists = ws.table(t).is_some()
                || ws.snowflake.view(t).is_some()
                || *t == profile_table_name();
            let granted = self.core.granted.contains(t) || *t == profile_table_name();
            if !exists || !granted {
                return Err(VeilError::NotAuthorized(t.to_string()));
            }
        }
        Ok((checked, names))
    }

    /// Parses, shapes and checks one statement: what depends on its text
    /// alone (cached per identity by [`super::statements::Statements`]).
    fn parse_and_check(&self, sql: &str) -> Result<Checked> {
        let ws = &self.core.version.workspace;
        let mut statements = match parse_statements(sql) {
            Ok(s) => s,
            Err(e) => {
                let first = statement_kind_of_text(sql);
                let word = first.split(' ').next().unwrap_or_default();
                if !looks_like_read(sql) && crate::guard::is_statement_word(word) {
                    return Err(VeilError::StatementNotAllowed(first));
                }
                return Err(e);
            }
        };
        if statements.len() != 1 {
            return Err(VeilError::Refused(format!(
                "Veil runs one statement at a time; got {}.",
                statements.len()
            )));
        }
        let mut statement = statements.remove(0);
        // Named from the statement as written, before shaping.
        let names = Arc::new(SnowflakeNames::of(sql, &statement));
        crate::guard::shape_statement(&mut statement)?;
        let checked = check_statement(
            statement,
            &ws.settings.default_database,
            &ws.settings.default_schema,
        )?;
        Ok((checked, names))
    }

    /// Checks and plans one statement on a planning thread, reporting in
    /// `tables` every table it names (for the audit). With the plan comes
    /// its result schema under Snowflake's column names, when they differ
    /// (worked out there too: it re-parses the statement).
    pub(super) async fn plan_on_thread(
        self: &Arc<Self>,
        sql: &str,
        tables: &mut Vec<TableName>,
    ) -> Result<(Planned, Option<SchemaRef>)> {
        // Parsing and planning recurse as deep as the statement nests (and
        // DataFusion's planner is not stack-safe): they run on a planning
        // thread with a large stack; execution runs on the caller's task, so
        // dropping the future (or the stream) cancels it.
        let bound = Arc::clone(self);
        let text = sql.to_string();
        let phase = crate::trace::phase("statement: plan (thread)");
        let (planned, named) = crate::guard::on_planning_thread(move |handle| {
            let mut named = Vec::new();
            let phase = crate::trace::phase("statement: plan");
            let planned = handle.block_on(bound.plan(&text, &mut named));
            phase.end();
            let renamed = match &planned {
                Ok(Planned::Run { plan, names, .. }) => names.schema(&plan.schema()),
                _ => None,
            };
            (planned.map(|p| (p, renamed)), named)
        })
        .await?;
        phase.end();
        *tables = named;
        planned
    }

    /// Runs one statement and collects the result.
    pub(super) async fn sql(
        self: &Arc<Self>,
        sql: &str,
        tables: &mut Vec<TableName>,
    ) -> Result<Vec<RecordBatch>> {
        let (planned, renamed) = self.plan_on_thread(sql, tables).await?;
        let batches = match planned {
            Planned::Done(batches) => return Ok(batches),
            Planned::Run {
                state,
                plan,
                explain,
                ..
            } => {
                let schema = plan.schema();
                let phase = crate::trace::phase("statement: execute");
                // EXPLAIN's plan describes the statement; it is answered here.
                let executor = self.core.executor.as_ref().filter(|_| !explain);
                let batches =
                    super::remote::collect(executor, plan, Arc::new(TaskContext::from(&*state)))
                        .await
                        .map_err(|e| self.map_error(e))?;
                phase.end();
                let batches = if batches.is_empty() {
                    vec![RecordBatch::new_empty(schema)]
                } else {
                    batches
                };
                if explain {
                    hide_policy_internals(batches)?
                } else {
                    batches
                }
            }
        };
        match renamed {
            Some(schema) => batches
                .into_iter()
                .map(|b| crate::output::with_schema(b, &schema))
                .collect(),
            None => Ok(batches),
        }
    }

    /// Plans one statement and starts it: a stream of its result batches
    /// (EXPLAIN, SHOW TABLES and DESCRIBE are answered whole, then
    /// streamed), and the Snowflake names of its columns when they differ.
    pub(super) async fn start_stream(
        self: &Arc<Self>,
        sql: &str,
        tables: &mut Vec<TableName>,
    ) -> Result<(SendableRecordBatchStream, Option<SchemaRef>)> {
        let (planned, renamed) = self.plan_on_thread(sql, tables).await?;
        let batches = match planned {
            Planned::Done(batches) => batches,
            Planned::Run {
                state,
                plan,
                explain: false,
                ..
            } => {
                let stream = super::remote::start(
                    self.core.executor.as_ref(),
                    plan,
                    Arc::new(TaskContext::from(&*state)),
                )
                .map_err(|e| self.map_error(e))?;
                return Ok((stream, renamed));
            }
            Planned::Run {
                state,
                plan,
                explain: true,
                ..
            } => {
                let batches =
                    datafusion::physical_plan::collect(plan, Arc::new(TaskContext::from(&*state)))
                        .await
                        .map_err(|e| self.map_error(e))?;
                hide_policy_internals(batches)?
            }
        };
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => Arc::new(Schema::empty()),
        };
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ));
        Ok((stream, renamed))
    }

    /// Checks and plans one statement down to its physical plan.
    pub(super) async fn plan(&self, sql: &str, tables: &mut Vec<TableName>) -> Result<Planned> {
        let phase = crate::trace::phase("statement: parse + check");
        let (checked, names) = self.check_naming(sql, tables)?;
        phase.end();
        match &checked.kind {
            StatementKind::ShowTables => return Ok(Planned::Done(self.show_tables()?)),
            StatementKind::Describe(t) => return Ok(Planned::Done(self.describe(t).await?)),
            StatementKind::Query | StatementKind::Explain => {}
        }
        let phase = crate::trace::phase("statement: logical plan");
        let (state, plan) = self.plan_user_statement(checked.statement).await?;
        phase.end();
        // `SessionState::create_physical_plan`, in its two phases (the
        // second plans each policy relation's scan, then optimizes the
        // whole physical plan).
        let phase = crate::trace::phase("statement: optimize");
        let plan = state.optimize(&plan).map_err(|e| self.map_error(e))?;
        phase.end();
        let phase = crate::trace::phase("statement: physical plan");
        let physical = state
            .query_planner()
            .create_physical_plan(&plan, &state)
            .await
            .map_err(|e| self.map_error(e))?;
        phase.end();
        Ok(Planned::Run {
            state: Box::new(state),
            plan: physical,
            explain: matches!(checked.kind, StatementKind::Explain),
            names,
        })
    }

    /// Plans a checked statement in a fresh copy of the session state, with
    /// DDL, DML and statements refused by DataFusion too.
    pub(super) async fn plan_user_statement(
        &self,
        statement: Statement,
    ) -> Result<(SessionState, LogicalPlan)> {
        let state = fresh(&self.state);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(|e| self.map_error(e))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| self.map_error(e))?;
        Ok((state, plan))
    }

    pub(super) fn map_error(&self, e: DataFusionError) -> VeilError {
        let mapped = from_datafusion(e);
        if let VeilError::DataFusion(inner) = &mapped {
            let text = inner.to_string();
            // A name DataFusion cannot resolve: same text as SPEC rule 8.
            if let Some(rest) = text.split("table '").nth(1)
                && text.contains("not found")
            {
                let name = rest.split('\'').next().unwrap_or_default();
                return VeilError::NotAuthorized(name.to_string());
            }
        }
        mapped
    }

    /// Times the planning steps of a read statement (for `veil bench`).
    pub(crate) async fn plan_timings(&self, sql: &str) -> Result<PlanTimings> {
        let started = Instant::now();
        let checked = self.check(sql)?;
        let check = started.elapsed();
        let started = Instant::now();
        let rendered = std::hint::black_box(self.policy_queries(&checked.tables)?);
        let render = started.elapsed();
        let started = Instant::now();
        for t in rendered.keys() {
            std::hint::black_box(self.core.policy_table(t).await?);
        }
        let rewrite = started.elapsed();
        let started = Instant::now();
        let (state, plan) = self.plan_user_statement(checked.statement).await?;
        std::hint::black_box(
            state
                .create_physical_plan(&plan)
                .await
                .map_err(|e| self.map_error(e))?,
        );
        let planning = started.elapsed();
        Ok(PlanTimings {
            check,
            rewrite,
            render,
            planning,
        })
    }

    /// The analyzed and optimized logical plan of a read statement, as it
    /// would run (for tests and tooling).
    pub(crate) async fn logical_plan(&self, sql: &str) -> Result<LogicalPlan> {
        let (state, plan) = self.plan_user_statement(self.check(sql)?.statement).await?;
        Ok(state.optimize(&plan)?)
    }

    /// The policy SQL of each table the statement references, keyed by table.
    pub(crate) fn policy_queries(&self, tables: &[TableName]) -> Result<HashMap<TableName, Query>> {
        let snowflake = &self.core.version.workspace.snowflake;
        tables
            .iter()
            .filter(|t| snowflake.view(t).is_none())
            .map(|t| Ok((t.clone(), self.core.policy_query(t)?)))
            .collect()
    }

    /// The statement with every protected table replaced by its policy
    /// relation: what `explain` prints.
    pub(crate) fn rewritten_sql(&self, sql: &str) -> Result<String> {
        let checked = self.check(sql)?;
        let policies = self.policy_queries(&checked.tables)?;
        let ws = &self.core.version.workspace;
        let rewritten = rewrite_statement(
            &checked.statement,
            &policies,
            &ws.settings.default_database,
            &ws.settings.default_schema,
        );
        Ok(rewritten.to_string())
    }

    /// Runs the printed rewrite (what `explain` shows) directly on the raw
    /// relations. Used by tests to prove the printed SQL and the enforced
    /// path agree; it enforces the same policies, but without the barrier.
    #[cfg(feature = "testing")]
    pub(crate) async fn run_rewritten(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let rewritten = self.rewritten_sql(sql)?;
        let stmt = crate::sql::ident::generated_parser(&rewritten)
            .and_then(|mut p| p.parse_statement())
            .map_err(|e| VeilError::Parse(format!("the rewritten SQL does not re-parse: {e}")))?;
        let state = fresh(&self.core.internal);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
            .await?;
        Ok(execute_plan(&state, &plan).await?)
    }

    /// Names of the policies that shaped this session's view of `tables`:
    /// subscription, row rules that filter, masks that apply (for the audit).
    pub(super) fn policies_applied(&self, tables: &[TableName]) -> Vec<String> {
        let mut names = BTreeSet::new();
        for t in tables {
            let Some(compiled) = self.core.compiled(t) else {
                continue;
            };
            names.extend(
                crate::compile::policies_applied(compiled, &self.core.entitlements)
                    .map(str::to_string),
            );
        }
        names.into_iter().collect()
    }

    /// `table`'s policy relation without its masks, run on the raw relation:
    /// the raw rows the subscription and row rules let through.
    pub(super) async fn visible_raw_rows(&self, table: &TableName) -> Result<Vec<RecordBatch>> {
        let mut compiled = self
            .core
            .compiled(table)
            .cloned()
            .ok_or_else(|| VeilError::NotAuthorized(table.to_string()))?;
        for c in &mut compiled.columns {
            c.mask = None;
        }
        let query = policy_query(
            &compiled,
            &self.core.version.workspace.settings,
            self.core.render_mode(),
        )?;
        let state = fresh(&self.core.internal);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
                Box::new(query),
            ))))
            .await?;
        Ok(execute_plan(&state, &plan).await?)
    }

    pub(super) fn show_tables(&self) -> Result<Vec<RecordBatch>> {
        let tables: Vec<&TableName> = self.core.granted.iter().collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("database_name", DataType::Utf8, false),
            Field::new("schema_name", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.database.clone()),
                )),
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.schema.clone()),
                )),
                Arc::new(StringArray::from_iter_values(
                    tables.iter().map(|t| t.table.clone()),
                )),
            ],
        )?;
        Ok(vec![batch])
    }

    pub(super) async fn describe(&self, table: &TableName) -> Result<Vec<RecordBatch>> {
        let ws = &self.core.version.workspace;
        // (name, declared type, masking policy) per column.
        let rows: Vec<(String, String, Option<String>)> = if let Some(t) = ws.table(table) {
            let compiled = self.core.compiled(table);
            t.columns
                .iter()
                .map(|c| {
                    let policy = compiled
                        .and_then(|ct| ct.columns.iter().find(|col| col.name == c.name))
                        .and_then(|col| col.mask.as_ref().map(|m| m.policy.clone()));
                    (c.name.clone(), c.declared.to_string(), policy)
                })
                .collect()
        } else if let Some(view) = ws.snowflake.view(table) {
            let planned = SessionCore::view_table(&self.core, table).await?;
            planned
                .schema()
                .fields()
                .iter()
                .map(|f| {
                    let declared = declared_of(f.data_type())
                        .map_or_else(|| f.data_type().to_string(), |t| t.to_string());
                    let policy = view
                        .column_policies
                        .iter()
                        .find(|(c, _)| c == f.name())
                        .map(|(_, p)| short_object_name(&p.policy));
                    (f.name().clone(), declared, policy)
                })
                .collect()
        } else {
            return Err(VeilError::NotAuthorized(table.to_string()));
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("type", DataType::Utf8, false),
            Field::new("masking_policy", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.0.clone()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.1.clone()),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
                )),
            ],
        )?;
        Ok(vec![batch])
    }
}

/// A statement planned on the planning thread, ready to run.
pub(super) enum Planned {
    /// Answered without running a plan (SHOW TABLES, DESCRIBE).
    Done(Vec<RecordBatch>),
    /// A physical plan to run in `state`'s task context.
    Run {
        state: Box<SessionState>,
        plan: Arc<dyn ExecutionPlan>,
        explain: bool,
        /// The Snowflake names of the result columns.
        names: Arc<SnowflakeNames>,
    },
}

/// A user's `EXPLAIN` output with everything beneath each policy barrier
/// removed: the barrier's line stays, the policy relation's plan (policy
/// bodies, mapping-table lookups, a secure function's body) does not, as
/// Snowflake shows a policy's body to its owner only.
pub(super) fn hide_policy_internals(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
    fn filter(plan: &str) -> String {
        let mut out = Vec::new();
        let mut hidden_below: Option<usize> = None;
        for line in plan.lines() {
            let indent = line.len() - line.trim_start().len();
            if let Some(level) = hidden_below {
                if indent > level {
                    continue;
                }
                hidden_below = None;
            }
            if line.trim_start().starts_with("PolicyBarrierExec") {
                hidden_below = Some(indent);
                out.push(format!("{line} (policy internals hidden)"));
            } else {
                out.push(line.to_string());
            }
        }
        out.join("\n")
    }
    batches
        .into_iter()
        .map(|batch| {
            let columns: Vec<ArrayRef> = batch
                .columns()
                .iter()
                .map(|c| match c.as_string_opt::<i32>() {
                    Some(text) => {
                        Arc::new(text.iter().map(|v| v.map(filter)).collect::<StringArray>())
                            as ArrayRef
                    }
                    None => Arc::clone(c),
                })
                .collect();
            Ok(RecordBatch::try_new(batch.schema(), columns)?)
        })
        .collect()
}
