//! `veil access request|approve|deny|list`: `allow: approval` subscriptions
//! from the command line (SPEC §2, §3.4). A user files a request for a
//! table with a reason; a data owner of the table approves or denies it.
//! Each change is appended to the workspace's catalog journal
//! (`state/catalog.jsonl`), audited, and in force for any engine that loads
//! the workspace afterwards (a running `veil serve`, which does not watch
//! `state/`, on its next reload or restart).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use veil_engine::load::journal::Recorded;
use veil_engine::load::journal::access::{decide_access, request_access};
use veil_engine::model::Workspace;

use crate::tags::load;
use crate::{Failure, emit, emit_line};

/// The workspace and audit flags every access command takes.
#[derive(Args)]
pub(crate) struct Target {
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace", default_value = ".")]
    workspace: PathBuf,
    /// Append an audit record of the change to this JSON Lines file
    /// (default: settings.audit of veil.yaml).
    #[arg(long)]
    audit: Option<PathBuf>,
}

/// `veil access`.
#[derive(Args)]
pub(crate) struct AccessArgs {
    #[command(subcommand)]
    pub(crate) action: AccessAction,
}

/// `veil access request|approve|deny|list`.
#[derive(Subcommand)]
pub(crate) enum AccessAction {
    /// Ask for a table under an `allow: approval` subscription policy
    /// (e.g. `veil access request -w ws -u erin ORDERS --reason "Q3 audit"`).
    Request {
        #[command(flatten)]
        target: Target,
        /// The user asking.
        #[arg(short = 'u', long = "user")]
        user: String,
        /// The table (DB.SCHEMA.TABLE, or a name resolved against the
        /// workspace defaults).
        table: String,
        /// Why the user needs it.
        #[arg(long)]
        reason: String,
    },
    /// Approve a pending request as a data owner of its table: the user is
    /// subscribed from the next statement (e.g. `veil access approve -w ws R1 --by dana`).
    Approve {
        #[command(flatten)]
        target: Target,
        /// The request id (`veil access list` shows them).
        request: String,
        /// The data owner deciding.
        #[arg(long)]
        by: String,
    },
    /// Deny a pending request as a data owner of its table.
    Deny {
        #[command(flatten)]
        target: Target,
        /// The request id.
        request: String,
        /// The data owner deciding.
        #[arg(long)]
        by: String,
    },
    /// Every access request and where it stands.
    List {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
    },
}

fn audit(target: &Target, ws: &Workspace, recorded: &Recorded) -> Result<(), Failure> {
    crate::tags::audit_recorded(target.audit.as_deref(), ws, recorded)
}

/// `veil access ...`.
pub(crate) fn access(action: AccessAction) -> Result<(), Failure> {
    match action {
        AccessAction::Request {
            target,
            user,
            table,
            reason,
        } => {
            let ws = load(&target.workspace)?;
            let (recorded, id) = request_access(&ws, &user, &table, &reason)?;
            audit(&target, &ws, &recorded)?;
            let request = recorded.workspace.journal.access.get(&id);
            let (user, table) = request
                .map(|r| (r.user.clone(), r.table.to_string()))
                .unwrap_or((user, table));
            emit_line(format!(
                "requested {id}: {user} asks for {table} (pending; a data owner approves with `veil access approve {id} --by OWNER`)"
            ))
        }
        AccessAction::Approve {
            target,
            request,
            by,
        } => decide(target, &request, &by, true),
        AccessAction::Deny {
            target,
            request,
            by,
        } => decide(target, &request, &by, false),
        AccessAction::List { workspace } => {
            let ws = load(&workspace)?;
            emit(veil_engine::tools::access::render_requests(&ws))
        }
    }
}

fn decide(target: Target, id: &str, by: &str, approved: bool) -> Result<(), Failure> {
    let ws = load(&target.workspace)?;
    let (recorded, request) = decide_access(&ws, id, by, approved)?;
    audit(&target, &ws, &recorded)?;
    let by = &recorded
        .events
        .first()
        .map(|e| e.actor.clone())
        .unwrap_or_default();
    emit_line(if approved {
        format!(
            "approved {} by {by}: {} is subscribed to {} from the next statement",
            request.id, request.user, request.table
        )
    } else {
        format!(
            "denied {} by {by}: {} stays unsubscribed from {}",
            request.id, request.user, request.table
        )
    })
}
