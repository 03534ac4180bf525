//! `veil lint` coverage (rule `sensitive-column-unprotected`): every column
//! carrying an active `Discovered.*` or `PII` tag (or a descendant) that
//! no masking policy and no row rule reaches for some active, subscribed
//! user who is granted its table, with the users who would read it raw. A
//! rule reaches the users it applies to and those it exempts by name
//! (`except:` is a decision); users outside a `for_everyone_who` without
//! `otherwise` are not reached.
//! Discovery tags columns; this rule says which of them policy has not
//! caught up with.

use std::collections::BTreeMap;

use super::explain::{applicability, decide_column};
use super::lint::{Finding, Severity};
use crate::enforce::Engine;
use crate::model::{Applicability, TagState, UserStatus, tag_is_under};

/// Tags whose columns must be protected for every reader.
pub const SENSITIVE_TAGS: &[&str] = &["Discovered", "PII"];

/// Users named in one finding before `and N more`.
const NAMED_USERS: usize = 10;

/// Adds a finding per sensitive column some reader sees raw.
pub(crate) fn unprotected_sensitive_columns(engine: &Engine, out: &mut Vec<Finding>) {
    let version = engine.current();
    let ws = version.workspace();
    // (table, column) → (tag, users reading it raw)
    let mut raw: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
    let sensitive: Vec<_> = ws
        .tables
        .iter()
        .flat_map(|t| {
            t.columns.iter().filter_map(move |c| {
                c.tags
                    .iter()
                    .find(|tag| {
                        tag.state == TagState::Active
                            && SENSITIVE_TAGS.iter().any(|s| tag_is_under(&tag.name, s))
                    })
                    .map(|tag| (t.name.clone(), c.name.clone(), tag.name.clone()))
            })
        })
        .collect();
    if sensitive.is_empty() {
        return;
    }
    for u in &ws.users {
        if u.status != UserStatus::Active {
            continue;
        }
        let Ok(session) = engine.session(&u.name) else {
            continue;
        };
        let e = session.entitlements();
        let granted = session.granted_tables();
        for (table, column, tag) in &sensitive {
            if !granted.contains(table) {
                continue;
            }
            let Some(compiled) = version.compiled().tables.get(table) else {
                continue;
            };
            if !crate::profile::subscribed(compiled, &e) {
                continue;
            }
            // A rule reaches a user it applies to, and one it deliberately
            // exempts (`except:`); `for_everyone_who` without `otherwise`
            // does not reach the others.
            let exempts = |a: &Applicability| matches!(a, Applicability::EveryoneExcept(_));
            let row_rule = compiled
                .row_rules
                .iter()
                .any(|r| exempts(&r.applies) || applicability(&r.applies, &e).0);
            let masked = compiled
                .columns
                .iter()
                .find(|c| c.name == *column)
                .is_some_and(|c| {
                    c.mask.as_ref().is_some_and(|m| exempts(&m.applies))
                        || decide_column(c, &e).mask.is_some()
                });
            if !row_rule && !masked {
                raw.entry((table.to_string(), column.clone()))
                    .or_insert_with(|| (tag.clone(), Vec::new()))
                    .1
                    .push(u.name.clone());
            }
        }
    }
    for ((table, column), (tag, users)) in raw {
        let mut named = users
            .iter()
            .take(NAMED_USERS)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if users.len() > NAMED_USERS {
            named.push_str(&format!(" and {} more", users.len() - NAMED_USERS));
        }
        out.push(Finding {
            code: "sensitive-column-unprotected",
            severity: Severity::Warning,
            location: format!("{table}.{column}"),
            message: format!(
                "column {column} of {table} is tagged {tag} but no masking policy or row rule reaches it for {} subscribed user(s), who read it raw: {named}",
                users.len()
            ),
        });
    }
}
