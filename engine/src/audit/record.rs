//! One audit record: who did what to which targets, with what outcome
//! (Immuta's universal audit model plus what a policy simulator needs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client;
use crate::error::VeilError;
use crate::model::TableName;

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
            CatalogChange::Lineage { .. } | CatalogChange::TableCreated(_) => return None,
            CatalogChange::AccessRequested {
                request,
                user,
                table,
                reason,
            } => {
                let targets = access_targets(table, request, user, Some(reason));
                return Some(Self::access_change(
                    event,
                    version,
                    "ACCESS_REQUESTED",
                    targets,
                ));
            }
            CatalogChange::AccessDecided {
                request,
                user,
                table,
                approved,
            } => {
                let action = if *approved {
                    "ACCESS_APPROVED"
                } else {
                    "ACCESS_DENIED"
                };
                let targets = access_targets(table, request, user, None);
                return Some(Self::access_change(event, version, action, targets));
            }
        };
        let mut targets: Vec<String> = event
            .change
            .column()
            .map(ToString::to_string)
            .into_iter()
            .collect();
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

    /// The record of an access request or decision (`ACCESS_REQUESTED`,
    /// `ACCESS_APPROVED`, `ACCESS_DENIED`): the table, the request id, the
    /// user it is for and, for a request, the reason; the actor is who
    /// filed it or the data owner who decided.
    fn access_change(
        event: &crate::model::CatalogEvent,
        version: u64,
        action: &str,
        targets: Vec<String>,
    ) -> Self {
        Self {
            target_type: "TABLE".into(),
            targets,
            previous_version: None,
            ..Self::policy_change(&event.actor, action, version, version, Vec::new())
        }
    }
}

/// The targets of an access record: the table, the request, the user and,
/// for a request, its reason.
fn access_targets(
    table: &crate::model::TableName,
    request: &str,
    user: &str,
    reason: Option<&String>,
) -> Vec<String> {
    let mut targets = vec![
        table.to_string(),
        format!("request {request}"),
        format!("user {user}"),
    ];
    if let Some(reason) = reason {
        targets.push(format!("reason {reason}"));
    }
    targets
}
