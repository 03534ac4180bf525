//! Catalog changes on a running engine: [`Engine::record_catalog`] appends
//! tag and lineage changes to the workspace's catalog journal (see
//! [`crate::load::journal`]), installs the changed catalog as a new policy
//! version (tag-keyed policies see it at the next statement), and writes an
//! audit record per tag change and per propagation.
//! [`Engine::request_access`], [`Engine::approve_access`] and
//! [`Engine::deny_access`] record access requests the same way: an
//! approval subscribes the user from the next statement.

use crate::audit::AuditRecord;
use crate::enforce::Engine;
use crate::error::Result;
use crate::load::journal::Recorded;
use crate::load::journal::access::{decide_access, request_access};
use crate::load::journal::access_history::{IngestReport, parse_access_history, record_lineage};
use crate::model::{AccessRequest, ColumnRef, Recorder, TagSource};

impl Engine {
    /// Records a change to the catalog as `actor`: `change` runs on a
    /// [`Recorder`] over the current workspace (with whatever other
    /// processes appended to the journal since it loaded); its events are
    /// appended to `state/catalog.jsonl` as one change, and the result is
    /// installed as a new version. If `change` fails, nothing is written
    /// and the current version stays.
    pub async fn record_catalog<F>(&self, actor: &str, change: F) -> Result<Recorded>
    where
        F: FnOnce(&mut Recorder<'_>) -> Result<()>,
    {
        self.install_recorded(|ws| crate::load::journal::record(ws, actor, change))
            .await
    }

    /// Runs `append` (which appends one change to the journal of the
    /// current workspace and returns it folded in) under the change lock,
    /// installs the result as a new version, and audits each event.
    async fn install_recorded<F>(&self, append: F) -> Result<Recorded>
    where
        F: FnOnce(&crate::model::Workspace) -> Result<Recorded>,
    {
        let mut outcome: Option<Recorded> = None;
        let mut append = Some(append);
        let version = self
            .change(|ws| {
                let Some(append) = append.take() else {
                    return Ok(());
                };
                let recorded = append(ws)?;
                *ws = recorded.workspace.clone();
                outcome = Some(recorded);
                Ok(())
            })
            .await?;
        let recorded = outcome.ok_or_else(|| {
            crate::error::VeilError::Internal("a catalog change recorded no outcome".into())
        })?;
        for event in &recorded.events {
            if let Some(record) = AuditRecord::catalog_change(event, version) {
                self.audit(record);
            }
        }
        Ok(recorded)
    }

    /// Files `user`'s request for `table` (under an `allow: approval`
    /// subscription policy) with `reason`; returns the request id. The user
    /// stays unsubscribed until a data owner approves.
    pub async fn request_access(&self, user: &str, table: &str, reason: &str) -> Result<String> {
        let mut id = String::new();
        self.install_recorded(|ws| {
            let (recorded, new_id) = request_access(ws, user, table, reason)?;
            id = new_id;
            Ok(recorded)
        })
        .await?;
        Ok(id)
    }

    /// Approves request `id` as `by` (a data owner of the table): the user
    /// is subscribed from the next statement.
    pub async fn approve_access(&self, id: &str, by: &str) -> Result<AccessRequest> {
        self.decide_access(id, by, true).await
    }

    /// Denies request `id` as `by` (a data owner of the table): the user
    /// stays unsubscribed.
    pub async fn deny_access(&self, id: &str, by: &str) -> Result<AccessRequest> {
        self.decide_access(id, by, false).await
    }

    async fn decide_access(&self, id: &str, by: &str, approved: bool) -> Result<AccessRequest> {
        let mut decided = None;
        self.install_recorded(|ws| {
            let (recorded, request) = decide_access(ws, id, by, approved)?;
            decided = Some(request);
            Ok(recorded)
        })
        .await?;
        decided.ok_or_else(|| {
            crate::error::VeilError::Internal(format!("request {id} was decided without a result"))
        })
    }

    /// Puts `tag` on `column` (source `manual` or `discovered`) and
    /// propagates it through lineage; see [`Engine::record_catalog`].
    pub async fn add_tag(
        &self,
        actor: &str,
        column: &ColumnRef,
        tag: &str,
        source: TagSource,
    ) -> Result<Recorded> {
        self.record_catalog(actor, |r| r.add_tag(column, tag, source))
            .await
    }

    /// Removes `tag` from `column` (soft-deleting a propagated tag, refusing
    /// a Snowflake object tag) and from the descendants no other ancestor
    /// supplies; see [`Engine::record_catalog`].
    pub async fn remove_tag(&self, actor: &str, column: &ColumnRef, tag: &str) -> Result<Recorded> {
        self.record_catalog(actor, |r| r.remove_tag(column, tag))
            .await
    }

    /// Ingests Snowflake `ACCESS_HISTORY` rows (`text`, read from `file`)
    /// as lineage: one journal change for the whole file, or nothing if the
    /// file is malformed. Tags already on the sources propagate only when
    /// `retroactive` (SPEC §7.1 rule 2).
    pub async fn ingest_lineage(
        &self,
        actor: &str,
        text: &str,
        file: &str,
        retroactive: bool,
    ) -> Result<(Recorded, IngestReport)> {
        let (lineage, mut report) = parse_access_history(&self.workspace(), text, file)?;
        let recorded = self
            .record_catalog(actor, |r| {
                record_lineage(r, &lineage, retroactive, &mut report);
                Ok(())
            })
            .await?;
        Ok((recorded, report))
    }
}
