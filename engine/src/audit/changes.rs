//! What a policy or entitlement change changed: the targets of its
//! change record.

use crate::model::Workspace;

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
