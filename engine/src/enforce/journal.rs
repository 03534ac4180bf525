//! Catalog changes on a running engine: [`Engine::record_catalog`] appends
//! tag and lineage changes to the workspace's catalog journal (see
//! [`crate::load::journal`]), installs the changed catalog as a new policy
//! version (tag-keyed policies see it at the next statement), and writes an
//! audit record per tag change and per propagation.

use crate::audit::AuditRecord;
use crate::error::Result;
use crate::load::journal::Recorded;
use crate::model::{ColumnRef, Recorder, TagSource};
use crate::session::Engine;

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
        let mut outcome: Option<Recorded> = None;
        let mut change = Some(change);
        let version = self
            .change(|ws| {
                let Some(change) = change.take() else {
                    return Ok(());
                };
                let recorded = crate::load::journal::record(ws, actor, change)?;
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
}
