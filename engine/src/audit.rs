//! The audit log (SPEC §7): one JSON record per query — allowed or denied —
//! and per policy or entitlement change, as JSON Lines.
//!
//! Records follow the shape of Immuta's universal audit model: `action`,
//! `actor`, `actionStatus` and `actionStatusReason`, `targetType` and
//! `targets`, plus what a policy simulator needs (`sql`, `policiesApplied`,
//! `rowsReturned`, `durationMs`, `policyVersion`).
//!
//! Appending is safe for concurrent sessions and processes: the file is
//! opened in append mode and each record is one complete line written with a
//! single `write`, so lines never interleave. A crash mid-write can at worst
//! leave a torn last line; the next writer ends it first, and readers skip
//! it, so every record is either complete or absent. Administrators read the
//! log as the SQL table `veil.audit` (also `VEIL.SYSTEM.AUDIT`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VeilError};
use crate::model::{TableName, Workspace};

pub mod client;
pub use client::{ClientInfo, with_client};

/// Name of the audit table (`veil.audit`, `VEIL.SYSTEM.AUDIT`).
pub const AUDIT_TABLE: &str = "AUDIT";

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// User name (or `ADMIN` for administrative changes).
    pub name: String,
    /// Primary role of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Purpose the session acted under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Unique id (process, time, sequence).
    pub id: String,
    /// When, RFC 3339 in UTC.
    pub timestamp: String,
    /// `QUERY`, `SIMULATED_QUERY`, `POLICY_CHANGE`, `POLICY_ROLLBACK` or
    /// `LOGIN`.
    pub action: String,
    /// Who.
    pub actor: Actor,
    /// `SUCCESS` or `FAILURE`.
    pub action_status: String,
    /// Why it failed (the error the user saw), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_status_reason: Option<String>,
    /// `DATA_SOURCE` for queries, `POLICY` for changes.
    pub target_type: String,
    /// Tables queried, or what changed (`policy hash-pii (changed)`).
    pub targets: Vec<String>,
    /// The statement, for queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Policies that shaped the user's view of the tables queried: row rules
    /// that filter and masks that apply to this user (on any column of those
    /// tables, not only the columns selected).
    #[serde(default)]
    pub policies_applied: Vec<String>,
    /// Rows returned, for allowed queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_returned: Option<u64>,
    /// Wall time, for queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The policy version the query ran on, or the version a change installed.
    pub policy_version: u64,
    /// The version a change replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<u64>,
    /// For `SIMULATED_QUERY` (an administrator's `EXECUTE USING
    /// POLICY_CONTEXT`): the user whose view was simulated; `actor` is the
    /// administrator and `actor.role` the simulated role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_user: Option<String>,
    /// For a catalog change (`TAG_ADDED`, `TAG_PROPAGATED`, `TAG_REMOVED`,
    /// `PROPAGATION_REMOVED`): the tag; the target column is `targets[0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// For a propagation: the column the tag was first put on (or, for a
    /// `PROPAGATION_REMOVED`, the ancestor that lost it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The client's address (`ip:port`), for statements that came through
    /// a server (see [`client`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// The application name the client announced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
}

/// What a session reports about one statement.
#[derive(Debug)]
pub struct QueryAudit<'a> {
    /// User.
    pub user: &'a str,
    /// Primary role.
    pub role: &'a str,
    /// Purpose.
    pub purpose: Option<&'a str>,
    /// The statement text.
    pub sql: &'a str,
    /// Tables it named.
    pub tables: &'a [TableName],
    /// Policies applied.
    pub policies: Vec<String>,
    /// Rows returned, or the error.
    pub result: std::result::Result<usize, &'a VeilError>,
    /// Wall time.
    pub duration: Duration,
    /// Policy version.
    pub version: u64,
    /// The administrator simulating this session, if one is.
    pub simulated_by: Option<&'a str>,
}

fn record_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl AuditRecord {
    /// The record of one statement, allowed or denied.
    pub fn query(q: QueryAudit<'_>) -> Self {
        let (status, reason, rows) = match q.result {
            Ok(n) => ("SUCCESS", None, Some(n as u64)),
            Err(e) => ("FAILURE", Some(e.to_string()), None),
        };
        let (action, actor, simulated_user) = match q.simulated_by {
            Some(admin) => ("SIMULATED_QUERY", admin, Some(q.user.to_string())),
            None => ("QUERY", q.user, None),
        };
        Self {
            id: record_id(),
            timestamp: now(),
            action: action.into(),
            actor: Actor {
                name: actor.to_string(),
                role: Some(q.role.to_string()),
                purpose: q.purpose.map(str::to_string),
            },
            action_status: status.into(),
            action_status_reason: reason,
            target_type: "DATA_SOURCE".into(),
            targets: q.tables.iter().map(ToString::to_string).collect(),
            sql: Some(q.sql.to_string()),
            policies_applied: q.policies,
            rows_returned: rows,
            duration_ms: Some(q.duration.as_secs_f64() * 1000.0),
            policy_version: q.version,
            previous_version: None,
            simulated_user,
            tag: None,
            origin: None,
            client_address: None,
            application_name: None,
        }
        .with_current_client()
    }

    /// The record of a login to a server (`action` `LOGIN`): who tried, from
    /// where (`targets`: the client address and protocol), and, when it
    /// failed, why (for administrators; the client only sees that it
    /// failed).
    pub fn login(user: &str, client: &str, failure: Option<&str>, version: u64) -> Self {
        Self {
            id: record_id(),
            timestamp: now(),
            action: "LOGIN".into(),
            actor: Actor {
                name: user.to_string(),
                role: None,
                purpose: None,
            },
            action_status: if failure.is_some() {
                "FAILURE"
            } else {
                "SUCCESS"
            }
            .into(),
            action_status_reason: failure.map(str::to_string),
            target_type: "SERVER".into(),
            targets: vec![client.to_string()],
            sql: None,
            policies_applied: Vec::new(),
            rows_returned: None,
            duration_ms: None,
            policy_version: version,
            previous_version: None,
            simulated_user: None,
            tag: None,
            origin: None,
            client_address: None,
            application_name: None,
        }
        .with_current_client()
    }

    /// The record of a policy or entitlement change (`action` is
    /// `POLICY_CHANGE` or `POLICY_ROLLBACK`).
    pub fn policy_change(
        actor: &str,
        action: &str,
        previous: u64,
        version: u64,
        changes: Vec<String>,
    ) -> Self {
        Self {
            id: record_id(),
            timestamp: now(),
            action: action.into(),
            actor: Actor {
                name: actor.to_string(),
                role: None,
                purpose: None,
            },
            action_status: "SUCCESS".into(),
            action_status_reason: None,
            target_type: "POLICY".into(),
            targets: changes,
            sql: None,
            policies_applied: Vec::new(),
            rows_returned: None,
            duration_ms: None,
            policy_version: version,
            previous_version: Some(previous),
            simulated_user: None,
            tag: None,
            origin: None,
            client_address: None,
            application_name: None,
        }
        .with_current_client()
    }

    /// Stamps the client of the current connection, if any ([`client`]).
    fn with_current_client(mut self) -> Self {
        if let Some(c) = client::current() {
            self.client_address = c.address().map(str::to_string);
            self.application_name = c.application_name();
        }
        self
    }

    /// The record of one tag change in the catalog journal (SPEC §7.1 rule
    /// 8): `TAG_ADDED`, `TAG_PROPAGATED`, `TAG_REMOVED` or
    /// `PROPAGATION_REMOVED`, naming the target column, the tag and, for a
    /// propagation, the origin column. `None` for lineage events.
    pub fn catalog_change(event: &crate::model::CatalogEvent, version: u64) -> Option<Self> {
        use crate::model::CatalogChange;
        let (action, tag, origin, source) = match &event.change {
            CatalogChange::TagAdded {
                tag,
                origin,
                source,
                ..
            } => (
                if origin.is_some() {
                    "TAG_PROPAGATED"
                } else {
                    "TAG_ADDED"
                },
                tag,
                origin,
                Some(*source),
            ),
            CatalogChange::TagRemoved { tag, origin, .. } => (
                if origin.is_some() {
                    "PROPAGATION_REMOVED"
                } else {
                    "TAG_REMOVED"
                },
                tag,
                origin,
                None,
            ),
            CatalogChange::Lineage { .. } => return None,
        };
        let mut targets = vec![event.change.column().to_string()];
        if let Some(source) = source {
            targets.push(format!("source {source}"));
        }
        Some(
            Self {
                id: record_id(),
                timestamp: now(),
                action: action.into(),
                actor: Actor {
                    name: event.actor.clone(),
                    role: None,
                    purpose: None,
                },
                action_status: "SUCCESS".into(),
                action_status_reason: None,
                target_type: "COLUMN".into(),
                targets,
                sql: None,
                policies_applied: Vec::new(),
                rows_returned: None,
                duration_ms: None,
                policy_version: version,
                previous_version: None,
                simulated_user: None,
                tag: Some(tag.clone()),
                origin: origin.as_ref().map(ToString::to_string),
                client_address: None,
                application_name: None,
            }
            .with_current_client(),
        )
    }
}

/// What differs between two workspaces, one line per policy, user, role or
/// column tag (the targets of a change record).
pub fn describe_changes(old: &Workspace, new: &Workspace) -> Vec<String> {
    fn diff<T>(
        out: &mut Vec<String>,
        what: &str,
        old: &[T],
        new: &[T],
        key: impl Fn(&T) -> String,
        same: impl Fn(&T, &T) -> bool,
    ) {
        for n in new {
            match old.iter().find(|o| key(o) == key(n)) {
                None => out.push(format!("{what} {} (added)", key(n))),
                Some(o) if !same(o, n) => out.push(format!("{what} {} (changed)", key(n))),
                Some(_) => {}
            }
        }
        for o in old {
            if !new.iter().any(|n| key(n) == key(o)) {
                out.push(format!("{what} {} (removed)", key(o)));
            }
        }
    }
    let mut out = Vec::new();
    diff(
        &mut out,
        "policy",
        &old.policies,
        &new.policies,
        |p| p.name.clone(),
        |a, b| a.kind == b.kind && a.target == b.target,
    );
    diff(
        &mut out,
        "user",
        &old.users,
        &new.users,
        |u| u.name.clone(),
        |a, b| {
            a.status == b.status
                && a.roles == b.roles
                && a.groups == b.groups
                && a.attributes == b.attributes
                && a.purposes == b.purposes
        },
    );
    diff(
        &mut out,
        "role",
        &old.roles,
        &new.roles,
        |r| r.name.clone(),
        |a, b| a.grants == b.grants && a.inherits == b.inherits && a.privileges == b.privileges,
    );
    let sf = (&old.snowflake, &new.snowflake);
    diff(
        &mut out,
        "masking policy",
        &sf.0.masking_policies,
        &sf.1.masking_policies,
        |p| p.name.clone(),
        |a, b| a.params == b.params && a.body == b.body && a.returns == b.returns,
    );
    diff(
        &mut out,
        "row access policy",
        &sf.0.row_access_policies,
        &sf.1.row_access_policies,
        |p| p.name.clone(),
        |a, b| a.params == b.params && a.body == b.body,
    );
    diff(
        &mut out,
        "function",
        &sf.0.functions,
        &sf.1.functions,
        |f| f.name.clone(),
        |a, b| a.params == b.params && a.body == b.body,
    );
    diff(
        &mut out,
        "view",
        &sf.0.views,
        &sf.1.views,
        |v| v.name.to_string(),
        |a, b| a.query == b.query && a.column_policies == b.column_policies,
    );
    let tag_policies = |o: &crate::model::SnowflakeObjects| -> Vec<(String, Vec<String>)> {
        o.tags
            .iter()
            .map(|(t, d)| (t.clone(), d.masking_policies.clone()))
            .collect()
    };
    diff(
        &mut out,
        "tag masking policies of",
        &tag_policies(sf.0),
        &tag_policies(sf.1),
        |t| t.0.clone(),
        |a, b| a.1 == b.1,
    );
    let attachments = |ws: &Workspace| -> Vec<(String, String)> {
        ws.tables
            .iter()
            .flat_map(|t| {
                let row = t.row_access_policy.as_ref().map(|r| {
                    (
                        format!("{} (row access)", t.name),
                        format!("{} {:?}", r.policy, r.columns),
                    )
                });
                t.columns
                    .iter()
                    .filter_map(move |c| {
                        c.masking_policy.as_ref().map(|m| {
                            (
                                format!("{}.{}", t.name, c.name),
                                format!("{} {:?}", m.policy, m.using),
                            )
                        })
                    })
                    .chain(row)
            })
            .collect()
    };
    diff(
        &mut out,
        "policy attachment on",
        &attachments(old),
        &attachments(new),
        |a| a.0.clone(),
        |a, b| a.1 == b.1,
    );
    let tags = |ws: &Workspace| -> Vec<(String, String)> {
        ws.tables
            .iter()
            .flat_map(|t| {
                t.columns.iter().flat_map(move |c| {
                    c.tags.iter().map(move |tag| {
                        (
                            format!("{} on {}.{}", tag.name, t.name, c.name),
                            String::new(),
                        )
                    })
                })
            })
            .collect()
    };
    diff(
        &mut out,
        "tag",
        &tags(old),
        &tags(new),
        |t| t.0.clone(),
        |_, _| true,
    );
    out
}

/// An append-only JSON Lines audit file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> VeilError {
    VeilError::workspace(
        path.display().to_string(),
        format!("cannot {what} the audit log: {e}"),
    )
}

impl AuditLog {
    /// Opens (or creates) the log at `path` for appending. If a crash left a
    /// torn last line, it is ended first so the next record stands alone.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| io_error(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_error(path, "read", e))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| io_error(path, "read", e))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .map_err(|e| io_error(path, "write", e))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one complete line.
    pub fn append(&self, record: &AuditRecord) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| {
            VeilError::workspace(
                self.path.display().to_string(),
                format!("cannot encode an audit record: {e}"),
            )
        })?;
        line.push(b'\n');
        let mut file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.write_all(&line)
            .map_err(|e| io_error(&self.path, "append to", e))
    }

    /// Makes every record appended so far durable (`fsync`), as a server
    /// does when it shuts down.
    pub fn flush(&self) -> Result<()> {
        let file = match self.file.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.sync_data()
            .map_err(|e| io_error(&self.path, "flush", e))
    }

    /// Every complete record in the log (torn lines are skipped).
    pub fn records(&self) -> Result<Vec<AuditRecord>> {
        Ok(read_log(&self.path)?.0)
    }
}

/// Makes sure the directory of the audit log at `path` exists. A directory
/// created here (the workspace's `state/`, by default) gets a `.gitignore`
/// of `*`, so audit records never land in the workspace's repository.
pub fn prepare_log_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(path, "create the directory of", e))?;
    std::fs::write(dir.join(".gitignore"), "*\n")
        .map_err(|e| io_error(path, "write a .gitignore beside", e))
}

/// Reads a log: the complete records, and how many lines were torn or
/// unreadable (skipped).
pub fn read_log(path: &Path) -> Result<(Vec<AuditRecord>, usize)> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, "read", e))?;
    let mut records = Vec::new();
    let mut torn = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<AuditRecord>(line) {
            Ok(r) => records.push(r),
            Err(_) => torn += 1,
        }
    }
    Ok((records, torn))
}

/// The engine's audit log, shared with the `veil.audit` table of every
/// version.
#[derive(Debug, Clone, Default)]
pub struct AuditHandle(Arc<RwLock<Option<Arc<AuditLog>>>>);

impl AuditHandle {
    /// The log, if set.
    pub fn get(&self) -> Option<Arc<AuditLog>> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets the log.
    pub fn set(&self, log: AuditLog) {
        let mut slot = match self.0.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(Arc::new(log));
    }
}

/// `veil.audit`: the audit log as a table, read when scanned. Lives only in
/// the internal catalog, so only administrators reach it.
#[derive(Debug)]
pub struct AuditTable {
    log: AuditHandle,
    schema: SchemaRef,
}

impl AuditTable {
    /// The table over `log`.
    pub fn new(log: AuditHandle) -> Self {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Arc::new(Schema::new(vec![
            text("ID"),
            text("TIMESTAMP"),
            text("ACTION"),
            text("ACTOR"),
            text("ROLE"),
            text("PURPOSE"),
            text("STATUS"),
            text("REASON"),
            text("TARGET_TYPE"),
            text("TARGETS"),
            text("SQL"),
            text("POLICIES_APPLIED"),
            Field::new("ROWS_RETURNED", DataType::Int64, true),
            Field::new("DURATION_MS", DataType::Float64, true),
            Field::new("POLICY_VERSION", DataType::Int64, true),
        ]));
        Self { log, schema }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let records = match self.log.get() {
            Some(log) => log.records()?,
            None => Vec::new(),
        };
        let text = |f: &dyn Fn(&AuditRecord) -> Option<String>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<StringArray>())
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|r| Some(r.id.clone())),
            text(&|r| Some(r.timestamp.clone())),
            text(&|r| Some(r.action.clone())),
            text(&|r| Some(r.actor.name.clone())),
            text(&|r| r.actor.role.clone()),
            text(&|r| r.actor.purpose.clone()),
            text(&|r| Some(r.action_status.clone())),
            text(&|r| r.action_status_reason.clone()),
            text(&|r| Some(r.target_type.clone())),
            text(&|r| Some(r.targets.join(", "))),
            text(&|r| r.sql.clone()),
            text(&|r| Some(r.policies_applied.join(", "))),
            Arc::new(
                records
                    .iter()
                    .map(|r| r.rows_returned.map(|n| n as i64))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                records
                    .iter()
                    .map(|r| r.duration_ms)
                    .collect::<Float64Array>(),
            ),
            Arc::new(
                records
                    .iter()
                    .map(|r| Some(r.policy_version as i64))
                    .collect::<Int64Array>(),
            ),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let batch = self
            .batch()
            .map_err(datafusion::error::DataFusionError::from)?;
        let table = MemTable::try_new(Arc::clone(&self.schema), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u64) -> AuditRecord {
        AuditRecord::policy_change(
            "ADMIN",
            "POLICY_CHANGE",
            n,
            n + 1,
            vec![format!("policy p{n} (added)")],
        )
    }

    #[test]
    fn a_torn_last_line_is_ended_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.append(&change(1)).unwrap();
        drop(log);
        // A crash mid-write: half a record, no newline.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"id":"torn","timest"#).unwrap();
        drop(f);
        let log = AuditLog::open(&path).unwrap();
        log.append(&change(2)).unwrap();
        let (records, torn) = read_log(&path).unwrap();
        assert_eq!(torn, 1);
        assert_eq!(records, vec![records[0].clone(), records[1].clone()]);
        assert_eq!(records[0].targets, vec!["policy p1 (added)"]);
        assert_eq!(records[1].targets, vec!["policy p2 (added)"]);
    }

    #[test]
    fn concurrent_appends_keep_every_line_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        // Two handles on one file, as two processes would have.
        let a = Arc::new(AuditLog::open(&path).unwrap());
        let b = Arc::new(AuditLog::open(&path).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let log = if i % 2 == 0 {
                    Arc::clone(&a)
                } else {
                    Arc::clone(&b)
                };
                std::thread::spawn(move || {
                    for n in 0..200 {
                        log.append(&change(i * 1000 + n)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (records, torn) = read_log(&path).unwrap();
        assert_eq!(torn, 0);
        assert_eq!(records.len(), 1600);
    }
}
