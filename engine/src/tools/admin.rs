//! What workspace administrators can run beyond plain SQL on the raw tables
//! (`veil query --admin`, [`crate::Engine::admin_sql`]):
//!
//! - `EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'U', CURRENT_ROLE => 'R',
//!   SNOWFLAKE$SESSION_ACTIVATED_ROLES => 'R1,R2') AS <query>`: the query as
//!   that principal would see it, policies applied (Snowflake's policy
//!   simulator). Unknown users and roles are errors.
//! - `SHOW MASKING POLICIES`, `SHOW ROW ACCESS POLICIES`: the Snowflake
//!   policies of the workspace, from `VEIL.SYSTEM.MASKING_POLICIES` and
//!   `VEIL.SYSTEM.ROW_ACCESS_POLICIES`.
//! - `VEIL.SYSTEM.POLICY_REFERENCES` (like Snowflake's `POLICY_REFERENCES`
//!   table function): every column and table a policy of either layer
//!   protects, why, and whether it is in force.

use std::time::Instant;

use datafusion::arrow::array::RecordBatch;

use crate::audit::{AuditRecord, QueryAudit};
use crate::enforce::Engine;
use crate::error::{Result, VeilError};
use crate::model::Workspace;
use crate::sql::ident::normalize_ident;

pub use crate::sql::admin::{MASKING_POLICIES, POLICY_REFERENCES, ROW_ACCESS_POLICIES};

/// The workspace administrator `user` names (normalized), or an error when
/// `settings.administrators` does not list them.
pub fn administrator(ws: &Workspace, user: &str) -> Result<String> {
    let name = normalize_ident(user);
    if ws.settings.administrators.contains(&name) {
        Ok(name)
    } else {
        Err(VeilError::Session(format!(
            "User '{name}' is not a workspace administrator: only the users listed in settings.administrators of veil.yaml may act with --admin."
        )))
    }
}

/// Runs `sql` as the workspace administrator `user` ([`Engine::admin_sql`]:
/// no policies) once `user` is checked to be one, and appends an audit
/// record for it (role `ADMINISTRATOR`) when the engine has an audit log.
pub async fn run_as_administrator(
    engine: &Engine,
    user: &str,
    sql: &str,
) -> Result<Vec<RecordBatch>> {
    let name = administrator(engine.current().workspace(), user)?;
    let started = Instant::now();
    let result = engine.admin_sql_by(&name, sql).await;
    if let Some(log) = engine.audit_log() {
        let record = AuditRecord::query(QueryAudit {
            user: &name,
            role: "ADMINISTRATOR",
            purpose: None,
            sql,
            tables: &[],
            policies: Vec::new(),
            result: result.as_ref().map(|b| crate::output::row_count(b)),
            duration: started.elapsed(),
            version: engine.version(),
            simulated_by: None,
        });
        if let Err(e) = log.append(&record) {
            // As for users' queries: the failure is reported, the result stands.
            eprintln!("warning: {e}");
        }
    }
    result
}
