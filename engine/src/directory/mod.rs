//! Identity from the directory (SPEC §7.4): `veil users sync` reads a SCIM
//! 2.0 `ListResponse` export ([`scim`]), compares it with the users the
//! last sync wrote, refuses a change of more than 5 % in the user or group
//! count unless forced, and writes `state/users.yaml` atomically
//! ([`sync`]); `veil users stage|activate` keep users from querying before
//! a risky change and let them back ([`staging`]). Every sync (applied or
//! refused) and every staging change writes an audit record; a dry run
//! writes nothing.
//!
//! Loading the synced users with the workspace is in
//! [`crate::load::synced_users`].

pub mod scim;
pub mod staging;
pub mod sync;

use crate::audit::{AuditLog, AuditRecord, prepare_log_dir};
use crate::error::Result;
use crate::model::Workspace;

/// The actor of directory changes in the audit log.
pub const DIRECTORY_ACTOR: &str = "VEIL_DIRECTORY";

/// Appends an audit record of a user change (`action`, e.g. `USER_SYNC`)
/// to the workspace's audit log (unless `settings.audit: off`).
pub(crate) fn audit(
    ws: &Workspace,
    action: &str,
    failure: Option<String>,
    targets: Vec<String>,
) -> Result<()> {
    let Some(path) = &ws.settings.audit else {
        return Ok(());
    };
    let mut record = AuditRecord::policy_change(DIRECTORY_ACTOR, action, 0, 0, targets);
    record.target_type = "USER".into();
    record.previous_version = None;
    if let Some(reason) = failure {
        record.action_status = "FAILURE".into();
        record.action_status_reason = Some(reason);
    }
    prepare_log_dir(path)?;
    AuditLog::open(path)?.append(&record)
}
