//! The users a directory sync wrote (`state/users.yaml`, SPEC §7.4) and the
//! users `veil users stage` staged (`state/staging.yaml`),
//! merged into a workspace as it loads. Users declared in `veil.yaml` (or
//! its includes) win over synced users of the same name; `veil users sync`
//! reports them.
//!
//! `state/users.yaml` is written by Veil, one user per line in YAML flow
//! style, so a Git diff of it reads as the list of changed users.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::yaml::item_lines;
use crate::error::{Result, VeilError};
use crate::ident::normalize_ident;
use crate::model::*;

/// Where the synced users live, relative to the workspace.
pub const SYNCED_USERS_FILE: &str = "state/users.yaml";
/// Where the staging overrides live, relative to the workspace.
pub const STAGING_FILE: &str = "state/staging.yaml";

/// `state/users.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncedUsersDoc {
    /// The file the last sync read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When it ran (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
    /// The users, sorted by name.
    #[serde(default)]
    pub users: Vec<SyncedUserDoc>,
}

/// One synced user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncedUserDoc {
    /// Normalized user name.
    pub name: String,
    /// `active` or `disabled` (SCIM `active: false`).
    #[serde(default = "active", skip_serializing_if = "is_active")]
    pub status: String,
    /// Granted roles (declared in the workspace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Groups.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups: BTreeSet<String>,
    /// Attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, BTreeSet<String>>,
}

fn active() -> String {
    "active".into()
}

fn is_active(s: &str) -> bool {
    s == "active"
}

/// `state/staging.yaml`: the users `veil users stage` set to `staged` over
/// the status they are declared or synced with; `veil users activate`
/// takes them off the list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagingDoc {
    /// Staged user names (normalized).
    #[serde(default)]
    pub staged: BTreeSet<String>,
}

impl SyncedUserDoc {
    /// The model user this entry describes.
    pub fn to_user(&self, origin: Origin) -> Result<User> {
        let status = parse_status(&self.status).ok_or_else(|| {
            VeilError::workspace(
                origin.to_string(),
                format!(
                    "user {}: status '{}' must be active, staged or disabled",
                    self.name, self.status
                ),
            )
        })?;
        Ok(User {
            name: normalize_ident(&self.name),
            status,
            roles: self.roles.iter().map(|r| normalize_ident(r)).collect(),
            groups: self.groups.clone(),
            attributes: self.attributes.clone(),
            purposes: BTreeSet::new(),
            origin,
        })
    }
}

/// `active`, `staged` or `disabled`.
pub fn parse_status(s: &str) -> Option<UserStatus> {
    match s {
        "active" => Some(UserStatus::Active),
        "staged" => Some(UserStatus::Staged),
        "disabled" => Some(UserStatus::Disabled),
        _ => None,
    }
}

fn read_yaml<T: for<'de> Deserialize<'de> + Default>(dir: &Path, rel: &str) -> Result<(T, String)> {
    let path = dir.join(rel);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((T::default(), String::new()));
        }
        Err(e) => return Err(VeilError::workspace(rel, format!("cannot read it: {e}"))),
    };
    let doc = serde_norway::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("{rel}:{}", l.line()))
            .unwrap_or_else(|| rel.to_string());
        VeilError::workspace(at, format!("is not a valid Veil file: {e}"))
    })?;
    Ok((doc, text))
}

/// Reads `state/users.yaml` (empty when there is none).
pub fn read_synced(dir: &Path) -> Result<SyncedUsersDoc> {
    Ok(read_yaml(dir, SYNCED_USERS_FILE)?.0)
}

/// Reads `state/staging.yaml` (empty when there is none).
pub fn read_staging(dir: &Path) -> Result<StagingDoc> {
    Ok(read_yaml(dir, STAGING_FILE)?.0)
}

/// Writes `text` to `dir/rel` atomically: a temporary file in the same
/// directory, synced, then renamed over the old one. Readers see the old
/// file or the new one, never a part.
pub fn write_atomically(dir: &Path, rel: &str, text: &str) -> Result<PathBuf> {
    use std::io::Write;
    let path = dir.join(rel);
    let parent = path.parent().unwrap_or(dir);
    let fail =
        |what: &str, e: std::io::Error| VeilError::workspace(rel, format!("cannot {what} it: {e}"));
    std::fs::create_dir_all(parent).map_err(|e| fail("create the directory of", e))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(|e| fail("write", e))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("write", e))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("replace", e)
    })?;
    Ok(path)
}

/// Reads `text` if it is laid out as `veil users sync` writes it (comment
/// lines, `source:` and `synced_at:` with a JSON string, `users:`, then one
/// `- {JSON object}` per user): the document and each user's line. `None`
/// for anything else (a hand-edited file), which the YAML parser reads.
/// JSON is YAML's flow style, so both readings agree; this one parses
/// 100 000 users in a fraction of the time.
fn read_sync_layout(text: &str) -> Option<(SyncedUsersDoc, Vec<usize>)> {
    let mut doc = SyncedUsersDoc::default();
    let mut lines = Vec::new();
    let mut in_users = false;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if in_users {
            let item = line.strip_prefix("- ")?;
            doc.users.push(serde_json::from_str(item).ok()?);
            lines.push(i + 1);
        } else if let Some(v) = line.strip_prefix("source: ") {
            doc.source = Some(serde_json::from_str(v).ok()?);
        } else if let Some(v) = line.strip_prefix("synced_at: ") {
            doc.synced_at = Some(serde_json::from_str(v).ok()?);
        } else if line == "users:" {
            in_users = true;
        } else {
            return None;
        }
    }
    Some((doc, lines))
}

/// Adds the synced users of `state/users.yaml` that `veil.yaml` does not
/// declare, then applies `state/staging.yaml`. Returns the names of synced
/// users a declared user shadows.
pub fn merge(ws: &mut Workspace) -> Result<Vec<String>> {
    let path = ws.dir.join(SYNCED_USERS_FILE);
    let fast = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| read_sync_layout(&text));
    let (doc, lines) = match fast {
        Some(read) => read,
        None => {
            let (doc, text): (SyncedUsersDoc, String) = read_yaml(&ws.dir, SYNCED_USERS_FILE)?;
            let lines = item_lines(&text, "users");
            (doc, lines)
        }
    };
    let declared: HashSet<String> = ws.users.iter().map(|u| u.name.clone()).collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(doc.users.len());
    let mut shadowed = Vec::new();
    ws.users.reserve(doc.users.len());
    for (i, u) in doc.users.iter().enumerate() {
        let origin = Origin {
            file: SYNCED_USERS_FILE.into(),
            line: lines.get(i).copied().unwrap_or(0),
        };
        let user = u.to_user(origin.clone())?;
        if !seen.insert(user.name.clone()) {
            return Err(VeilError::workspace(
                origin.to_string(),
                format!("user {} is listed twice", user.name),
            ));
        }
        if declared.contains(&user.name) {
            shadowed.push(user.name);
            continue;
        }
        ws.users.push(user);
    }
    let staging = read_staging(&ws.dir)?;
    if !staging.staged.is_empty() {
        let mut names: HashSet<String> =
            staging.staged.iter().map(|n| normalize_ident(n)).collect();
        for u in ws.users.iter_mut() {
            if names.remove(&u.name) {
                u.status = UserStatus::Staged;
            }
        }
        for name in names {
            ws.warnings.push(format!(
                "{STAGING_FILE}: user {name} is neither declared nor synced; its staging is ignored"
            ));
        }
    }
    Ok(shadowed)
}

/// When `state/.gitignore` ignores everything (`*`, as the audit log's
/// directory gets), adds an exception for `rel` (a file under `state/`):
/// the files Veil's commands write for review belong in Git.
pub fn keep_in_git(dir: &Path, rel: &str) -> Result<()> {
    let path = dir.join(rel);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let ignore = parent.join(".gitignore");
    let exception = format!("!{}", name.to_string_lossy());
    if let Ok(mut text) = std::fs::read_to_string(&ignore)
        && text.lines().any(|l| l.trim() == "*")
        && !text.lines().any(|l| l.trim() == exception)
    {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&exception);
        text.push('\n');
        std::fs::write(&ignore, text).map_err(|e| {
            VeilError::workspace(rel, format!("cannot update the .gitignore beside it: {e}"))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_layout_reads_as_the_yaml_parser_reads_it() {
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "department".to_string(),
            BTreeSet::from(["Sales: \"EU\" #1".to_string()]),
        );
        let doc = SyncedUsersDoc {
            source: Some("scim: export.json".into()),
            synced_at: Some("2026-12-03T12:00:00Z".into()),
            users: vec![
                SyncedUserDoc {
                    name: "ANN@EXAMPLE.COM".into(),
                    status: "active".into(),
                    roles: vec!["ANALYST".into()],
                    groups: BTreeSet::from(["Sales - EU".to_string()]),
                    attributes,
                },
                SyncedUserDoc {
                    name: "BOB".into(),
                    status: "disabled".into(),
                    roles: Vec::new(),
                    groups: BTreeSet::new(),
                    attributes: BTreeMap::new(),
                },
            ],
        };
        let text = crate::directory::sync::users_yaml(&doc).unwrap();
        let (fast, lines) = read_sync_layout(&text).expect("Veil's own layout");
        let yaml: SyncedUsersDoc = serde_norway::from_str(&text).unwrap();
        assert_eq!(fast, yaml);
        assert_eq!(fast, doc);
        assert_eq!(lines, item_lines(&text, "users"));
        // Hand-edited block style is left to the YAML parser.
        assert!(read_sync_layout("users:\n  - name: ANN\n").is_none());
        assert!(read_sync_layout("users:\n- {\"name\": \"ANN\", \"extra\": 1}\n").is_none());
    }
}
