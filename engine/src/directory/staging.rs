//! `veil users stage|activate`: staged users are known to the workspace
//! (policies, `diff` and `explain` can be tried on them) but cannot query.
//! The list lives in `state/staging.yaml`, written atomically; staging and
//! activating are all or nothing over the users named and audited.
//!
//! `activate` only undoes `stage`: a user the directory disabled, or one
//! `veil.yaml` declares `staged` or `disabled`, stays as declared (the
//! directory or `veil.yaml` is where to change that).

use crate::error::{Result, VeilError};
use crate::load::synced_users::{
    STAGING_FILE, StagingDoc, keep_in_git, read_staging, write_atomically,
};
use crate::model::{UserStatus, Workspace};
use crate::sql::ident::normalize_ident;

fn staging_yaml(doc: &StagingDoc) -> Result<String> {
    let mut out = String::from(
        "# Written by `veil users stage|activate`: these users cannot query until activated.\n",
    );
    out.push_str(
        &serde_norway::to_string(doc)
            .map_err(|e| VeilError::Internal(format!("cannot encode the staged users: {e}")))?,
    );
    Ok(out)
}

/// Stages `users` of `ws` (each must be declared or synced). Returns the
/// users newly staged (the others already were).
pub fn stage(ws: &Workspace, users: &[String]) -> Result<Vec<String>> {
    let mut doc = read_staging(&ws.dir)?;
    let mut changed = Vec::new();
    for name in users {
        let n = normalize_ident(name);
        if ws.user(&n).is_none() {
            return Err(VeilError::workspace(
                STAGING_FILE,
                format!(
                    "user {n} is neither declared in the workspace nor synced; nothing was staged"
                ),
            ));
        }
        if doc.staged.insert(n.clone()) {
            changed.push(n);
        }
    }
    finish(ws, &doc, changed, "USER_STAGED", users)
}

/// Activates `users` staged by [`stage`]. Returns the users activated.
pub fn activate(ws: &Workspace, users: &[String]) -> Result<Vec<String>> {
    let mut doc = read_staging(&ws.dir)?;
    let mut changed = Vec::new();
    for name in users {
        let n = normalize_ident(name);
        let Some(user) = ws.user(&n) else {
            return Err(VeilError::workspace(
                STAGING_FILE,
                format!(
                    "user {n} is neither declared in the workspace nor synced; nothing was activated"
                ),
            ));
        };
        if doc.staged.remove(&n) {
            changed.push(n);
        } else if user.status != UserStatus::Active {
            let status = if user.status == UserStatus::Staged {
                "staged"
            } else {
                "disabled"
            };
            return Err(VeilError::workspace(
                user.origin.to_string(),
                format!(
                    "user {n} is {status} where it is declared or synced, not by veil users stage; change it there (nothing was activated)"
                ),
            ));
        }
    }
    finish(ws, &doc, changed, "USER_ACTIVATED", users)
}

/// Writes the staging file when `changed` is not empty, and audits `action`
/// for every user asked about (also when nothing changed).
fn finish(
    ws: &Workspace,
    doc: &StagingDoc,
    changed: Vec<String>,
    action: &str,
    users: &[String],
) -> Result<Vec<String>> {
    if !changed.is_empty() {
        write_atomically(&ws.dir, STAGING_FILE, &staging_yaml(doc)?)?;
        keep_in_git(&ws.dir, STAGING_FILE)?;
    }
    super::audit(
        ws,
        action,
        None,
        users
            .iter()
            .map(|u| format!("user {}", normalize_ident(u)))
            .collect(),
    )?;
    Ok(changed)
}
