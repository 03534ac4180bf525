//! DataFusion glue: the [`Engine`] (raw relations in an internal catalog no
//! user can name) and per-user [`Session`]s whose catalog holds only the
//! policy relations of the tables the session is granted.
//!
//! Enforcement design (see README "Design"):
//! - every table a user can name is a [`PolicyTable`]: a `TableProvider` that
//!   plans the table's policy SQL (row rules on raw values, then masks) in the
//!   session's *internal* state and wraps the result in a
//!   [`PolicyBarrierExec`]. User predicates stay above the barrier — logical
//!   filter pushdown is refused except for predicates that cannot fail on
//!   unmasked columns, and the barrier stops physical filter, projection,
//!   limit and dynamic-filter pushdown — so no user expression ever runs on a
//!   hidden row or a raw masked value;
//! - a second line of defence, [`PolicyScanCheck`], is an analyzer rule that
//!   fails any user plan scanning something other than a policy relation;
//! - user SQL is planned with DDL, DML and statements disabled.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, Session as DfSession, TableProvider,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column as DfColumn, DataFusionError, plan_err};
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, TableType, col,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, Query, Statement};
use futures::StreamExt;

use crate::audit::{AUDIT_TABLE, AuditHandle, AuditLog, AuditRecord, AuditTable, QueryAudit};
use crate::compile::render::{Entitlements, PROFILE_TABLE, RenderMode, policy_query};
use crate::compile::{CompiledTable, CompiledWorkspace, compile};
pub use crate::enforce::{PolicyBarrierExec, PolicyScanCheck};
use crate::error::{Result, VeilError, from_datafusion};
use crate::ident::parse_statements;
use crate::load::data::raw_relation;
use crate::load::data_check::DataFiles;
use crate::model::{EnforcementMode, TableName, User, UserStatus, Workspace, short_object_name};
use crate::profile::profile_batch;
use crate::rewrite::{
    CheckedStatement, StatementKind, check_statement, looks_like_read, rewrite_statement,
    statement_kind_of_text,
};

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

/// One loaded, compiled workspace with its internal catalog: a policy
/// version. Immutable; the engine swaps whole versions atomically.
pub struct EngineVersion {
    id: u64,
    workspace: Workspace,
    compiled: CompiledWorkspace,
    internal: SessionState,
    data_files: HashMap<TableName, Arc<DataFiles>>,
}

impl fmt::Debug for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineVersion")
            .field("id", &self.id)
            .field("tables", &self.compiled.tables.len())
            .finish()
    }
}

impl EngineVersion {
    /// The version number (1 for the first load, then one more per change).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The workspace of this version.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The compiled policies of this version.
    pub fn compiled(&self) -> &CompiledWorkspace {
        &self.compiled
    }
}

/// The default time a compiled per-user decision stays cached (Immuta's
/// policy decision cache default).
pub const DEFAULT_DECISION_TTL: Duration = Duration::from_secs(600);

/// Most decisions kept before the cache drops expired and old entries.
const DECISION_CAPACITY: usize = 10_000;

/// The policy engine: `Clone + Send + Sync`, serving many concurrent
/// sessions. Policy and entitlement changes install a whole new
/// [`EngineVersion`], swapped atomically; a running query keeps the version
/// it started on, and earlier versions can be restored with
/// [`Engine::rollback`].
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    current: RwLock<Arc<EngineVersion>>,
    history: Mutex<Vec<Arc<EngineVersion>>>,
    /// Serializes changes (building a version awaits file metadata).
    changes: tokio::sync::Mutex<()>,
    decisions: Mutex<HashMap<DecisionKey, (Instant, Arc<Bound>)>>,
    decision_ttl: RwLock<Duration>,
    audit: AuditHandle,
    runtime: Arc<RuntimeEnv>,
}

impl fmt::Debug for EngineInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("version", &read(&self.current).id)
            .finish()
    }
}

/// What a compiled per-user decision is cached under: the policy version and
/// the whole session identity, so no user is ever served another's policies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    version: u64,
    user: String,
    role: Option<String>,
    purpose: Option<String>,
    mode: Option<EnforcementMode>,
    secondary_roles: Option<Vec<String>>,
}

/// Planning steps of one statement, timed by [`Session::plan_timings`].
#[derive(Debug, Clone, Copy)]
pub struct PlanTimings {
    /// Parse, statement check and access check.
    pub check: Duration,
    /// Policy resolution and rendering of the policy relations.
    pub rewrite: Duration,
    /// DataFusion: logical plan, optimization, physical plan.
    pub planning: Duration,
}

/// Options for opening a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionOptions {
    /// User name (Snowflake rules: unquoted is upper-cased).
    pub user: String,
    /// Primary role; the user's default role when `None`.
    pub role: Option<String>,
    /// Purpose to act under.
    pub purpose: Option<String>,
    /// Override the workspace's enforcement mode.
    pub mode: Option<EnforcementMode>,
    /// The secondary roles activated in the session (each must be granted
    /// to the user). `None`: the workspace's `secondary_roles` setting.
    pub secondary_roles: Option<Vec<String>>,
    /// How long one statement may run before it is cancelled (planning and
    /// execution; dropping the future cancels it too). `None`: 5 minutes.
    pub statement_timeout: Option<Duration>,
}

/// The statement timeout of sessions that set none.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);

impl SessionOptions {
    /// Options for `user` with defaults.
    pub fn user(user: &str) -> Self {
        Self {
            user: user.to_string(),
            ..Default::default()
        }
    }

    fn key(&self, version: u64) -> DecisionKey {
        DecisionKey {
            version,
            user: crate::ident::normalize_ident(&self.user),
            role: self.role.as_deref().map(crate::ident::normalize_ident),
            purpose: self.purpose.clone(),
            mode: self.mode,
            secondary_roles: self.secondary_roles.clone(),
        }
    }
}

fn base_config(default_db: &str, default_schema: &str) -> SessionConfig {
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

/// Builds version `id` of a workspace: its raw relations in a fresh internal
/// catalog, the user profile table and the administrators' audit table.
async fn build_version(
    ws: Workspace,
    id: u64,
    runtime: &Arc<RuntimeEnv>,
    audit: &AuditHandle,
) -> Result<EngineVersion> {
    let phase = crate::trace::phase("version: compile");
    let mut compiled = compile(&ws);
    phase.end();
    let phase = crate::trace::phase("version: internal state");
    let mut data_files = HashMap::new();
    let catalogs = Arc::new(MemoryCatalogProviderList::new());
    let mut internal = SessionStateBuilder::new()
        .with_config(base_config(
            &ws.settings.default_database,
            &ws.settings.default_schema,
        ))
        .with_runtime_env(Arc::clone(runtime))
        .with_default_features()
        .with_catalog_list(catalogs.clone() as Arc<dyn CatalogProviderList>)
        .with_type_planner(Arc::new(SnowflakeTypePlanner))
        .with_optimizer_rule(Arc::new(crate::guard::RebalanceBooleanChains))
        .with_physical_optimizer_rule(Arc::new(crate::guard::RebalanceFilterPredicates))
        .build();
    for f in veil_udfs::all_functions(&ws.settings.secret, ws.settings.memo_capacity) {
        datafusion::execution::FunctionRegistry::register_udf(&mut internal, f)?;
    }
    phase.end();
    let schema_of = |db: &str, schema: &str| -> Result<Arc<dyn SchemaProvider>> {
        let catalog = match catalogs.catalog(db) {
            Some(c) => c,
            None => {
                let c: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
                catalogs.register_catalog(db.to_string(), Arc::clone(&c));
                c
            }
        };
        Ok(match catalog.schema(schema) {
            Some(s) => s,
            None => {
                let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                catalog.register_schema(schema, Arc::clone(&s))?;
                s
            }
        })
    };
    for table in &ws.tables {
        let rel = table
            .location
            .strip_prefix(&ws.dir)
            .unwrap_or(&table.location)
            .display()
            .to_string();
        let phase = crate::trace::phase("version: raw relation");
        let plan = raw_relation(&internal, table, &rel).await?;
        phase.end();
        let phase = crate::trace::phase("version: data check");
        let data = Arc::new(DataFiles::new(table, &rel));
        let first_problem = data.first_problem_at_load();
        phase.end();
        if let Some(problem) = first_problem
            && let Some(t) = compiled.tables.get_mut(&table.name)
        {
            t.data_error = Some(problem.user_message());
        }
        data_files.insert(table.name.clone(), data);
        let view = ViewTable::new(plan, None);
        schema_of(&table.name.database, &table.name.schema)?
            .register_table(table.name.table.clone(), Arc::new(view))?;
    }
    let phase = crate::trace::phase("version: system tables");
    let profile = profile_batch(&ws, &compiled)?;
    let profile_table = MemTable::try_new(profile.schema(), vec![vec![profile]])?;
    schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
        .register_table(PROFILE_TABLE[2].to_string(), Arc::new(profile_table))?;
    // The audit log, for administrators: VEIL.SYSTEM.AUDIT, and `veil.audit`
    // in the default database unless the workspace has a table there.
    let audit_table: Arc<dyn TableProvider> = Arc::new(AuditTable::new(audit.clone()));
    schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
        .register_table(AUDIT_TABLE.to_string(), Arc::clone(&audit_table))?;
    for (name, batch) in crate::tools::admin::catalog_tables(&ws, &compiled)? {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
            .register_table(name.to_string(), Arc::new(table))?;
    }
    let short = schema_of(&ws.settings.default_database, PROFILE_TABLE[0])?;
    if !short.table_exist(AUDIT_TABLE) {
        short.register_table(AUDIT_TABLE.to_string(), audit_table)?;
    }
    phase.end();
    Ok(EngineVersion {
        id,
        workspace: ws,
        compiled,
        internal,
        data_files,
    })
}

impl Engine {
    /// Loads the workspace in `dir`, attaches its data files, compiles its
    /// policies.
    pub async fn load(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let phase = crate::trace::phase("engine: load workspace");
        let ws = crate::load::load_workspace(dir.as_ref())?;
        phase.end();
        let _phase = crate::trace::phase("engine: build version 1");
        Self::from_workspace(ws).await
    }

    /// Builds an engine from an already loaded workspace (version 1).
    pub async fn from_workspace(ws: Workspace) -> Result<Self> {
        let runtime = Arc::new(RuntimeEnv::default());
        let audit = AuditHandle::default();
        let version = Arc::new(build_version(ws, 1, &runtime, &audit).await?);
        Ok(Self {
            inner: Arc::new(EngineInner {
                current: RwLock::new(Arc::clone(&version)),
                history: Mutex::new(vec![version]),
                changes: tokio::sync::Mutex::new(()),
                decisions: Mutex::new(HashMap::new()),
                decision_ttl: RwLock::new(DEFAULT_DECISION_TTL),
                audit,
                runtime,
            }),
        })
    }

    /// Appends one JSON record per query, denial and policy change to the
    /// JSON Lines file at `path` (created if missing; see [`crate::audit`]).
    pub fn set_audit_log(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.inner.audit.set(AuditLog::open(path.as_ref())?);
        Ok(())
    }

    /// The audit log, if one is set.
    pub fn audit_log(&self) -> Option<Arc<AuditLog>> {
        self.inner.audit.get()
    }

    /// How long a compiled per-user decision stays cached (default 600 s).
    /// Any policy or entitlement change invalidates every decision at once.
    pub fn set_decision_ttl(&self, ttl: Duration) {
        *write(&self.inner.decision_ttl) = ttl;
        lock(&self.inner.decisions).clear();
    }

    /// Number of compiled decisions currently cached.
    pub fn cached_decisions(&self) -> usize {
        lock(&self.inner.decisions).len()
    }

    /// The current version.
    pub fn current(&self) -> Arc<EngineVersion> {
        Arc::clone(&read(&self.inner.current))
    }

    /// The current version number.
    pub fn version(&self) -> u64 {
        read(&self.inner.current).id
    }

    /// Every version this engine has installed, oldest first.
    pub fn versions(&self) -> Vec<Arc<EngineVersion>> {
        lock(&self.inner.history).clone()
    }

    /// The current workspace (a snapshot: later changes do not alter it).
    pub fn workspace(&self) -> Workspace {
        self.current().workspace.clone()
    }

    /// Installs `ws` as a new version and makes it current, atomically:
    /// queries already running finish on the version they started on, the
    /// next ones see the new one, and every cached decision is dropped.
    /// Returns the new version number. Nothing changes if `ws` is invalid.
    pub async fn apply(&self, ws: Workspace) -> Result<u64> {
        self.apply_as(ws, "ADMIN").await
    }

    /// [`Engine::apply`], recording `actor` in the audit log.
    pub async fn apply_as(&self, ws: Workspace, actor: &str) -> Result<u64> {
        let _guard = self.inner.changes.lock().await;
        self.install_new(ws, actor).await
    }

    /// Validates, builds and installs `ws` as the next version. The caller
    /// holds the change lock.
    async fn install_new(&self, ws: Workspace, actor: &str) -> Result<u64> {
        crate::load::validate(&ws)?;
        let id = lock(&self.inner.history).len() as u64 + 1;
        let old = self.current();
        let version =
            Arc::new(build_version(ws, id, &self.inner.runtime, &self.inner.audit).await?);
        lock(&self.inner.history).push(Arc::clone(&version));
        self.install(Arc::clone(&version));
        let changes = crate::audit::describe_changes(&old.workspace, &version.workspace);
        self.audit(AuditRecord::policy_change(
            actor,
            "POLICY_CHANGE",
            old.id,
            id,
            changes,
        ));
        Ok(id)
    }

    /// Loads the workspace in `dir` and applies it as a new version.
    pub async fn apply_dir(&self, dir: impl AsRef<std::path::Path>) -> Result<u64> {
        let ws = crate::load::load_workspace(dir.as_ref())?;
        self.apply(ws).await
    }

    /// Applies a change to a copy of the current workspace as a new version
    /// (e.g. an entitlement change). `change` may refuse with an error, and
    /// the result is validated; either way nothing is half-applied.
    pub async fn change<F>(&self, change: F) -> Result<u64>
    where
        F: FnOnce(&mut Workspace) -> Result<()>,
    {
        // The copy is taken under the change lock, so concurrent changes
        // apply one after the other and none is lost or undone.
        let _guard = self.inner.changes.lock().await;
        let mut ws = self.workspace();
        change(&mut ws)?;
        self.install_new(ws, "ADMIN").await
    }

    /// Provisions `user` as staged: known to the workspace (policies and
    /// `diff` can be tried on it) but unable to query until activated.
    pub async fn stage_user(&self, mut user: User) -> Result<u64> {
        user.name = crate::ident::normalize_ident(&user.name);
        user.status = UserStatus::Staged;
        self.change(|ws| {
            if ws.user(&user.name).is_some() {
                return Err(VeilError::workspace(
                    "engine",
                    format!("user {} already exists", user.name),
                ));
            }
            ws.users.push(user);
            Ok(())
        })
        .await
    }

    /// Activates a staged (or disabled) user.
    pub async fn activate_user(&self, name: &str) -> Result<u64> {
        let name = crate::ident::normalize_ident(name);
        self.change(|ws| match ws.users.iter_mut().find(|u| u.name == name) {
            Some(u) => {
                u.status = UserStatus::Active;
                Ok(())
            }
            None => Err(VeilError::workspace(
                "engine",
                format!("user {name} does not exist"),
            )),
        })
        .await
    }

    /// Makes an earlier version current again (atomically, like
    /// [`Engine::apply`]). The version keeps its number; later versions stay
    /// in the history and can be restored in turn.
    pub async fn rollback(&self, version: u64) -> Result<()> {
        let _guard = self.inner.changes.lock().await;
        let target = lock(&self.inner.history)
            .iter()
            .find(|v| v.id == version)
            .cloned()
            .ok_or_else(|| {
                VeilError::workspace("engine", format!("there is no policy version {version}"))
            })?;
        let old = self.current();
        self.install(Arc::clone(&target));
        let changes = crate::audit::describe_changes(&old.workspace, &target.workspace);
        self.audit(AuditRecord::policy_change(
            "ADMIN",
            "POLICY_ROLLBACK",
            old.id,
            version,
            changes,
        ));
        Ok(())
    }

    fn install(&self, version: Arc<EngineVersion>) {
        *write(&self.inner.current) = version;
        lock(&self.inner.decisions).clear();
    }

    pub(crate) fn audit(&self, record: AuditRecord) {
        if let Some(log) = self.inner.audit.get()
            && let Err(e) = log.append(&record)
        {
            // An audit failure must not be silent; the query result stands.
            eprintln!("warning: {e}");
        }
    }

    /// Opens a session as `user` with the default role.
    pub fn session(&self, user: &str) -> Result<Session> {
        self.session_with(SessionOptions::user(user))
    }

    /// Opens a session. Unknown, staged or disabled users, roles not granted
    /// and purposes not acknowledged are refused (SPEC rule 9). Each query
    /// of the session runs on the version current when it starts.
    pub fn session_with(&self, options: SessionOptions) -> Result<Session> {
        let bound = self.bind(&options)?;
        Ok(Session {
            engine: self.clone(),
            user: bound.user.clone(),
            role: bound.role.clone(),
            options,
            bound: Mutex::new((Instant::now(), bound)),
            simulated_by: None,
        })
    }

    /// The compiled decision for `options` on the current version, from the
    /// decision cache when fresh.
    fn bind(&self, options: &SessionOptions) -> Result<Arc<Bound>> {
        let version = self.current();
        let key = options.key(version.id);
        let ttl = *read(&self.inner.decision_ttl);
        if let Some((at, bound)) = lock(&self.inner.decisions).get(&key)
            && at.elapsed() < ttl
        {
            return Ok(Arc::clone(bound));
        }
        let phase = crate::trace::phase("session: bind");
        let bound = Arc::new(Bound::new(&version, options)?);
        phase.end();
        let mut cache = lock(&self.inner.decisions);
        if cache.len() >= DECISION_CAPACITY {
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= DECISION_CAPACITY {
                cache.clear();
            }
        }
        // A swap may have happened meanwhile: only the current version's
        // decisions go in.
        if read(&self.inner.current).id == version.id {
            cache.insert(key, (Instant::now(), Arc::clone(&bound)));
        }
        Ok(bound)
    }

    /// Runs SQL with no policies at all, over the raw relations of the
    /// current version (for workspace administrators, `lint`, `diff` and
    /// tests). Administrators also read the audit log as `veil.audit`, run
    /// `EXECUTE USING POLICY_CONTEXT(...) AS <query>`, `SHOW MASKING
    /// POLICIES`, `SHOW ROW ACCESS POLICIES`, and read
    /// `VEIL.SYSTEM.POLICY_REFERENCES` (see [`crate::tools::admin`]).
    /// Never expose this to users.
    pub async fn admin_sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let shown;
        let sql = match crate::tools::admin::parse_admin(sql)? {
            crate::tools::admin::AdminStatement::PolicyContext { options, query } => {
                let mut session = self.session_with(options)?;
                session.simulated_by = Some("ADMIN".to_string());
                return session.sql(&query).await;
            }
            crate::tools::admin::AdminStatement::Show(table) => {
                shown = format!(
                    "SELECT * FROM \"{}\".\"{}\".\"{table}\" ORDER BY 1",
                    PROFILE_TABLE[0], PROFILE_TABLE[1]
                );
                shown.as_str()
            }
            crate::tools::admin::AdminStatement::Sql => sql,
        };
        let version = self.current();
        let state = fresh(&version.internal);
        // Parsed and planned on the planning thread, like users' statements.
        let text = sql.to_string();
        let planning_state = state.clone();
        let physical = crate::guard::on_planning_thread(move |handle| {
            let mut stmt = parse_statements(&text)?
                .into_iter()
                .next()
                .ok_or_else(|| VeilError::Parse("empty SQL".into()))?;
            crate::guard::shape_statement(&mut stmt)?;
            handle.block_on(async {
                let plan = planning_state
                    .statement_to_plan(DfStatement::Statement(Box::new(stmt)))
                    .await?;
                Ok::<_, VeilError>(planning_state.create_physical_plan(&plan).await?)
            })
        })
        .await??;
        crate::guard::catch_panics(async {
            let schema = physical.schema();
            let batches =
                datafusion::physical_plan::collect(physical, Arc::new(TaskContext::from(&state)))
                    .await?;
            let batches = if batches.is_empty() {
                vec![RecordBatch::new_empty(schema)]
            } else {
                batches
            };
            crate::output::with_snowflake_names(batches, sql)
        })
        .await
    }
}

/// What a session knows that its catalog needs.
pub(crate) struct SessionCore {
    version: Arc<EngineVersion>,
    internal: SessionState,
    mode: EnforcementMode,
    entitlements: Entitlements,
    granted: BTreeSet<TableName>,
    tables: Mutex<HashMap<TableName, Arc<PolicyTable>>>,
    /// The context functions user SQL may call (CURRENT_USER, ...).
    user_functions: Vec<Arc<datafusion::logical_expr::ScalarUDF>>,
    /// Views planned for this session.
    views: Mutex<HashMap<TableName, Arc<dyn TableProvider>>>,
}

impl fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCore")
            .field("user", &self.entitlements.user)
            .finish()
    }
}

impl SessionCore {
    fn render_mode(&self) -> RenderMode<'_> {
        match self.mode {
            EnforcementMode::ProfileJoin => RenderMode::ProfileJoin,
            EnforcementMode::Inlined => RenderMode::Inlined(&self.entitlements),
        }
    }

    fn compiled(&self, table: &TableName) -> Option<&CompiledTable> {
        self.version.compiled.tables.get(table)
    }

    /// The policy SQL of `table` for this session.
    fn policy_query(&self, table: &TableName) -> Result<Query> {
        if *table == profile_table_name() {
            return profile_policy_query();
        }
        let compiled = self
            .compiled(table)
            .ok_or_else(|| VeilError::NotAuthorized(table.to_string()))?;
        policy_query(
            compiled,
            &self.version.workspace.settings,
            self.render_mode(),
        )
    }

    /// The policy relation of `table`, planned once per session.
    async fn policy_table(&self, table: &TableName) -> Result<Arc<PolicyTable>> {
        if let Some(t) = lock(&self.tables).get(table) {
            return Ok(Arc::clone(t));
        }
        let query = self.policy_query(table)?;
        let plan = self
            .internal
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
                Box::new(query),
            ))))
            .await?;
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let pushdown_columns = match self.compiled(table) {
            Some(c) => c
                .columns
                .iter()
                .filter(|col| col.mask.is_none())
                .map(|col| col.name.clone())
                .collect(),
            None => HashSet::new(),
        };
        let policy = Arc::new(PolicyTable {
            name: table.clone(),
            schema,
            plan,
            internal: self.internal.clone(),
            pushdown_columns,
            data: self.version.data_files.get(table).cloned(),
        });
        lock(&self.tables).insert(table.clone(), Arc::clone(&policy));
        Ok(policy)
    }
}

impl SessionCore {
    /// A view as this session sees it, planned once per session.
    async fn view_table(core: &Arc<Self>, name: &TableName) -> Result<Arc<dyn TableProvider>> {
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
    async fn plan_view(core: &Arc<Self>, name: &TableName) -> Result<Arc<dyn TableProvider>> {
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
        crate::rewrite::snowflake::rewrite_snowflake(&mut query)?;
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
            query = crate::compile::render::masked_projection(query, columns)?;
        }
        let plan = plan_query(query).await?;
        // Behind the barrier like a table's policy relation: no user
        // predicate is evaluated on rows the view leaves out.
        Ok(Arc::new(PolicyTable {
            name: name.clone(),
            schema: Arc::new(plan.schema().as_arrow().clone()),
            plan,
            internal: state,
            pushdown_columns: HashSet::new(),
            data: None,
        }))
    }
}

/// Whether view `name` reads itself, directly or through other views.
fn view_reads_itself(ws: &Workspace, name: &TableName) -> bool {
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
fn view_column_mask(
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
    Ok(crate::compile::render::fit(bound, declared))
}

fn has_subquery(e: &ast::Expr) -> bool {
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
fn declared_of(t: &DataType) -> Option<veil_udfs::SnowflakeType> {
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

/// A copy of `state` with this query's start time, so `now()` folds once
/// per query (what `SessionContext::state()` does).
fn fresh(state: &SessionState) -> SessionState {
    let mut state = state.clone();
    state.mark_start_execution();
    state
}

/// Runs a planned statement; an empty result keeps its column names.
async fn execute_plan(
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match m.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match m.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `VEIL.SYSTEM.USER_PROFILE`.
pub fn profile_table_name() -> TableName {
    TableName {
        database: PROFILE_TABLE[0].to_string(),
        schema: PROFILE_TABLE[1].to_string(),
        table: PROFILE_TABLE[2].to_string(),
    }
}

/// A user's view of the profile table: their own row only.
fn profile_policy_query() -> Result<Query> {
    let sql = format!(
        "SELECT * FROM {} AS \"t\" WHERE \"USER_NAME\" = current_user()",
        PROFILE_TABLE.map(|p| format!("\"{p}\"")).join(".")
    );
    let dialect = datafusion::sql::sqlparser::dialect::SnowflakeDialect {};
    let q = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| VeilError::PolicyFailure(format!("internal: {e}")))?;
    Ok(*q)
}

// ---------------------------------------------------------------------------
// The user catalog: granted tables only, each a policy relation.

#[derive(Debug)]
struct UserCatalogList {
    catalogs: BTreeMap<String, Arc<UserCatalog>>,
}

#[derive(Debug)]
struct UserCatalog {
    schemas: BTreeMap<String, Arc<UserSchema>>,
}

#[derive(Debug)]
struct UserSchema {
    database: String,
    schema: String,
    tables: BTreeSet<String>,
    core: Arc<SessionCore>,
}

/// The DataFusion state user SQL is planned in: the session's catalog, the
/// policy scan check, user-callable functions only.
fn user_state(core: &Arc<SessionCore>, catalog: Arc<dyn CatalogProviderList>) -> SessionState {
    let ws = &core.version.workspace;
    SessionStateBuilder::new()
        .with_config(base_config(
            &ws.settings.default_database,
            &ws.settings.default_schema,
        ))
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

/// The session's catalog: the granted tables and views, and its own profile row.
fn build_user_catalog(core: &Arc<SessionCore>) -> Arc<dyn CatalogProviderList> {
    build_catalog(
        core,
        core.granted
            .iter()
            .cloned()
            .chain(std::iter::once(profile_table_name())),
    )
}

/// A catalog of `names`, each resolved as this session sees it.
fn build_catalog(
    core: &Arc<SessionCore>,
    names: impl Iterator<Item = TableName>,
) -> Arc<dyn CatalogProviderList> {
    let mut layout: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for t in names {
        layout
            .entry(t.database.clone())
            .or_default()
            .entry(t.schema.clone())
            .or_default()
            .insert(t.table.clone());
    }
    let catalogs = layout
        .into_iter()
        .map(|(db, schemas)| {
            let schemas = schemas
                .into_iter()
                .map(|(schema, tables)| {
                    (
                        schema.clone(),
                        Arc::new(UserSchema {
                            database: db.clone(),
                            schema,
                            tables,
                            core: Arc::clone(core),
                        }),
                    )
                })
                .collect();
            (db, Arc::new(UserCatalog { schemas }))
        })
        .collect();
    Arc::new(UserCatalogList { catalogs })
}

impl CatalogProviderList for UserCatalogList {
    fn register_catalog(
        &self,
        _name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        None
    }

    fn catalog_names(&self) -> Vec<String> {
        self.catalogs.keys().cloned().collect()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        self.catalogs
            .get(name)
            .map(|c| Arc::clone(c) as Arc<dyn CatalogProvider>)
    }
}

impl CatalogProvider for UserCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.schemas.keys().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.schemas
            .get(name)
            .map(|s| Arc::clone(s) as Arc<dyn SchemaProvider>)
    }
}

#[async_trait]
impl SchemaProvider for UserSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.iter().cloned().collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        if !self.tables.contains(name) {
            return Ok(None);
        }
        let table = TableName {
            database: self.database.clone(),
            schema: self.schema.clone(),
            table: name.to_string(),
        };
        if self.core.version.workspace.snowflake.view(&table).is_some() {
            let view = SessionCore::view_table(&self.core, &table)
                .await
                .map_err(DataFusionError::from)?;
            return Ok(Some(view));
        }
        let policy = self
            .core
            .policy_table(&table)
            .await
            .map_err(DataFusionError::from)?;
        Ok(Some(policy as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains(name)
    }
}

// ---------------------------------------------------------------------------
// The policy relation.

/// A table as one session may see it: its policy SQL planned over the raw
/// relation, executed behind a [`PolicyBarrierExec`].
#[derive(Debug)]
pub struct PolicyTable {
    name: TableName,
    schema: SchemaRef,
    plan: LogicalPlan,
    internal: SessionState,
    pushdown_columns: HashSet<String>,
    data: Option<Arc<DataFiles>>,
}

/// Whether a filter can be evaluated below the policy without ever failing
/// or reading a masked column: comparisons, `IN`, `IS NULL`, `LIKE`, `AND`,
/// `OR`, `NOT` over unmasked columns and literals. Anything else (casts,
/// arithmetic, functions) stays above the barrier.
fn safe_to_push(expr: &Expr, unmasked: &HashSet<String>) -> bool {
    use datafusion::logical_expr::Operator::*;
    match expr {
        Expr::Column(c) => unmasked.contains(&c.name),
        Expr::Literal(_, _) => true,
        Expr::BinaryExpr(b) => {
            matches!(
                b.op,
                Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or | IsDistinctFrom | IsNotDistinctFrom
            ) && safe_to_push(&b.left, unmasked)
                && safe_to_push(&b.right, unmasked)
        }
        Expr::Not(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e) => safe_to_push(e, unmasked),
        Expr::InList(l) => {
            safe_to_push(&l.expr, unmasked)
                && l.list.iter().all(|e| matches!(e, Expr::Literal(_, _)))
        }
        Expr::Between(b) => {
            safe_to_push(&b.expr, unmasked)
                && safe_to_push(&b.low, unmasked)
                && safe_to_push(&b.high, unmasked)
        }
        Expr::Like(l) => {
            safe_to_push(&l.expr, unmasked) && matches!(l.pattern.as_ref(), Expr::Literal(_, _))
        }
        _ => false,
    }
}

/// `a AND b AND ...` as a balanced tree (depth log2(n), not n).
fn balanced_conjunction(mut predicates: Vec<Expr>) -> Option<Expr> {
    match predicates.len() {
        0 => None,
        1 => predicates.pop(),
        n => {
            let right = predicates.split_off(n / 2);
            Some(balanced_conjunction(predicates)?.and(balanced_conjunction(right)?))
        }
    }
}

fn unqualify(expr: &Expr) -> datafusion::common::Result<Expr> {
    expr.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(DfColumn::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
}

impl PolicyTable {
    /// The table this relation protects.
    pub fn table_name(&self) -> &TableName {
        &self.name
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
        Ok(filters
            .iter()
            .map(|f| {
                if safe_to_push(f, &self.pushdown_columns) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let mut builder = LogicalPlanBuilder::from(self.plan.clone());
        // Only filters accepted by `supports_filters_pushdown` arrive here;
        // re-check so nothing unsafe is ever evaluated below the policy. They
        // go in as one balanced conjunction: a Filter node per predicate
        // made the optimizer recurse once per predicate (BI tools push
        // hundreds).
        let pushed = filters
            .iter()
            .filter(|f| safe_to_push(f, &self.pushdown_columns))
            .map(unqualify)
            .collect::<datafusion::common::Result<Vec<_>>>()?;
        if let Some(predicate) = balanced_conjunction(pushed) {
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
        let plan = builder.build()?;
        let physical = fresh(&self.internal).create_physical_plan(&plan).await?;
        Ok(Arc::new(PolicyBarrierExec::new(
            physical,
            self.name.to_string(),
            self.data.clone(),
        )))
    }
}

// ---------------------------------------------------------------------------
// Sessions.

/// One session identity compiled against one engine version: the user's
/// catalog of policy relations and the DataFusion state that plans on it.
/// This is what the decision cache holds; a query runs on one `Bound` from
/// start to end.
pub(crate) struct Bound {
    core: Arc<SessionCore>,
    state: SessionState,
    role: String,
    user: String,
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
    fn new(v: &Arc<EngineVersion>, options: &SessionOptions) -> Result<Self> {
        let ws = &v.workspace;
        let user_name = crate::ident::normalize_ident(&options.user);
        let Some(user) = ws.user(&user_name) else {
            return Err(VeilError::Session(format!(
                "User '{user_name}' does not exist in this workspace."
            )));
        };
        match user.status {
            UserStatus::Active => {}
            UserStatus::Staged => {
                return Err(VeilError::Session(format!(
                    "User '{user_name}' is staged and cannot query yet."
                )));
            }
            UserStatus::Disabled => {
                return Err(VeilError::Session(format!(
                    "User '{user_name}' is disabled."
                )));
            }
        }
        let granted_roles: BTreeSet<String> = ws.role_closure(&user.roles);
        let role = match &options.role {
            Some(r) => {
                let r = crate::ident::normalize_ident(r);
                if !granted_roles.contains(&r) {
                    return Err(VeilError::Session(format!(
                        "Role '{r}' is not granted to user '{user_name}'."
                    )));
                }
                r
            }
            None => user
                .roles
                .first()
                .cloned()
                .unwrap_or_else(|| "PUBLIC".to_string()),
        };
        if let Some(p) = &options.purpose
            && !user.purposes.contains(p)
        {
            return Err(VeilError::Session(format!(
                "User '{user_name}' has not acknowledged purpose '{p}'."
            )));
        }
        let roles_in_session: BTreeSet<String> = match &options.secondary_roles {
            Some(secondary) => {
                let mut active = vec![role.clone()];
                for r in secondary {
                    let r = crate::ident::normalize_ident(r);
                    if !granted_roles.contains(&r) {
                        return Err(VeilError::Session(format!(
                            "Role '{r}' is not granted to user '{user_name}'."
                        )));
                    }
                    active.push(r);
                }
                ws.role_closure(&active)
            }
            None if ws.settings.secondary_roles_all => granted_roles.clone(),
            None => ws.role_closure(std::slice::from_ref(&role)),
        };
        let granted_tables: BTreeSet<TableName> = roles_in_session
            .iter()
            .filter_map(|r| ws.role(r))
            .flat_map(|r| r.grants.iter().cloned())
            .collect();
        let entitlements = Entitlements {
            user: user_name.clone(),
            groups: user.groups.clone(),
            attributes: user.attributes.clone(),
            purposes: user.purposes.clone(),
            current_purpose: options.purpose.clone(),
            roles_in_session: roles_in_session.clone(),
        };
        let identity = veil_udfs::SessionIdentity {
            user: user_name.clone(),
            role: role.clone(),
            roles_in_session: roles_in_session.iter().cloned().collect(),
            available_roles: granted_roles.iter().cloned().collect(),
            purpose: options.purpose.clone(),
        };
        let mut internal = v.internal.clone();
        let context = veil_udfs::context_functions(identity);
        for f in &context {
            datafusion::execution::FunctionRegistry::register_udf(&mut internal, Arc::clone(f))?;
        }
        let mode = options.mode.unwrap_or(ws.settings.mode);
        let core = Arc::new(SessionCore {
            version: Arc::clone(v),
            internal,
            mode,
            entitlements,
            granted: granted_tables.clone(),
            tables: Mutex::new(HashMap::new()),
            user_functions: context
                .into_iter()
                .filter(|f| !f.name().starts_with("veil_"))
                .collect(),
            views: Mutex::new(HashMap::new()),
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
        self.check_naming(sql, &mut Vec::new())
    }

    /// [`Self::check`], reporting in `tables` every table the statement
    /// names, also when the access check refuses it (for the audit).
    fn check_naming(&self, sql: &str, tables: &mut Vec<TableName>) -> Result<CheckedStatement> {
        // Deep statements recurse as deep as they nest: parse, shape and
        // check them (and drop what is refused) on the planning stack.
        crate::guard::on_planning_stack(|| self.check_here(sql, tables))
    }

    fn check_here(&self, sql: &str, tables: &mut Vec<TableName>) -> Result<CheckedStatement> {
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
        crate::guard::shape_statement(&mut statement)?;
        let checked = check_statement(
            statement,
            &ws.settings.default_database,
            &ws.settings.default_schema,
        )?;
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
        Ok(checked)
    }

    /// Checks and plans one statement on a planning thread, reporting in
    /// `tables` every table it names (for the audit). With the plan comes
    /// its result schema under Snowflake's column names, when they differ
    /// (worked out there too: it re-parses the statement).
    async fn plan_on_thread(
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
                Ok(Planned::Run { plan, .. }) => {
                    crate::output::snowflake_schema(&plan.schema(), &text)
                }
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
    async fn sql(
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
            } => {
                let schema = plan.schema();
                let phase = crate::trace::phase("statement: execute");
                let batches =
                    datafusion::physical_plan::collect(plan, Arc::new(TaskContext::from(&*state)))
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
    async fn start_stream(
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
            } => {
                let stream = datafusion::physical_plan::execute_stream(
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
    async fn plan(&self, sql: &str, tables: &mut Vec<TableName>) -> Result<Planned> {
        let phase = crate::trace::phase("statement: parse + check");
        let checked = self.check_naming(sql, tables)?;
        phase.end();
        match &checked.kind {
            StatementKind::ShowTables => return Ok(Planned::Done(self.show_tables()?)),
            StatementKind::Describe(t) => return Ok(Planned::Done(self.describe(t).await?)),
            StatementKind::Query | StatementKind::Explain => {}
        }
        let phase = crate::trace::phase("statement: logical plan");
        let (state, plan) = self.plan_user_statement(checked.statement).await?;
        phase.end();
        let phase = crate::trace::phase("statement: physical plan");
        let physical = state
            .create_physical_plan(&plan)
            .await
            .map_err(|e| self.map_error(e))?;
        phase.end();
        Ok(Planned::Run {
            state: Box::new(state),
            plan: physical,
            explain: matches!(checked.kind, StatementKind::Explain),
        })
    }

    /// Plans a checked statement in a fresh copy of the session state, with
    /// DDL, DML and statements refused by DataFusion too.
    async fn plan_user_statement(
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

    fn map_error(&self, e: DataFusionError) -> VeilError {
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
        std::hint::black_box(self.policy_queries(&checked.tables)?);
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
        let stmt = datafusion::sql::sqlparser::parser::Parser::new(
            &datafusion::sql::sqlparser::dialect::SnowflakeDialect {},
        )
        .try_with_sql(&rewritten)
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
    fn policies_applied(&self, tables: &[TableName]) -> Vec<String> {
        let mut names = BTreeSet::new();
        for t in tables {
            let Some(compiled) = self.core.compiled(t) else {
                continue;
            };
            let ex = crate::tools::explain::explain_table(compiled, &self.core.entitlements);
            names.extend(
                ex.rows
                    .iter()
                    .filter(|r| r.applies)
                    .map(|r| r.policy.clone()),
            );
            names.extend(
                ex.columns
                    .iter()
                    .filter(|c| c.mask.is_some())
                    .filter_map(|c| c.policy.clone()),
            );
        }
        names.into_iter().collect()
    }

    /// `table`'s policy relation without its masks, run on the raw relation:
    /// the raw rows the subscription and row rules let through.
    async fn visible_raw_rows(&self, table: &TableName) -> Result<Vec<RecordBatch>> {
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

    fn show_tables(&self) -> Result<Vec<RecordBatch>> {
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

    async fn describe(&self, table: &TableName) -> Result<Vec<RecordBatch>> {
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
enum Planned {
    /// Answered without running a plan (SHOW TABLES, DESCRIBE).
    Done(Vec<RecordBatch>),
    /// A physical plan to run in `state`'s task context.
    Run {
        state: Box<SessionState>,
        plan: Arc<dyn ExecutionPlan>,
        explain: bool,
    },
}

/// A user's session: runs Snowflake SQL with that user's policies. Each
/// statement runs on the engine version current when it starts, from start
/// to end; the session's compiled policies come from the engine's decision
/// cache, so a policy or entitlement change applies to the next statement.
pub struct Session {
    engine: Engine,
    options: SessionOptions,
    user: String,
    role: String,
    bound: Mutex<(Instant, Arc<Bound>)>,
    /// The administrator simulating this session (`POLICY_CONTEXT`).
    simulated_by: Option<String>,
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

    /// How long each planning step of a read statement takes: Veil's parse
    /// and access check, the rendering of every referenced table's policy
    /// relation (always re-rendered here, though queries reuse them within a
    /// session), and DataFusion's planning to a physical plan.
    pub async fn plan_timings(&self, sql: &str) -> Result<PlanTimings> {
        self.bound()?.plan_timings(sql).await
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

/// What the audit record of a streamed statement needs once it ends.
struct StreamAudit {
    engine: Engine,
    user: String,
    role: String,
    purpose: Option<String>,
    sql: String,
    tables: Vec<TableName>,
    policies: Vec<String>,
    version: u64,
    simulated_by: Option<String>,
    started: Instant,
}

impl StreamAudit {
    fn record(self, result: std::result::Result<usize, &VeilError>) {
        self.engine.audit(AuditRecord::query(QueryAudit {
            user: &self.user,
            role: &self.role,
            purpose: self.purpose.as_deref(),
            sql: &self.sql,
            tables: &self.tables,
            policies: self.policies,
            result,
            duration: self.started.elapsed(),
            version: self.version,
            simulated_by: self.simulated_by.as_deref(),
        }));
    }
}

/// The stream [`Session::sql_stream`] returns: Snowflake column names, the
/// statement deadline, panics caught, errors sanitized, one audit record
/// when it ends. After an error it ends.
struct GuardedStream {
    inner: Option<SendableRecordBatchStream>,
    schema: SchemaRef,
    renamed: bool,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    bound: Arc<Bound>,
    rows: usize,
    audit: Option<StreamAudit>,
}

impl GuardedStream {
    /// Ends the stream with `error` (full text to the audit, sanitized to
    /// the caller).
    fn fail(&mut self, error: VeilError) -> DataFusionError {
        self.inner = None;
        if let Some(audit) = self.audit.take() {
            audit.record(Err(&error));
        }
        DataFusionError::from(crate::guard::user_error(error))
    }
}

impl futures::Stream for GuardedStream {
    type Item = datafusion::common::Result<RecordBatch>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.deadline.as_mut().poll(cx).is_ready() {
            let e = VeilError::Timeout(this.timeout);
            return Poll::Ready(Some(Err(this.fail(e))));
        }
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll_next_unpin(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(batch)))) => {
                this.rows += batch.num_rows();
                if !this.renamed {
                    return Poll::Ready(Some(Ok(batch)));
                }
                match crate::output::with_schema(batch, &this.schema) {
                    Ok(b) => Poll::Ready(Some(Ok(b))),
                    Err(e) => Poll::Ready(Some(Err(this.fail(e)))),
                }
            }
            Ok(Poll::Ready(Some(Err(e)))) => {
                let e = this.bound.map_error(e);
                Poll::Ready(Some(Err(this.fail(e))))
            }
            Ok(Poll::Ready(None)) => {
                this.inner = None;
                if let Some(audit) = this.audit.take() {
                    audit.record(Ok(this.rows));
                }
                Poll::Ready(None)
            }
            Err(panic) => {
                let e = crate::guard::panicked(&panic);
                Poll::Ready(Some(Err(this.fail(e))))
            }
        }
    }
}

impl datafusion::physical_plan::RecordBatchStream for GuardedStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        // Dropped before its end: audited with the rows delivered.
        if let Some(audit) = self.audit.take() {
            audit.record(Ok(self.rows));
        }
    }
}

/// A user's `EXPLAIN` output with everything beneath each policy barrier
/// removed: the barrier's line stays, the policy relation's plan (policy
/// bodies, mapping-table lookups, a secure function's body) does not, as
/// Snowflake shows a policy's body to its owner only.
fn hide_policy_internals(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::common::config::ConfigOptions;
    use datafusion::datasource::provider_as_source;
    use datafusion::optimizer::AnalyzerRule;

    fn sample() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/sample")
    }

    #[test]
    fn engines_and_sessions_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Engine>();
        send_sync::<Session>();
        send_sync::<EngineVersion>();
    }

    #[tokio::test]
    async fn policy_scan_check_rejects_raw_scans() {
        let batch =
            RecordBatch::try_from_iter(vec![("A", Arc::new(Int64Array::from(vec![1])) as _)])
                .unwrap();
        let raw = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        let plan = LogicalPlanBuilder::scan("RAW", provider_as_source(Arc::new(raw)), None)
            .unwrap()
            .build()
            .unwrap();
        let err = PolicyScanCheck
            .analyze(plan, &ConfigOptions::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("is not read through its policy relation"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn policy_scan_check_passes_policy_relations_twice() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let plan = bob
            .logical_plan("SELECT c.ssn FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id IN (SELECT id FROM customers)")
            .await
            .unwrap();
        let once = PolicyScanCheck
            .analyze(plan.clone(), &ConfigOptions::default())
            .unwrap();
        let twice = PolicyScanCheck
            .analyze(once.clone(), &ConfigOptions::default())
            .unwrap();
        assert_eq!(plan, twice);
    }

    #[tokio::test]
    async fn unsafe_filters_stay_above_the_policy() {
        let engine = Engine::load(sample()).await.unwrap();
        let bob = engine.session("bob").unwrap();
        let plan = bob
            .logical_plan(
                "SELECT id FROM customers WHERE 1 / (id - 1) > 0 AND region = 'EU' AND ssn = 'x'",
            )
            .await
            .unwrap();
        let text = plan.display_indent().to_string();
        // The arithmetic and the masked-column predicates are not pushed into the scan.
        let scan = text
            .lines()
            .find(|l| l.contains("TableScan"))
            .unwrap_or_default();
        let pushed = scan.split("filters=").nth(1).unwrap_or_default();
        assert!(!pushed.contains(" / "), "{text}");
        assert!(!pushed.contains("SSN"), "{text}");
        assert!(
            pushed.contains("REGION"),
            "safe predicate on an unmasked column is pushed: {text}"
        );
    }
}
