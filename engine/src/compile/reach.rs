//! Whether a policy reaches a table or one of its columns, and why — the
//! one place the three targets (data sources, tags, named columns) are
//! matched. Masks ask per column (the most specific reach wins: a named
//! column, then the deepest tag, then the data source); row rules ask per
//! table.

use crate::model::{Column, Policy, Table, Target, tag_depth, tag_is_under};

/// How specific a mask's reach of a column is: higher wins. Named column
/// (3, 0), tag (2, depth of the policy's tag), data source (1, 0).
pub(super) type Specificity = (u8, usize);

/// How `policy` reaches `column` of `table`: its specificity and the reason
/// `explain` prints; `None` when it does not.
pub(super) fn column(
    policy: &Policy,
    table: &Table,
    column: &Column,
) -> Option<(Specificity, String)> {
    match &policy.target {
        Target::Columns(cs) => cs
            .iter()
            .any(|(t, c)| *t == table.name && *c == column.name)
            .then(|| {
                (
                    (3, 0),
                    format!(
                        "column {}.{} is named by the policy",
                        table.name, column.name
                    ),
                )
            }),
        Target::Tags(tags) => matching_tag(column, tags).map(|(target, tag)| {
            (
                (2, tag_depth(&target)),
                format!(
                    "column {} is tagged {tag} (policy tag {target})",
                    column.name
                ),
            )
        }),
        Target::DataSources(ts) => ts.contains(&table.name).then(|| {
            (
                (1, 0),
                format!("the policy covers data source {}", table.name),
            )
        }),
    }
}

/// How `policy` reaches `table`, and the tagged column if through a tag.
pub(super) fn table<'a>(policy: &Policy, table: &'a Table) -> Option<(String, Option<&'a Column>)> {
    match &policy.target {
        Target::DataSources(ts) => ts
            .contains(&table.name)
            .then(|| (format!("data source {}", table.name), None)),
        Target::Tags(tags) => table.columns.iter().find_map(|c| {
            matching_tag(c, tags).map(|(target, tag)| {
                (
                    format!("tag {tag} (policy tag {target}) on column {}", c.name),
                    Some(c),
                )
            })
        }),
        Target::Columns(cs) => cs
            .iter()
            .any(|(t, _)| *t == table.name)
            .then(|| (format!("columns of {}", table.name), None)),
    }
}

/// The deepest tag among `targets` that `column` carries (or descends
/// from), with the column's tag.
fn matching_tag(column: &Column, targets: &[String]) -> Option<(String, String)> {
    let mut best: Option<(String, String)> = None;
    for target in targets {
        for tag in &column.tags {
            if tag_is_under(&tag.name, target) {
                let deeper = best
                    .as_ref()
                    .is_none_or(|(t, _)| tag_depth(target) > tag_depth(t));
                if deeper {
                    best = Some((target.clone(), tag.name.clone()));
                }
            }
        }
    }
    best
}
