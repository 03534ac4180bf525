//! `veil users sync`: the plan (added, removed and changed users, users
//! `veil.yaml` declares and so wins), the 5 % guard, and writing
//! `state/users.yaml` all or nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::scim::parse_list_response;
use crate::error::{Result, VeilError};
use crate::load::synced_users::{
    SYNCED_USERS_FILE, SyncedUserDoc, SyncedUsersDoc, keep_in_git, read_synced, write_atomically,
};
use crate::model::{Origin, Workspace};

/// The largest change in the user or group count a sync makes without
/// `--force`.
pub const GUARD_SHARE: f64 = 0.05;

/// What a sync changes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncPlan {
    /// Users new to the synced list.
    pub added: Vec<String>,
    /// Users the directory no longer lists.
    pub removed: Vec<String>,
    /// Users whose status, roles, groups or attributes change, with what
    /// changed (`ALICE: groups +Audit -Sales`).
    pub changed: Vec<String>,
    /// Directory users `veil.yaml` also declares: the declared user wins.
    pub declared_win: Vec<String>,
    /// Synced users before and after.
    pub users_before: usize,
    /// Synced users after.
    pub users_after: usize,
    /// Distinct groups of synced users before.
    pub groups_before: usize,
    /// Distinct groups after.
    pub groups_after: usize,
    /// Why the 5 % guard refuses this sync, if it does.
    pub guard: Option<String>,
    /// Whether `state/users.yaml` was written.
    pub written: bool,
}

impl fmt::Display for SyncPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.added {
            writeln!(f, "+ {a}")?;
        }
        for r in &self.removed {
            writeln!(f, "- {r}")?;
        }
        for c in &self.changed {
            writeln!(f, "~ {c}")?;
        }
        for d in &self.declared_win {
            writeln!(
                f,
                "= {d}: declared in veil.yaml, which wins over the directory"
            )?;
        }
        write!(
            f,
            "{} added, {} removed, {} changed; users {} → {}, groups {} → {}",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.users_before,
            self.users_after,
            self.groups_before,
            self.groups_after
        )
    }
}

fn groups_of(users: &[SyncedUserDoc]) -> usize {
    users
        .iter()
        .flat_map(|u| &u.groups)
        .collect::<BTreeSet<_>>()
        .len()
}

fn set_diff(what: &str, old: &BTreeSet<String>, new: &BTreeSet<String>) -> Option<String> {
    let plus: Vec<String> = new.difference(old).map(|x| format!("+{x}")).collect();
    let minus: Vec<String> = old.difference(new).map(|x| format!("-{x}")).collect();
    if plus.is_empty() && minus.is_empty() {
        return None;
    }
    Some(format!(
        "{what} {}",
        plus.into_iter().chain(minus).collect::<Vec<_>>().join(" ")
    ))
}

fn describe(old: &SyncedUserDoc, new: &SyncedUserDoc) -> Option<String> {
    let mut parts = Vec::new();
    if old.status != new.status {
        parts.push(format!("status {} → {}", old.status, new.status));
    }
    if old.roles != new.roles {
        parts.push(format!(
            "roles [{}] → [{}]",
            old.roles.join(", "),
            new.roles.join(", ")
        ));
    }
    parts.extend(set_diff("groups", &old.groups, &new.groups));
    let keys: BTreeSet<&String> = old.attributes.keys().chain(new.attributes.keys()).collect();
    let empty = BTreeSet::new();
    for k in keys {
        let a = old.attributes.get(k).unwrap_or(&empty);
        let b = new.attributes.get(k).unwrap_or(&empty);
        parts.extend(set_diff(k, a, b));
    }
    (!parts.is_empty()).then(|| format!("{}: {}", new.name, parts.join("; ")))
}

/// Why a count change from `before` to `after` trips the guard.
fn guard(what: &str, before: usize, after: usize) -> Option<String> {
    if before == 0 {
        return None;
    }
    let share = (after as f64 - before as f64).abs() / before as f64;
    (share > GUARD_SHARE).then(|| {
        format!(
            "the {what} count changes from {before} to {after} ({:+.1} %), more than 5 %",
            (after as f64 - before as f64) / before as f64 * 100.0
        )
    })
}

/// Plans (and unless `dry_run`, applies) a sync of the workspace `ws` from
/// the SCIM file `file`. A sync the guard refuses is an error unless
/// `force`; either way it is audited, a dry run is not.
pub fn sync(ws: &Workspace, file: &Path, dry_run: bool, force: bool) -> Result<SyncPlan> {
    let label = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| VeilError::workspace(label.clone(), format!("cannot read it: {e}")))?;
    let new_users = parse_list_response(&text, &label)?;
    for (i, u) in new_users.iter().enumerate() {
        for r in &u.roles {
            if r != "PUBLIC" && ws.role(r).is_none() {
                return Err(VeilError::workspace(
                    label.clone(),
                    format!(
                        "user {} (sorted entry {i}) holds role {r}, which the workspace does not declare",
                        u.name
                    ),
                ));
            }
        }
    }
    let old = read_synced(&ws.dir)?;
    let old_by_name: BTreeMap<&str, &SyncedUserDoc> =
        old.users.iter().map(|u| (u.name.as_str(), u)).collect();
    let new_by_name: BTreeMap<&str, &SyncedUserDoc> =
        new_users.iter().map(|u| (u.name.as_str(), u)).collect();
    let declared: BTreeSet<&str> = ws
        .users
        .iter()
        .filter(|u| u.origin.file != SYNCED_USERS_FILE)
        .map(|u| u.name.as_str())
        .collect();
    let mut plan = SyncPlan {
        users_before: old.users.len(),
        users_after: new_users.len(),
        groups_before: groups_of(&old.users),
        groups_after: groups_of(&new_users),
        ..SyncPlan::default()
    };
    for (name, u) in &new_by_name {
        match old_by_name.get(name) {
            None => plan.added.push((*name).to_string()),
            Some(o) => plan.changed.extend(describe(o, u)),
        }
        if declared.contains(name) {
            plan.declared_win.push((*name).to_string());
        }
    }
    plan.removed = old_by_name
        .keys()
        .filter(|n| !new_by_name.contains_key(*n))
        .map(|n| n.to_string())
        .collect();
    plan.guard = guard("user", plan.users_before, plan.users_after)
        .or_else(|| guard("group", plan.groups_before, plan.groups_after));
    // The workspace as it would be: every reference must hold.
    let mut next = ws.clone();
    next.users.retain(|u| u.origin.file != SYNCED_USERS_FILE);
    for (i, u) in new_users.iter().enumerate() {
        if !declared.contains(u.name.as_str()) {
            next.users.push(u.to_user(Origin {
                file: SYNCED_USERS_FILE.into(),
                line: i + 1,
            })?);
        }
    }
    crate::load::validate(&next)?;
    if dry_run {
        return Ok(plan);
    }
    let targets = || {
        plan.added
            .iter()
            .map(|u| format!("user {u} (added)"))
            .chain(plan.removed.iter().map(|u| format!("user {u} (removed)")))
            .chain(plan.changed.iter().map(|c| format!("user {c}")))
            .collect::<Vec<_>>()
    };
    if let Some(reason) = &plan.guard
        && !force
    {
        let message = format!("{reason}; nothing was written (check the export, or pass --force)");
        super::audit(ws, "USER_SYNC", Some(message.clone()), targets())?;
        return Err(VeilError::workspace(label, message));
    }
    let doc = SyncedUsersDoc {
        source: Some(
            file.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or(label),
        ),
        synced_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        users: new_users,
    };
    write_atomically(&ws.dir, SYNCED_USERS_FILE, &users_yaml(&doc)?)?;
    keep_in_git(&ws.dir, SYNCED_USERS_FILE)?;
    plan.written = true;
    super::audit(ws, "USER_SYNC", None, targets())?;
    Ok(plan)
}

/// One line of JSON (valid YAML flow style).
fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| VeilError::Internal(format!("cannot encode a synced user: {e}")))
}

/// `state/users.yaml`: a header, then one user per line in YAML flow style
/// (JSON is valid YAML flow), sorted by name.
pub fn users_yaml(doc: &SyncedUsersDoc) -> Result<String> {
    let mut out = String::with_capacity(doc.users.len() * 96 + 256);
    out.push_str("# Written by `veil users sync` from a SCIM export; change users in the\n");
    out.push_str("# directory (or declare them in veil.yaml, which wins), not here.\n");
    if let Some(s) = &doc.source {
        out.push_str(&format!("source: {}\n", json(s)?));
    }
    if let Some(s) = &doc.synced_at {
        out.push_str(&format!("synced_at: {}\n", json(s)?));
    }
    out.push_str("users:\n");
    for u in &doc.users {
        out.push_str("- ");
        out.push_str(&json(u)?);
        out.push('\n');
    }
    Ok(out)
}
