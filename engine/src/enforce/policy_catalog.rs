//! The policy catalog tables administrators read in a version's internal
//! catalog: `VEIL.SYSTEM.MASKING_POLICIES`, `ROW_ACCESS_POLICIES` (what
//! `SHOW MASKING POLICIES` / `SHOW ROW ACCESS POLICIES` answer) and
//! `POLICY_REFERENCES` (every column and table a policy of either layer
//! protects, why, and whether it is in force).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::compile::CompiledWorkspace;
use crate::error::Result;
use crate::model::{MaskSpec, Workspace, short_object_name, split_object_name};
use crate::sql::admin::{MASKING_POLICIES, POLICY_REFERENCES, ROW_ACCESS_POLICIES};

fn batch(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| Arc::new(rows.iter().map(|r| r[i].clone()).collect::<StringArray>()) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// The database and schema parts of a qualified policy name.
fn schema_of(qualified: &str) -> [Option<String>; 2] {
    let parts = split_object_name(qualified);
    let at = |i: usize| {
        parts
            .len()
            .checked_sub(3 - i)
            .and_then(|j| parts.get(j).cloned())
    };
    [at(0), at(1)]
}

fn signature(params: &[crate::model::SqlParam]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|p| format!("{} {}", p.name, p.declared))
        .collect();
    format!("({})", parts.join(", "))
}

/// The administrators' catalog tables of one version.
pub(super) fn catalog_tables(
    ws: &Workspace,
    compiled: &CompiledWorkspace,
) -> Result<Vec<(&'static str, RecordBatch)>> {
    let s = |x: &str| Some(x.to_string());
    let masking = batch(
        &[
            "NAME",
            "SIGNATURE",
            "RETURN_TYPE",
            "BODY",
            "EXEMPT_OTHER_POLICIES",
            "CREATED_IN",
            "DATABASE_NAME",
            "SCHEMA_NAME",
        ],
        ws.snowflake
            .masking_policies
            .iter()
            .map(|p| {
                let mut row = vec![
                    s(&short_object_name(&p.name)),
                    Some(signature(&p.params)),
                    Some(p.returns.to_string()),
                    Some(p.body.to_string()),
                    Some(p.exempt_other_policies.to_string()),
                    Some(p.origin.to_string()),
                ];
                row.extend(schema_of(&p.name));
                row
            })
            .collect(),
    )?;
    let row_access = batch(
        &[
            "NAME",
            "SIGNATURE",
            "RETURN_TYPE",
            "BODY",
            "CREATED_IN",
            "DATABASE_NAME",
            "SCHEMA_NAME",
        ],
        ws.snowflake
            .row_access_policies
            .iter()
            .map(|p| {
                let mut row = vec![
                    s(&short_object_name(&p.name)),
                    Some(signature(&p.params)),
                    s("BOOLEAN"),
                    Some(p.body.to_string()),
                    Some(p.origin.to_string()),
                ];
                row.extend(schema_of(&p.name));
                row
            })
            .collect(),
    )?;
    let mut refs = Vec::new();
    for t in compiled.tables.values() {
        let status = t
            .failures
            .first()
            .map_or_else(|| "ACTIVE".to_string(), |f| format!("DENIED: {f}"));
        let mut row = |policy: &str, kind: &str, column: Option<&str>, reason: &str| {
            refs.push(vec![
                s(policy),
                s(kind),
                s(&t.name.database),
                s(&t.name.schema),
                s(&t.name.table),
                column.map(str::to_string),
                s(reason),
                Some(status.clone()),
            ]);
        };
        for c in &t.columns {
            if let Some(m) = &c.mask {
                let kind = match m.mask.spec {
                    MaskSpec::Sql { .. } => "MASKING_POLICY",
                    _ => "VEIL_MASKING_RULE",
                };
                row(&m.policy, kind, Some(&c.name), &m.reason);
            }
        }
        for r in &t.row_rules {
            let (kind, name) = match r.predicate {
                crate::compile::RowPredicate::Sql(_) => {
                    ("ROW_ACCESS_POLICY", short_object_name(&r.policy))
                }
                _ => ("VEIL_ROW_RULE", r.policy.clone()),
            };
            row(&name, kind, None, &r.reason);
        }
    }
    for v in &ws.snowflake.views {
        for (column, policy) in &v.column_policies {
            refs.push(vec![
                s(&short_object_name(&policy.policy)),
                s("MASKING_POLICY"),
                s(&v.name.database),
                s(&v.name.schema),
                s(&v.name.table),
                s(column),
                Some(format!(
                    "masking policy {} is set on view column {column} ({})",
                    policy.policy, policy.origin
                )),
                s("ACTIVE"),
            ]);
        }
    }
    let references = batch(
        &[
            "POLICY_NAME",
            "POLICY_KIND",
            "REF_DATABASE_NAME",
            "REF_SCHEMA_NAME",
            "REF_ENTITY_NAME",
            "REF_COLUMN_NAME",
            "REASON",
            "POLICY_STATUS",
        ],
        refs,
    )?;
    Ok(vec![
        (MASKING_POLICIES, masking),
        (ROW_ACCESS_POLICIES, row_access),
        (POLICY_REFERENCES, references),
    ])
}
