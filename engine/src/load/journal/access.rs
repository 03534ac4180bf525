//! Access requests on disk: `veil access request|approve|deny` (and
//! [`crate::Engine::request_access`] and friends) as changes appended to the
//! catalog journal through [`super::record`], with names normalized by
//! Snowflake identifier rules. The checks themselves are the
//! [`crate::model::Recorder`]'s (`model/journal/access.rs`): an unknown
//! user, table or request, a table no `allow: approval` policy covers, a
//! decision by someone who is not a data owner of the table, or a request
//! decided twice is an error and nothing is written.

use super::{Recorded, record};
use crate::error::{Result, VeilError};
use crate::model::{AccessRequest, Workspace};
use crate::sql::ident::{normalize_ident, parse_table_name};

/// Records `user`'s request for `table` (`DB.SCHEMA.TABLE`, or a partial
/// name resolved against the workspace defaults) with `reason`, filed by
/// the user. Returns what was appended and the new request's id.
pub fn request_access(
    ws: &Workspace,
    user: &str,
    table: &str,
    reason: &str,
) -> Result<(Recorded, String)> {
    let user = normalize_ident(user);
    let table = parse_table_name(
        table,
        &ws.settings.default_database,
        &ws.settings.default_schema,
    )
    .map_err(|e| VeilError::workspace("access request", e))?;
    let mut id = String::new();
    let recorded = record(ws, &user, |r| {
        id = r.request_access(&user, &table, reason)?;
        Ok(())
    })?;
    Ok((recorded, id))
}

/// Approves (`approved`) or denies request `id` as `by`, a data owner of
/// the requested table. Returns what was appended and the decided request.
pub fn decide_access(
    ws: &Workspace,
    id: &str,
    by: &str,
    approved: bool,
) -> Result<(Recorded, AccessRequest)> {
    let by = normalize_ident(by);
    let id = id.trim().to_ascii_uppercase();
    let mut decided = None;
    let recorded = record(ws, &by, |r| {
        decided = Some(r.decide_access(&id, approved)?);
        Ok(())
    })?;
    let decided = decided
        .ok_or_else(|| VeilError::Internal(format!("request {id} was decided without a result")))?;
    Ok((recorded, decided))
}
