//! Snowflake's `EXEMPT_OTHER_POLICIES` rule, checked whenever a masking
//! policy is set on a table's column or a row access policy is added to
//! it. Snowflake documents the flag as saying "whether a row access policy
//! or conditional masking policy can reference a column that is already
//! protected by this masking policy", so:
//!
//! - a conditional masking policy's `USING` columns (after the masked
//!   column itself) and a row access policy's `ON` columns may name a
//!   column protected by another masking policy only when that policy was
//!   created with `EXEMPT_OTHER_POLICIES = TRUE`; the referencing policy
//!   then reads the column's raw value (Veil binds policy arguments to raw
//!   columns);
//!
//! Either order of the `ALTER` statements is refused: the second one fails,
//! naming the policies, the table and the column; the caller adds the
//! script's file and line, and the workspace does not load.

use crate::model::*;

use super::super::parse::R;

/// Checks table `name` after a change to its policies (see the module docs).
pub(super) fn check_table(ws: &Workspace, name: &TableName) -> R<()> {
    let Some(table) = ws.table(name) else {
        return Ok(());
    };
    let exempt = |policy: &str| {
        ws.snowflake
            .masking_policy(policy)
            .is_some_and(|d| d.exempt_other_policies)
    };
    // Who references which column: conditional masking policies, then the
    // row access policy.
    let mut references: Vec<(String, &str)> = Vec::new();
    for c in &table.columns {
        if let Some(p) = &c.masking_policy {
            for u in p.using.iter().skip(1).filter(|u| **u != c.name) {
                references.push((
                    format!(
                        "conditional masking policy {} on column {}",
                        p.policy, c.name
                    ),
                    u,
                ));
            }
        }
    }
    if let Some(rap) = &table.row_access_policy {
        for u in &rap.columns {
            references.push((format!("row access policy {}", rap.policy), u));
        }
    }
    for (by, column) in references {
        let Some(protecting) = table.column(column).and_then(|c| c.masking_policy.as_ref()) else {
            continue;
        };
        if !exempt(&protecting.policy) {
            return Err(format!(
                "{by} of table {} references column {column}, which masking policy {} protects without EXEMPT_OTHER_POLICIES = TRUE; create {} with EXEMPT_OTHER_POLICIES = TRUE to let other policies read the column's raw value.",
                table.name, protecting.policy, protecting.policy
            ));
        }
    }
    Ok(())
}
