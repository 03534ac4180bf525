//! The per-user catalog: a [`SessionCore`] (what one session identity is
//! granted, on one version) and the DataFusion catalog, schema and table
//! providers built from it, which hold the granted tables and views only,
//! each resolved to its policy relation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Query, Statement};

use crate::compile::CompiledTable;
use crate::error::{Result, VeilError};
use crate::model::{EnforcementMode, TableName};
use crate::render::{Entitlements, RenderMode, policy_query};

use super::engine::*;
use super::lock;
use super::policy_table::*;
use super::profile_lookups::{Lookups, fold_profile_lookups};
use super::pushdown::Pushdown;
use super::system_tables::*;

/// What a session knows that its catalog needs.
pub(crate) struct SessionCore {
    pub(super) version: Arc<EngineVersion>,
    pub(super) internal: SessionState,
    /// `internal` as policy relations are planned in (`relation_state`).
    pub(super) relations: SessionState,
    pub(super) mode: EnforcementMode,
    pub(super) entitlements: Entitlements,
    pub(super) granted: BTreeSet<TableName>,
    pub(super) tables: Mutex<HashMap<TableName, Arc<PolicyTable>>>,
    /// The context functions user SQL may call (CURRENT_USER, ...).
    pub(super) user_functions: Vec<Arc<datafusion::logical_expr::ScalarUDF>>,
    /// Profile-join mode: the session's profile lookups, evaluated once.
    pub(super) lookups: Lookups,
    /// Statements this identity checked, by SQL text.
    pub(super) statements: super::statements::Statements,
    /// Views planned for this session.
    pub(super) views: Mutex<HashMap<TableName, Arc<dyn TableProvider>>>,
    /// Where this session's statements run (`None`: in this process).
    pub(super) executor: Option<Arc<dyn super::PlanExecutor>>,
}

impl fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCore")
            .field("user", &self.entitlements.user)
            .finish()
    }
}

impl SessionCore {
    pub(super) fn render_mode(&self) -> RenderMode<'_> {
        match self.mode {
            EnforcementMode::ProfileJoin => RenderMode::ProfileJoin,
            EnforcementMode::Inlined => RenderMode::Inlined(&self.entitlements),
        }
    }

    pub(super) fn compiled(&self, table: &TableName) -> Option<&CompiledTable> {
        self.version.compiled.tables.get(table)
    }

    /// The policy SQL of `table` for this session.
    pub(super) fn policy_query(&self, table: &TableName) -> Result<Query> {
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
    pub(super) async fn policy_table(&self, table: &TableName) -> Result<Arc<PolicyTable>> {
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
        let plan = match self.mode {
            EnforcementMode::ProfileJoin => {
                let phase = crate::trace::phase("relation: fold profile lookups");
                let folded = fold_profile_lookups(plan, &self.internal, &self.lookups).await?;
                phase.end();
                folded
            }
            EnforcementMode::Inlined => plan,
        };
        let policy = Arc::new(PolicyTable::analyzed(
            table.clone(),
            plan,
            self.relations.clone(),
            |plan| {
                Pushdown::of(
                    self.compiled(table)
                        .into_iter()
                        .flat_map(|c| c.columns.iter())
                        .filter(|col| col.mask.is_none())
                        .map(|col| col.name.as_str()),
                    plan,
                )
            },
            self.version.data_files.get(table).cloned(),
        )?);
        lock(&self.tables).insert(table.clone(), Arc::clone(&policy));
        Ok(policy)
    }
}

// ---------------------------------------------------------------------------
// The user catalog: granted tables only, each a policy relation.

#[derive(Debug)]
pub(super) struct UserCatalogList {
    pub(super) catalogs: BTreeMap<String, Arc<UserCatalog>>,
}

#[derive(Debug)]
pub(super) struct UserCatalog {
    pub(super) schemas: BTreeMap<String, Arc<UserSchema>>,
}

#[derive(Debug)]
pub(super) struct UserSchema {
    pub(super) database: String,
    pub(super) schema: String,
    pub(super) tables: BTreeSet<String>,
    pub(super) core: Arc<SessionCore>,
}

/// The session's catalog: the granted tables and views, and its own profile row.
pub(super) fn build_user_catalog(core: &Arc<SessionCore>) -> Arc<dyn CatalogProviderList> {
    build_catalog(
        core,
        core.granted
            .iter()
            .cloned()
            .chain(std::iter::once(profile_table_name())),
    )
}

/// A catalog of `names`, each resolved as this session sees it.
pub(super) fn build_catalog(
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
