//! Access requests for `allow: approval` subscriptions (SPEC §2, §3.4), as
//! Immuta's "request access" workflow: a user asks for a table with a
//! reason, a data owner of the table approves or denies, and the user is
//! subscribed from the next statement once an approval is folded. The
//! three events live in the catalog journal (`access_requested`,
//! `access_approved`, `access_denied`); this module holds their folded
//! state ([`AccessRequests`]) and the [`Recorder`] methods that check and
//! record them. Pure logic, no I/O.

use super::{CatalogChange, Recorder};
use crate::error::{Result, VeilError};
use crate::model::{Allow, Policy, PolicyKind, Table, TableName, Target, Workspace, tag_is_under};

/// Where the recorder's access errors point.
const LOCATION: &str = "catalog journal";

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessState {
    /// Waiting for a data owner.
    Pending,
    /// Approved by `by` at `time`: the user is subscribed.
    Approved {
        /// The data owner who approved.
        by: String,
        /// When, RFC 3339.
        time: String,
    },
    /// Denied by `by` at `time`: the user stays unsubscribed.
    Denied {
        /// The data owner who denied.
        by: String,
        /// When, RFC 3339.
        time: String,
    },
}

impl AccessState {
    /// `pending`, `approved` or `denied`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved { .. } => "approved",
            Self::Denied { .. } => "denied",
        }
    }
}

/// One access request, as folded from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Its id (`R1`, `R2`, ... in journal order).
    pub id: String,
    /// The user asking.
    pub user: String,
    /// The table asked for.
    pub table: TableName,
    /// Why, in the user's words.
    pub reason: String,
    /// When it was requested, RFC 3339.
    pub requested: String,
    /// Where it stands.
    pub state: AccessState,
}

/// Every access request of a workspace, in journal order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRequests(pub Vec<AccessRequest>);

impl AccessRequests {
    /// The request with id `id`.
    pub fn get(&self, id: &str) -> Option<&AccessRequest> {
        self.0.iter().find(|r| r.id == id)
    }

    /// The users holding an approval for `table` from one of its current
    /// data owners `owners`, in request order. An approval by anyone else
    /// (a hand-edited journal, an owner since removed from `owners:`)
    /// subscribes nobody: approvals fail closed.
    pub fn approved_users(&self, table: &TableName, owners: &[String]) -> Vec<String> {
        let mut users: Vec<String> = Vec::new();
        for r in &self.0 {
            if r.table == *table
                && matches!(&r.state, AccessState::Approved { by, .. } if owners.contains(by))
                && !users.contains(&r.user)
            {
                users.push(r.user.clone());
            }
        }
        users
    }

    /// The id the next request gets.
    pub fn next_id(&self) -> String {
        format!("R{}", self.0.len() + 1)
    }

    /// Folds one access event (never fails: a decision on an id the journal
    /// never requested, or on a request already decided, changes nothing).
    pub(super) fn fold(&mut self, change: &CatalogChange, actor: &str, time: &str) {
        match change {
            CatalogChange::AccessRequested {
                request,
                user,
                table,
                reason,
            } if self.get(request).is_none() => {
                self.0.push(AccessRequest {
                    id: request.clone(),
                    user: user.clone(),
                    table: table.clone(),
                    reason: reason.clone(),
                    requested: time.to_string(),
                    state: AccessState::Pending,
                });
            }
            CatalogChange::AccessDecided {
                request, approved, ..
            } => {
                if let Some(r) = self.0.iter_mut().find(|r| r.id == *request)
                    && r.state == AccessState::Pending
                {
                    let (by, time) = (actor.to_string(), time.to_string());
                    r.state = if *approved {
                        AccessState::Approved { by, time }
                    } else {
                        AccessState::Denied { by, time }
                    };
                }
            }
            _ => {}
        }
    }
}

/// The first `allow: approval` subscription policy that reaches `table`
/// (by data source, or by a tag on one of its columns).
pub fn approval_policy<'a>(ws: &'a Workspace, table: &Table) -> Option<&'a Policy> {
    ws.policies.iter().find(|p| {
        matches!(
            p.kind,
            PolicyKind::Subscription {
                allow: Allow::Approval,
                ..
            }
        ) && match &p.target {
            Target::DataSources(ts) => ts.contains(&table.name),
            Target::Tags(tags) => table.columns.iter().any(|c| {
                c.tags
                    .iter()
                    .any(|t| tags.iter().any(|g| tag_is_under(&t.name, g)))
            }),
            Target::Columns(_) => false,
        }
    })
}

impl Recorder<'_> {
    /// Records `user`'s request for `table` (the recorder's actor is who
    /// files it). The user and table must be declared, the table must be
    /// reached by an `allow: approval` policy, and the user must not already
    /// hold a pending or approved request for it.
    pub fn request_access(
        &mut self,
        user: &str,
        table: &TableName,
        reason: &str,
    ) -> Result<String> {
        let ws = self.workspace();
        if ws.user(user).is_none() {
            return Err(VeilError::workspace(
                LOCATION,
                format!("user {user} is not declared, so it cannot request access"),
            ));
        }
        let Some(t) = ws.table(table) else {
            return Err(VeilError::workspace(
                LOCATION,
                format!("table {table} is not declared"),
            ));
        };
        if approval_policy(ws, t).is_none() {
            return Err(VeilError::workspace(
                LOCATION,
                format!(
                    "no allow: approval subscription policy covers table {table}, so there is nothing to request"
                ),
            ));
        }
        if reason.trim().is_empty() {
            return Err(VeilError::workspace(
                LOCATION,
                format!("the request of {user} for {table} needs a reason"),
            ));
        }
        if let Some(open) = ws.journal.access.0.iter().find(|r| {
            r.user == user
                && r.table == *table
                && matches!(r.state, AccessState::Pending | AccessState::Approved { .. })
        }) {
            return Err(VeilError::workspace(
                LOCATION,
                format!(
                    "user {user} already has request {} for {table}, {}",
                    open.id,
                    open.state.as_str()
                ),
            ));
        }
        let id = ws.journal.access.next_id();
        self.push(CatalogChange::AccessRequested {
            request: id.clone(),
            user: user.to_string(),
            table: table.clone(),
            reason: reason.trim().to_string(),
        });
        Ok(id)
    }

    /// Approves (`approved`) or denies request `id` as the recorder's actor,
    /// who must be a data owner of the requested table; the request must be
    /// pending.
    pub fn decide_access(&mut self, id: &str, approved: bool) -> Result<AccessRequest> {
        let ws = self.workspace();
        let verb = if approved { "approve" } else { "deny" };
        let Some(request) = ws.journal.access.get(id).cloned() else {
            return Err(VeilError::workspace(
                LOCATION,
                format!("there is no access request {id}"),
            ));
        };
        let owners = ws
            .table(&request.table)
            .map(|t| t.owners.clone())
            .unwrap_or_default();
        let actor = self.actor().to_string();
        if !owners.contains(&actor) {
            return Err(VeilError::workspace(
                LOCATION,
                format!(
                    "user {actor} is not a data owner of {} and cannot {verb} request {id}",
                    request.table
                ),
            ));
        }
        if request.state != AccessState::Pending {
            return Err(VeilError::workspace(
                LOCATION,
                format!("request {id} is already {}", request.state.as_str()),
            ));
        }
        self.push(CatalogChange::AccessDecided {
            request: id.to_string(),
            user: request.user.clone(),
            table: request.table.clone(),
            approved,
        });
        self.workspace()
            .journal
            .access
            .get(id)
            .cloned()
            .ok_or_else(|| VeilError::Internal(format!("request {id} vanished while recording")))
    }
}
