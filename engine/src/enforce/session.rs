//! A user's [`Session`]: runs Snowflake SQL with that user's policies, each
//! statement on the engine version current when it starts, with a timeout,
//! panics caught, errors sanitized and one audit record per statement.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Query;

use crate::audit::{AuditRecord, QueryAudit};
use crate::compile::CompiledTable;
use crate::error::{Result, VeilError};
use crate::model::Entitlements;
use crate::model::{DEFAULT_STATEMENT_TIMEOUT, EnforcementMode, SessionOptions, TableName};
use crate::sql::gate::CheckedStatement;

use super::bound::*;
use super::engine::*;
use super::stream::*;
use super::{lock, read};

/// Planning steps of one statement, timed by [`Session::plan_timings`].
#[derive(Debug, Clone, Copy)]
pub struct PlanTimings {
    /// Parse, statement check and access check (the parse and statement
    /// check come from the identity's statement cache when it checked the
    /// same text before).
    pub check: Duration,
    /// Resolving the policy relation of every table the statement names, as
    /// a statement does: the session's planned relations, rendered and
    /// planned by its first statement that names each table and reused
    /// after (per version and identity, across sessions, through the
    /// decision cache).
    pub rewrite: Duration,
    /// Rendering every named table's policy SQL from the compiled policies
    /// anew: what the first statement naming them pays on top of `rewrite`
    /// (not part of `check + rewrite + planning`).
    pub render: Duration,
    /// DataFusion: logical plan, optimization, physical plan.
    pub planning: Duration,
}

/// A user's session: runs Snowflake SQL with that user's policies. Each
/// statement runs on the engine version current when it starts, from start
/// to end; the session's compiled policies come from the engine's decision
/// cache, so a policy or entitlement change applies to the next statement.
pub struct Session {
    pub(super) engine: Engine,
    pub(super) options: SessionOptions,
    pub(super) user: String,
    pub(super) role: String,
    pub(super) bound: Mutex<(Instant, Arc<Bound>)>,
    /// The administrator simulating this session (`POLICY_CONTEXT`).
    pub(super) simulated_by: Option<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("role", &self.role)
            .finish()
    }
}

impl Session {
    /// The session's user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The session's primary role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The purpose the session acts under.
    pub fn purpose(&self) -> Option<&str> {
        self.options.purpose.as_deref()
    }

    /// The enforcement mode.
    pub fn mode(&self) -> EnforcementMode {
        self.last().core.mode
    }

    /// The policy version the session's last statement ran on.
    pub fn version(&self) -> u64 {
        self.last().core.version.id
    }

    /// Tables this session is granted.
    pub fn granted_tables(&self) -> BTreeSet<TableName> {
        self.last().core.granted.clone()
    }

    /// The compiled policies of `table`.
    pub fn compiled_table(&self, table: &TableName) -> Option<CompiledTable> {
        self.last().core.compiled(table).cloned()
    }

    /// The session's entitlements.
    pub fn entitlements(&self) -> Entitlements {
        self.last().core.entitlements.clone()
    }

    /// The binding of the last statement, without looking for a newer one.
    fn last(&self) -> Arc<Bound> {
        Arc::clone(&lock(&self.bound).1)
    }

    /// The binding for the next statement: the current version's, rebuilt
    /// (through the decision cache) when the version changed or the decision
    /// expired.
    pub(crate) fn bound(&self) -> Result<Arc<Bound>> {
        let current = self.engine.version();
        let ttl = *read(&self.engine.inner.decision_ttl);
        {
            let slot = lock(&self.bound);
            if slot.1.core.version.id == current && slot.0.elapsed() < ttl {
                return Ok(Arc::clone(&slot.1));
            }
        }
        let bound = self.engine.bind(&self.options)?;
        *lock(&self.bound) = (Instant::now(), Arc::clone(&bound));
        Ok(bound)
    }

    /// Parses and checks one statement, and checks every table it names is
    /// granted (SPEC rules 8, 10, 11).
    pub fn check(&self, sql: &str) -> Result<CheckedStatement> {
        self.bound()?.check(sql)
    }

    /// Runs one statement and collects the result. With an audit log set,
    /// writes one record for it, allowed or denied.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let started = Instant::now();
        let mut tables = Vec::new();
        let audit = self.engine.audit_log().is_some();
        let timeout = self
            .options
            .statement_timeout
            .unwrap_or(DEFAULT_STATEMENT_TIMEOUT);
        let (result, version, policies) = match self.bound() {
            Ok(b) => {
                let run = crate::guard::catch_panics(b.sql(sql, &mut tables));
                let result = match tokio::time::timeout(timeout, run).await {
                    Ok(r) => r,
                    Err(_) => Err(VeilError::Timeout(timeout)),
                };
                let policies = if audit {
                    b.policies_applied(&tables)
                } else {
                    Vec::new()
                };
                (result, b.core.version.id, policies)
            }
            Err(e) => (Err(e), self.engine.version(), Vec::new()),
        };
        if audit {
            let _phase = crate::trace::phase("statement: audit");
            self.engine.audit(AuditRecord::query(QueryAudit {
                user: &self.user,
                role: &self.role,
                purpose: self.purpose(),
                sql,
                tables: &tables,
                policies,
                result: result.as_ref().map(|b| crate::output::row_count(b)),
                duration: started.elapsed(),
                version,
                simulated_by: self.simulated_by.as_deref(),
            }));
        }
        result.map_err(crate::guard::user_error)
    }

    /// Runs one statement and streams its result: the same check, policies
    /// and planning as [`Session::sql`] (a refused or unplannable statement
    /// fails here, before any batch), then batches as execution produces
    /// them. Errors, in this call and in the stream, pass the same sanitizer
    /// as `sql`'s; a panic while polling becomes an error and ends the
    /// stream. The statement timeout covers the whole statement, planning
    /// and streaming: once it passes, the stream yields a timeout error and
    /// ends. Dropping the stream cancels execution.
    ///
    /// With an audit log set, a statement refused or failing to plan is
    /// audited when this call returns its error; a started one is audited
    /// once, when its stream ends, fails or is dropped, with the rows
    /// delivered until then.
    ///
    /// ```no_run
    /// # async fn demo(session: &veil_engine::Session) -> veil_engine::Result<()> {
    /// use futures::StreamExt;
    /// let mut stream = session.sql_stream("SELECT name, ssn FROM customers").await?;
    /// while let Some(batch) = stream.next().await {
    ///     let batch: veil_engine::RecordBatch = batch?;
    ///     println!("{} rows", batch.num_rows());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn sql_stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        let started = Instant::now();
        let timeout = self
            .options
            .statement_timeout
            .unwrap_or(DEFAULT_STATEMENT_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tables = Vec::new();
        let bound = match self.bound() {
            Ok(b) => b,
            Err(e) => {
                self.audit_statement(sql, &[], Vec::new(), Err(&e), started, None);
                return Err(crate::guard::user_error(e));
            }
        };
        let run = crate::guard::catch_panics(bound.start_stream(sql, &mut tables));
        let started_stream = match tokio::time::timeout_at(deadline, run).await {
            Ok(r) => r,
            Err(_) => Err(VeilError::Timeout(timeout)),
        };
        let (inner, schema) = match started_stream {
            Ok(s) => s,
            Err(e) => {
                let policies = self.policies_if_audited(&bound, &tables);
                let version = Some(bound.core.version.id);
                self.audit_statement(sql, &tables, policies, Err(&e), started, version);
                return Err(crate::guard::user_error(e));
            }
        };
        let audit = self.engine.audit_log().is_some().then(|| StreamAudit {
            engine: self.engine.clone(),
            user: self.user.clone(),
            role: self.role.clone(),
            purpose: self.options.purpose.clone(),
            sql: sql.to_string(),
            policies: bound.policies_applied(&tables),
            tables,
            version: bound.core.version.id,
            simulated_by: self.simulated_by.clone(),
            started,
        });
        Ok(Box::pin(GuardedStream {
            schema: schema.clone().unwrap_or_else(|| inner.schema()),
            renamed: schema.is_some(),
            inner: Some(inner),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
            bound,
            rows: 0,
            audit,
        }))
    }

    fn policies_if_audited(&self, bound: &Bound, tables: &[TableName]) -> Vec<String> {
        if self.engine.audit_log().is_some() {
            bound.policies_applied(tables)
        } else {
            Vec::new()
        }
    }

    /// One audit record for a statement of this session, if a log is set.
    fn audit_statement(
        &self,
        sql: &str,
        tables: &[TableName],
        policies: Vec<String>,
        result: std::result::Result<usize, &VeilError>,
        started: Instant,
        version: Option<u64>,
    ) {
        if self.engine.audit_log().is_none() {
            return;
        }
        self.engine.audit(AuditRecord::query(QueryAudit {
            user: &self.user,
            role: &self.role,
            purpose: self.purpose(),
            sql,
            tables,
            policies,
            result,
            duration: started.elapsed(),
            version: version.unwrap_or_else(|| self.engine.version()),
            simulated_by: self.simulated_by.as_deref(),
        }));
    }

    /// How long each planning step of a read statement takes, on a planning
    /// thread as a statement is planned: Veil's parse and access check, the
    /// session's policy relation of every referenced table (rendering them
    /// anew is timed apart), and DataFusion's planning to a physical plan.
    pub async fn plan_timings(&self, sql: &str) -> Result<PlanTimings> {
        // On a planning thread, as a statement is planned.
        let bound = self.bound()?;
        let sql = sql.to_string();
        crate::guard::on_planning_thread(move |handle| handle.block_on(bound.plan_timings(&sql)))
            .await?
    }

    /// The analyzed and optimized logical plan of a read statement, as it
    /// would run (for tests and tooling).
    pub async fn logical_plan(&self, sql: &str) -> Result<LogicalPlan> {
        self.bound()?.logical_plan(sql).await
    }

    /// The policy SQL of each table the statement references, keyed by table.
    pub fn policy_queries(&self, tables: &[TableName]) -> Result<HashMap<TableName, Query>> {
        self.bound()?.policy_queries(tables)
    }

    /// The statement with every protected table replaced by its policy
    /// relation: what `explain` prints.
    pub fn rewritten_sql(&self, sql: &str) -> Result<String> {
        self.bound()?.rewritten_sql(sql)
    }

    /// Runs the printed rewrite (what `explain` shows) directly on the raw
    /// relations. Used by tests to prove the printed SQL and the enforced
    /// path agree; it enforces the same policies, but without the barrier
    /// or the catalog, so it exists only with the `testing` feature (Veil's
    /// own test crate) and is never part of a service build.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub async fn run_rewritten(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.bound()?.run_rewritten(sql).await
    }

    /// The raw rows of `table` this session's row rules and subscription let
    /// through, with no masks (for `diff`: which rows a user gains or loses).
    /// Never expose this to users.
    pub(crate) async fn visible_raw_rows(&self, table: &TableName) -> Result<Vec<RecordBatch>> {
        self.bound()?.visible_raw_rows(table).await
    }
}
