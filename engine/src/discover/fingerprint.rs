//! Data fingerprints and the discovery state (`state/discovery.json`).
//!
//! A table's fingerprint is a SHA-256 over its data files (relative path,
//! size, modification time), its declared columns and types, and the
//! discovery configuration (sample size, the workspace's classifiers, the
//! version of the built-ins): a table whose fingerprint is unchanged since
//! the last `veil discover --write` is skipped, and any change to its data,
//! its schema or the classifiers rescans it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Finding;
use crate::error::{Result, VeilError};
use crate::model::{Table, Workspace};

/// Where the state lives, relative to the workspace.
pub const DISCOVERY_STATE_FILE: &str = "state/discovery.json";

/// Bumped whenever a built-in classifier changes what it matches, so every
/// table is rescanned once.
const BUILTINS_VERSION: u32 = 1;

/// The state `--write` leaves behind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiscoveryState {
    /// Fully qualified table name → its last scan.
    #[serde(default)]
    pub tables: BTreeMap<String, TableState>,
}

/// The last written scan of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableState {
    /// The table's fingerprint then.
    pub fingerprint: String,
    /// When (RFC 3339, UTC).
    pub scanned_at: String,
    /// What was found.
    #[serde(default)]
    pub findings: Vec<Finding>,
}

fn files_under(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            files_under(&e, out);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// The fingerprint of `table` in `ws`.
pub fn fingerprint(ws: &Workspace, table: &Table) -> String {
    let mut h = Sha256::new();
    h.update(format!("builtins {BUILTINS_VERSION}\n"));
    let d = &ws.settings.discovery;
    h.update(format!("sample {}\n", d.sample));
    for c in &d.classifiers {
        h.update(format!(
            "classifier {:?} {:?} {:?}\n",
            c.name, c.values, c.columns
        ));
        if let Some((_, words)) = &c.dictionary {
            for w in words {
                h.update(w.as_bytes());
                h.update(b"\n");
            }
        }
    }
    h.update(format!("table {} {:?}\n", table.name, table.format));
    for c in &table.columns {
        h.update(format!("column {:?} {}\n", c.name, c.declared));
    }
    if let Some(rows) = &table.rows {
        h.update(format!("rows {rows:?}\n"));
    } else {
        let mut files = Vec::new();
        files_under(&table.location, &mut files);
        for f in files {
            let rel = f.strip_prefix(&ws.dir).unwrap_or(&f).display().to_string();
            let (size, modified) = std::fs::metadata(&f)
                .map(|m| {
                    let modified = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    (m.len(), modified)
                })
                .unwrap_or((0, 0));
            h.update(format!("file {rel:?} {size} {modified}\n"));
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the state (empty when there is none).
pub fn read_state(dir: &Path) -> Result<DiscoveryState> {
    let path = dir.join(DISCOVERY_STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            VeilError::workspace(
                format!("{DISCOVERY_STATE_FILE}:{}", e.line()),
                format!("is not Veil's discovery state ({e}); delete it to rescan every table"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DiscoveryState::default()),
        Err(e) => Err(VeilError::workspace(
            DISCOVERY_STATE_FILE,
            format!("cannot read it: {e}"),
        )),
    }
}

/// The state as its file holds it (pretty JSON, sorted by table).
pub fn state_text(state: &DiscoveryState) -> Result<String> {
    let mut text = serde_json::to_string_pretty(state)
        .map_err(|e| VeilError::Internal(format!("cannot encode the discovery state: {e}")))?;
    text.push('\n');
    Ok(text)
}
