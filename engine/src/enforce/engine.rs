//! The [`Engine`]: policy versions ([`EngineVersion`], swapped atomically,
//! restorable by rollback), the decision cache (one compiled [`Bound`] per
//! session identity and version), sessions opened on it, and the
//! administrators' unenforced SQL.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider,
};
use datafusion::datasource::ViewTable;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::sql::parser::Statement as DfStatement;

use crate::audit::{AuditHandle, AuditLog, AuditRecord};
use crate::compile::{CompiledWorkspace, compile};
use crate::error::{Result, VeilError};
use crate::load::data::raw_relation;
use crate::load::data_check::DataFiles;
use crate::model::{EnforcementMode, SessionOptions, TableName, User, UserStatus, Workspace};
use crate::render::PROFILE_TABLE;
use crate::sql::ident::parse_statements;

use super::bound::*;
use super::session::*;
use super::state::*;
use super::system_tables::*;
use super::{lock, read, write};

/// One loaded, compiled workspace with its internal catalog: a policy
/// version. Immutable; the engine swaps whole versions atomically.
pub struct EngineVersion {
    pub(super) id: u64,
    pub(super) workspace: Arc<Workspace>,
    pub(super) compiled: Arc<CompiledWorkspace>,
    pub(super) internal: SessionState,
    pub(super) data_files: HashMap<TableName, Arc<DataFiles>>,
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
pub(super) const DECISION_CAPACITY: usize = 10_000;

/// The policy engine: `Clone + Send + Sync`, serving many concurrent
/// sessions. Policy and entitlement changes install a whole new
/// [`EngineVersion`], swapped atomically; a running query keeps the version
/// it started on, and earlier versions can be restored with
/// [`Engine::rollback`].
#[derive(Clone, Debug)]
pub struct Engine {
    pub(super) inner: Arc<EngineInner>,
}

pub(super) struct EngineInner {
    pub(super) current: RwLock<Arc<EngineVersion>>,
    pub(super) history: Mutex<Vec<Arc<EngineVersion>>>,
    /// Serializes changes (building a version awaits file metadata).
    pub(super) changes: tokio::sync::Mutex<()>,
    pub(super) decisions: Mutex<HashMap<DecisionKey, (Instant, Arc<Bound>)>>,
    pub(super) decision_ttl: RwLock<Duration>,
    pub(super) audit: AuditHandle,
    pub(super) runtime: Arc<RuntimeEnv>,
    /// Where sessions' statements run (`None`: in this process).
    pub(super) executor: RwLock<Option<Arc<dyn super::PlanExecutor>>>,
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
pub(super) struct DecisionKey {
    pub(super) version: u64,
    pub(super) user: String,
    pub(super) role: Option<String>,
    pub(super) purpose: Option<String>,
    pub(super) mode: Option<EnforcementMode>,
    pub(super) secondary_roles: Option<Vec<String>>,
}

impl DecisionKey {
    /// The decision of `options` on policy version `version`.
    pub(super) fn of(options: &SessionOptions, version: u64) -> Self {
        Self {
            version,
            user: crate::sql::ident::normalize_ident(&options.user),
            role: options
                .role
                .as_deref()
                .map(crate::sql::ident::normalize_ident),
            purpose: options.purpose.clone(),
            mode: options.mode,
            secondary_roles: options.secondary_roles.clone(),
        }
    }
}

/// Builds version `id` of a workspace: its raw relations in a fresh internal
/// catalog, the user profile table and the administrators' audit table.
pub(super) async fn build_version(
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
    let phase = crate::trace::phase("version: randomized-response domains");
    let domains = rr_domains(&internal, &compiled).await;
    datafusion::execution::FunctionRegistry::register_udf(
        &mut internal,
        veil_udfs::mask_rr::mask_rr(&ws.settings.secret, Arc::new(domains)),
    )?;
    phase.end();
    let phase = crate::trace::phase("version: system tables");
    let (ws, compiled) = (Arc::new(ws), Arc::new(compiled));
    register_system_tables(&schema_of, &ws, &compiled, audit)?;
    phase.end();
    Ok(EngineVersion {
        id,
        workspace: ws,
        compiled,
        internal,
        data_files,
    })
}

/// The domains of a version's randomized-response columns (SPEC rule 23):
/// each categorical column's distinct non-NULL values (sorted) and each
/// numeric column's range, over all of its rows, computed once per
/// version. Only tables with such a column are scanned. A table whose data
/// is broken or whose scan fails gets no domain, so its randomized-response
/// columns show NULL (fail closed).
async fn rr_domains(
    internal: &SessionState,
    compiled: &CompiledWorkspace,
) -> veil_udfs::mask_rr::RrDomains {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Float64Type};
    let mut domains = veil_udfs::mask_rr::RrDomains::default();
    for t in compiled.tables.values() {
        if t.data_error.is_some() {
            continue;
        }
        for (c, rr) in crate::compile::rr_columns(t) {
            let id = crate::compile::rr_column_id(&t.name, &c.name);
            let table = crate::render::object_name(&t.name);
            let col = crate::sql::ident::quoted(&c.name);
            match rr {
                crate::model::RandomizedResponse::Categorical { .. } => {
                    let sql = format!(
                        "SELECT DISTINCT CAST({col} AS VARCHAR) AS v FROM {table} WHERE {col} IS NOT NULL ORDER BY v"
                    );
                    let Ok(batches) = run_internal(internal, &sql).await else {
                        continue;
                    };
                    let mut values = Vec::new();
                    for b in &batches {
                        let Ok(text) =
                            datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
                        else {
                            continue;
                        };
                        values.extend(text.as_string::<i32>().iter().flatten().map(str::to_string));
                    }
                    domains.categorical.insert(id, Arc::new(values));
                }
                crate::model::RandomizedResponse::Laplace { .. } => {
                    let sql = format!(
                        "SELECT CAST(min({col}) AS DOUBLE), CAST(max({col}) AS DOUBLE) FROM {table}"
                    );
                    let Ok(batches) = run_internal(internal, &sql).await else {
                        continue;
                    };
                    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
                        continue;
                    };
                    let (lo, hi) = (
                        b.column(0).as_primitive_opt::<Float64Type>(),
                        b.column(1).as_primitive_opt::<Float64Type>(),
                    );
                    if let (Some(lo), Some(hi)) = (lo, hi)
                        && !lo.is_null(0)
                        && !hi.is_null(0)
                    {
                        domains.numeric.insert(id, (lo.value(0), hi.value(0)));
                    }
                }
            }
        }
    }
    domains
}

async fn run_internal(state: &SessionState, sql: &str) -> Result<Vec<RecordBatch>> {
    let plan = state.create_logical_plan(sql).await?;
    Ok(execute_plan(state, &plan).await?)
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
        // DataFusion 55 caches directory listings for the runtime's whole
        // life by default; Veil lists a table's directory at each scan, so
        // a file added to it (an `INSERT INTO ... SELECT` through Veil, an
        // ELT job) is read by the next statement.
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()?;
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
                executor: RwLock::new(None),
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
        Workspace::clone(&self.current().workspace)
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
        user.name = crate::sql::ident::normalize_ident(&user.name);
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
        let name = crate::sql::ident::normalize_ident(name);
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

    pub(super) fn install(&self, version: Arc<EngineVersion>) {
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

    /// Runs sessions' statements on `executor` (a cluster) instead of in
    /// this process, or here again with `None`. Statements are still parsed,
    /// checked and planned here, with the session's policies; the executor
    /// receives the physical plan. Applies to sessions opened after this
    /// call (the decision cache is cleared).
    pub fn set_plan_executor(&self, executor: Option<Arc<dyn super::PlanExecutor>>) {
        *write(&self.inner.executor) = executor;
        lock(&self.inner.decisions).clear();
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
    pub(super) fn bind(&self, options: &SessionOptions) -> Result<Arc<Bound>> {
        let version = self.current();
        let key = DecisionKey::of(options, version.id);
        let ttl = *read(&self.inner.decision_ttl);
        if let Some((at, bound)) = lock(&self.inner.decisions).get(&key)
            && at.elapsed() < ttl
        {
            return Ok(Arc::clone(bound));
        }
        let phase = crate::trace::phase("session: bind");
        let executor = read(&self.inner.executor).clone();
        let bound = Arc::new(Bound::new(&version, options, executor)?);
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
    /// `VEIL.SYSTEM.POLICY_REFERENCES` (see [`crate::sql::admin`]
    /// and the `policy_catalog` tables).
    /// `CREATE TABLE ... AS SELECT` and `INSERT INTO ... SELECT` write
    /// Parquet under the workspace and record their column lineage (see
    /// [`crate::enforce::capture`]; actor `ADMIN`, or
    /// [`Engine::admin_sql_by`]'s).
    /// Never expose this to users.
    pub async fn admin_sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.admin_sql_by("ADMIN", sql).await
    }

    /// [`Engine::admin_sql`] run by the administrator `actor` (named in
    /// the catalog journal for the writes it records).
    pub async fn admin_sql_by(&self, actor: &str, sql: &str) -> Result<Vec<RecordBatch>> {
        if let Some(write) = super::capture::parse_write(sql, self.current().workspace())? {
            return self.capture_write(write, actor).await;
        }
        let shown;
        let sql = match crate::sql::admin::parse_admin(sql)? {
            crate::sql::admin::AdminStatement::PolicyContext { options, query } => {
                let mut session = self.session_with(options)?;
                session.simulated_by = Some("ADMIN".to_string());
                return session.sql(&query).await;
            }
            crate::sql::admin::AdminStatement::Show(table) => {
                shown = format!(
                    "SELECT * FROM \"{}\".\"{}\".\"{table}\" ORDER BY 1",
                    PROFILE_TABLE[0], PROFILE_TABLE[1]
                );
                shown.as_str()
            }
            crate::sql::admin::AdminStatement::Sql => sql,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_and_sessions_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Engine>();
        send_sync::<Session>();
        send_sync::<EngineVersion>();
    }
}
