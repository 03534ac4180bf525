//! `veil tags`: every column's tags with source, origin, state and when
//! (SPEC §7.1), and the tag catalogue's export and import between
//! workspaces (SPEC §7.3): JSON with no internal ids, the hierarchy kept,
//! the whole file checked against the target before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Result, VeilError};
use crate::load::journal::{Recorded, parse_column, record};
use crate::model::{ColumnRef, ColumnTag, TableName, TagSource, TagState, Workspace};

/// One tag on one column, as `veil tags` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRow {
    /// `DB.SCHEMA.TABLE.COLUMN`.
    pub column: String,
    /// The tag.
    pub tag: String,
    /// `manual`, `snowflake`, `discovered` or `lineage`.
    pub source: String,
    /// For a propagated tag, the column it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `active`, `soft-deleted` or `removed`.
    pub state: String,
    /// When the catalog journal last changed it; `None`: declared in YAML
    /// or DDL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

fn row(column: &ColumnRef, t: &ColumnTag) -> TagRow {
    TagRow {
        column: column.to_string(),
        tag: t.name.clone(),
        source: t.source.as_str().to_string(),
        origin: t.origin.as_ref().map(ToString::to_string),
        state: t.state.as_str().to_string(),
        since: t.since.clone(),
    }
}

/// Every tag on every column (of `table`, if given), active and removed,
/// in table and column order.
pub fn tag_rows(ws: &Workspace, table: Option<&TableName>) -> Result<Vec<TagRow>> {
    if let Some(name) = table
        && ws.table(name).is_none()
    {
        return Err(VeilError::workspace(
            "veil.yaml",
            format!("table {name} is not declared"),
        ));
    }
    let mut out = Vec::new();
    for t in ws
        .tables
        .iter()
        .filter(|t| table.is_none_or(|n| *n == t.name))
    {
        for c in &t.columns {
            let column = ColumnRef::new(t.name.clone(), c.name.clone());
            out.extend(
                c.tags
                    .iter()
                    .chain(&c.removed_tags)
                    .map(|tag| row(&column, tag)),
            );
        }
    }
    Ok(out)
}

/// `veil tags -f table`: aligned columns, one line per tag.
pub fn render_rows(rows: &[TagRow]) -> String {
    let header = ["COLUMN", "TAG", "SOURCE", "ORIGIN", "STATE", "SINCE"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.column.clone(),
                r.tag.clone(),
                r.source.clone(),
                r.origin.clone().unwrap_or_else(|| "-".into()),
                r.state.clone(),
                r.since.clone().unwrap_or_else(|| "(declared)".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in &cells {
        line(r.iter().map(String::as_str).collect());
    }
    if rows.is_empty() {
        out.push_str("(no tags)\n");
    }
    out
}

/// The tag catalogue as `veil tags export` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagExport {
    /// Format version (1).
    pub veil_tags: u32,
    /// Every tag, parents before children: name and parent (hierarchy).
    pub tags: Vec<TagNode>,
    /// Every column assignment with source and state.
    pub assignments: Vec<TagRow>,
}

/// A tag in the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagNode {
    /// Full name (`PII.Email`).
    pub name: String,
    /// The parent's full name (`PII`); `None` for a root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

fn parent_of(tag: &str) -> Option<String> {
    tag.rsplit_once('.').map(|(p, _)| p.to_string())
}

fn with_ancestors(tag: &str, into: &mut BTreeSet<String>) {
    let mut t = Some(tag.to_string());
    while let Some(name) = t {
        t = parent_of(&name);
        into.insert(name);
    }
}

/// The workspace's tag catalogue: every tag (and each ancestor) with its
/// parent, every assignment with source and state. No internal ids.
pub fn export_tags(ws: &Workspace) -> Result<TagExport> {
    let assignments = tag_rows(ws, None)?;
    let mut names = BTreeSet::new();
    for a in &assignments {
        with_ancestors(&a.tag, &mut names);
    }
    let mut tags: Vec<TagNode> = names
        .into_iter()
        .map(|name| TagNode {
            parent: parent_of(&name),
            name,
        })
        .collect();
    tags.sort_by(|a, b| {
        crate::model::tag_depth(&a.name)
            .cmp(&crate::model::tag_depth(&b.name))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(TagExport {
        veil_tags: 1,
        tags,
        assignments,
    })
}

/// What `veil tags import` found or did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Every problem (nothing was written if there is one).
    pub problems: Vec<String>,
    /// Assignments that will be (or were) added.
    pub added: Vec<String>,
    /// Assignments already in the target, or not moved (removed ones,
    /// propagated ones the target's lineage derives, Snowflake object tags
    /// the target's DDL already sets).
    pub skipped: Vec<String>,
    /// The journal change, when written.
    pub recorded: Option<Recorded>,
}

/// Checks the exported catalogue `text` (from `file`) against `ws` and,
/// unless `dry_run` or a problem was found, records its active manual and
/// discovered assignments in the target's journal as one change.
pub fn import_tags(ws: &Workspace, text: &str, file: &str, dry_run: bool) -> Result<ImportReport> {
    let export: TagExport = serde_json::from_str(text).map_err(|e| {
        VeilError::workspace(
            format!("{file}:{}", e.line()),
            format!("not a Veil tag export ({e}); nothing was imported"),
        )
    })?;
    let mut report = ImportReport::default();
    if export.veil_tags != 1 {
        report
            .problems
            .push(format!("format version {} is not 1", export.veil_tags));
    }
    // The hierarchy: each tag once, its parent its name's prefix and listed.
    let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &export.tags {
        *listed.entry(t.name.as_str()).or_default() += 1;
    }
    for (name, n) in &listed {
        if *n > 1 {
            report
                .problems
                .push(format!("tag {name} is listed {n} times"));
        }
    }
    for t in &export.tags {
        if crate::model::journal::propagate::check_tag_name(&t.name).is_err() {
            report
                .problems
                .push(format!("'{}' is not a tag name", t.name));
            continue;
        }
        let expected = parent_of(&t.name);
        if t.parent != expected {
            report.problems.push(format!(
                "tag {} names parent {} but its name puts it under {}",
                t.name,
                t.parent.as_deref().unwrap_or("(none)"),
                expected.as_deref().unwrap_or("(none: a root)")
            ));
        } else if let Some(p) = &t.parent
            && !listed.contains_key(p.as_str())
        {
            report
                .problems
                .push(format!("tag {}: its parent {p} is not listed", t.name));
        }
    }
    // The same leaf name under another parent in the target: another
    // hierarchy for the same tag.
    let mut target_tags = BTreeSet::new();
    for r in tag_rows(ws, None)? {
        with_ancestors(&r.tag, &mut target_tags);
    }
    for t in &export.tags {
        let leaf = t.name.rsplit('.').next().unwrap_or(&t.name);
        for existing in &target_tags {
            let existing_leaf = existing.rsplit('.').next().unwrap_or(existing);
            if existing_leaf == leaf && existing != &t.name {
                report.problems.push(format!(
                    "tag {} exists in the target with another hierarchy, as {existing}",
                    t.name
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut apply: Vec<(ColumnRef, String, TagSource)> = Vec::new();
    for a in &export.assignments {
        let label = format!("{} on {}", a.tag, a.column);
        if !seen.insert((a.column.clone(), a.tag.clone())) {
            report
                .problems
                .push(format!("assignment {label} is listed twice"));
            continue;
        }
        if !listed.contains_key(a.tag.as_str()) {
            report
                .problems
                .push(format!("assignment {label}: tag {} is not listed", a.tag));
        }
        let column = match parse_column(&a.column) {
            Ok(c) => c,
            Err(m) => {
                report.problems.push(format!("assignment {label}: {m}"));
                continue;
            }
        };
        let Some(table) = ws.table(&column.table) else {
            report.problems.push(format!(
                "assignment {label}: table {} is not declared in the target",
                column.table
            ));
            continue;
        };
        let Some(target) = table.column(&column.column) else {
            report.problems.push(format!(
                "assignment {label}: table {} has no column {}",
                column.table, column.column
            ));
            continue;
        };
        let Some(source) = TagSource::parse(&a.source) else {
            report.problems.push(format!(
                "assignment {label}: source '{}' must be manual, snowflake, discovered or lineage",
                a.source
            ));
            continue;
        };
        let state = match a.state.as_str() {
            "active" => TagState::Active,
            "soft-deleted" => TagState::SoftDeleted,
            "removed" => TagState::Removed,
            other => {
                report.problems.push(format!(
                    "assignment {label}: state '{other}' must be active, soft-deleted or removed"
                ));
                continue;
            }
        };
        let present = target.tags.iter().find(|t| t.name == a.tag);
        match (state, source, present) {
            (TagState::Active, _, Some(_)) => report.skipped.push(format!("{label} (already there)")),
            (TagState::Active, TagSource::Snowflake, None) => report.problems.push(format!(
                "assignment {label}: a Snowflake object tag comes from the target's DDL, which does not set it"
            )),
            (TagState::Active, TagSource::Lineage, None) => report
                .skipped
                .push(format!("{label} (propagated: the target's lineage derives it)")),
            (TagState::Active, _, None) => apply.push((column, a.tag.clone(), source)),
            (_, _, _) => report.skipped.push(format!("{label} ({})", a.state)),
        }
    }
    report.added = apply
        .iter()
        .map(|(c, t, s)| format!("{t} on {c} ({s})"))
        .collect();
    if dry_run || !report.problems.is_empty() || apply.is_empty() {
        return Ok(report);
    }
    let recorded = record(ws, "IMPORT", |r| {
        for (column, tag, source) in &apply {
            r.add_tag(column, tag, *source)?;
        }
        Ok(())
    })?;
    report.recorded = Some(recorded);
    Ok(report)
}
