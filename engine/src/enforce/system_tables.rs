//! Veil's system tables in a version's internal catalog: the entitlement
//! table `VEIL.SYSTEM.USER_PROFILE` (a user reads their own row), the audit
//! log (`VEIL.SYSTEM.AUDIT`, `veil.audit`) and the policy catalog tables of
//! [`super::policy_catalog`].

use std::sync::Arc;

use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::Query;

use crate::audit::{AUDIT_TABLE, AuditHandle, AuditTable};
use crate::compile::CompiledWorkspace;
use crate::error::{Result, VeilError};
use crate::model::{TableName, User, Workspace};
use crate::profile::{profile_rows, profile_schema, user_values_rows, user_values_schema};
use crate::render::{PROFILE_TABLE, USER_VALUES_TABLE};

use super::profile_table::ProfileTable;

/// `VEIL.SYSTEM.USER_PROFILE`.
pub fn profile_table_name() -> TableName {
    TableName {
        database: PROFILE_TABLE[0].to_string(),
        schema: PROFILE_TABLE[1].to_string(),
        table: PROFILE_TABLE[2].to_string(),
    }
}

/// A user's view of the profile table: their own row only.
pub(super) fn profile_policy_query() -> Result<Query> {
    let sql = format!(
        "SELECT * FROM {} AS \"t\" WHERE \"USER_NAME\" = current_user()",
        PROFILE_TABLE.map(|p| format!("\"{p}\"")).join(".")
    );
    let q = crate::sql::ident::generated_parser(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| VeilError::PolicyFailure(format!("internal: {e}")))?;
    Ok(*q)
}

/// The users of `ws` called `name`, or all of them.
fn users_named<'a>(ws: &'a Workspace, name: Option<&str>) -> Vec<&'a User> {
    ws.users
        .iter()
        .filter(|u| name.is_none_or(|n| u.name == n))
        .collect()
}

fn external(e: VeilError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Finds or creates schema `(database, schema)` in a version's internal
/// catalog.
pub(super) type SchemaOf<'a> = dyn Fn(&str, &str) -> Result<Arc<dyn SchemaProvider>> + 'a;

/// Registers the system tables of `ws` in a version's internal catalog:
/// the profile table, the audit log and the policy catalog tables.
/// `schema_of` finds or creates a schema there.
pub(super) fn register_system_tables(
    schema_of: &SchemaOf<'_>,
    ws: &Arc<Workspace>,
    compiled: &Arc<CompiledWorkspace>,
    audit: &AuditHandle,
) -> Result<()> {
    let (w, c) = (Arc::clone(ws), Arc::clone(compiled));
    let profile = ProfileTable::new(
        profile_schema(),
        Box::new(move |name| profile_rows(&w, &c, &users_named(&w, name)).map_err(external)),
    );
    schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
        .register_table(PROFILE_TABLE[2].to_string(), Arc::new(profile))?;
    let w = Arc::clone(ws);
    let values = ProfileTable::new(
        user_values_schema(),
        Box::new(move |name| user_values_rows(&users_named(&w, name)).map_err(external)),
    );
    schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
        .register_table(USER_VALUES_TABLE.to_string(), Arc::new(values))?;
    // The audit log, for administrators: VEIL.SYSTEM.AUDIT, and `veil.audit`
    // in the default database unless the workspace has a table there.
    let audit_table: Arc<dyn TableProvider> = Arc::new(AuditTable::new(audit.clone()));
    schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
        .register_table(AUDIT_TABLE.to_string(), Arc::clone(&audit_table))?;
    for (name, batch) in super::policy_catalog::catalog_tables(ws, compiled)? {
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        schema_of(PROFILE_TABLE[0], PROFILE_TABLE[1])?
            .register_table(name.to_string(), Arc::new(table))?;
    }
    let short = schema_of(&ws.settings.default_database, PROFILE_TABLE[0])?;
    if !short.table_exist(AUDIT_TABLE) {
        short.register_table(AUDIT_TABLE.to_string(), audit_table)?;
    }
    Ok(())
}
