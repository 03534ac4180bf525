//! `veil lint` checks on the catalog journal (SPEC §7.1): a tag-keyed
//! policy whose tag reaches a column only through a removed or
//! soft-deleted tag (the column is not protected, which is easy to miss),
//! and lineage edges or journal tags on tables that no longer exist (kept,
//! as rule 7 says, but worth a look).

use std::collections::BTreeSet;

use super::lint::{Finding, Severity};
use crate::model::{Target, Workspace, tag_is_under};

/// Appends the journal's findings to `out`.
pub(crate) fn journal_findings(ws: &Workspace, out: &mut Vec<Finding>) {
    removed_tags_under_policies(ws, out);
    lineage_to_missing_tables(ws, out);
}

fn removed_tags_under_policies(ws: &Workspace, out: &mut Vec<Finding>) {
    for p in &ws.policies {
        let Target::Tags(tags) = &p.target else {
            continue;
        };
        for t in &ws.tables {
            for c in &t.columns {
                let active = c
                    .tags
                    .iter()
                    .any(|x| tags.iter().any(|p| tag_is_under(&x.name, p)));
                if active {
                    continue;
                }
                for removed in c
                    .removed_tags
                    .iter()
                    .filter(|x| tags.iter().any(|p| tag_is_under(&x.name, p)))
                {
                    out.push(Finding {
                        code: "tag-policy-reaches-only-removed-tags",
                        severity: Severity::Warning,
                        location: format!("{}.{}", t.name, c.name),
                        message: format!(
                            "policy '{}' targets tag {}, which this column carries only {} ({}{}), so the policy does not apply to it",
                            p.name,
                            removed.name,
                            removed.state,
                            removed.source,
                            removed
                                .origin
                                .as_ref()
                                .map(|o| format!(" from {o}"))
                                .unwrap_or_default()
                        ),
                    });
                }
            }
        }
    }
}

fn lineage_to_missing_tables(ws: &Workspace, out: &mut Vec<Finding>) {
    let missing: BTreeSet<String> = ws
        .journal
        .graph
        .tables()
        .filter(|t| ws.table(t).is_none())
        .map(ToString::to_string)
        .collect();
    for table in missing {
        out.push(Finding {
            code: "lineage-to-missing-table",
            severity: Severity::Warning,
            location: table.clone(),
            message: format!(
                "the catalog journal has lineage edges to or from table {table}, which is no longer declared; tags still propagate through its edges (declare it again, or ignore this if it was dropped on purpose)"
            ),
        });
    }
    let unapplied: BTreeSet<String> = ws
        .journal
        .unapplied
        .iter()
        .map(ToString::to_string)
        .collect();
    for column in unapplied {
        out.push(Finding {
            code: "lineage-to-missing-table",
            severity: Severity::Warning,
            location: column.clone(),
            message: format!(
                "the catalog journal tags column {column}, which is not declared; those events apply to nothing"
            ),
        });
    }
}
