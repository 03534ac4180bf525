//! What workspace administrators can run beyond plain SQL on the raw tables
//! (`veil query --admin`, [`crate::Engine::admin_sql`]):
//!
//! - `EXECUTE USING POLICY_CONTEXT(CURRENT_USER => 'U', CURRENT_ROLE => 'R',
//!   SNOWFLAKE$SESSION_ACTIVATED_ROLES => 'R1,R2') AS <query>`: the query as
//!   that principal would see it, policies applied (Snowflake's policy
//!   simulator). Unknown users and roles are errors.
//! - `SHOW MASKING POLICIES`, `SHOW ROW ACCESS POLICIES`: the Snowflake
//!   policies of the workspace, from `VEIL.SYSTEM.MASKING_POLICIES` and
//!   `VEIL.SYSTEM.ROW_ACCESS_POLICIES`.
//! - `VEIL.SYSTEM.POLICY_REFERENCES` (like Snowflake's `POLICY_REFERENCES`
//!   table function): every column and table a policy of either layer
//!   protects, why, and whether it is in force.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::audit::{AuditRecord, QueryAudit};
use crate::compile::CompiledWorkspace;
use crate::error::{Result, VeilError};
use crate::ident::{normalize_ident, tokens};
use crate::model::{MaskSpec, Workspace, short_object_name, split_object_name};
use crate::session::{Engine, SessionOptions};

/// An administrative statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AdminStatement {
    /// Run `query` as another principal.
    PolicyContext {
        /// Who.
        options: SessionOptions,
        /// The query text.
        query: String,
    },
    /// Read one of the administrators' catalog tables.
    Show(&'static str),
    /// Plain SQL on the raw tables.
    Sql,
}

fn upper_words(sql: &str, n: usize) -> Vec<String> {
    sql.split_whitespace()
        .take(n)
        .map(|w| w.trim_end_matches(';').to_ascii_uppercase())
        .collect()
}

fn policy_context(sql: &str) -> Result<AdminStatement> {
    let bad = |m: String| VeilError::Parse(format!("EXECUTE USING POLICY_CONTEXT: {m}"));
    let mut p = Parser::new(&SnowflakeDialect {}).with_tokens_with_locations(tokens(sql)?);
    for w in ["EXECUTE", "USING", "POLICY_CONTEXT"] {
        match p.next_token().token {
            Token::Word(x) if x.value == w => {}
            other => return Err(bad(format!("expected {w}, found {other}"))),
        }
    }
    p.expect_token(&Token::LParen)
        .map_err(|e| bad(e.to_string()))?;
    let mut options = SessionOptions::default();
    loop {
        let key = p.parse_identifier().map_err(|e| bad(e.to_string()))?;
        p.expect_token(&Token::RArrow)
            .map_err(|e| bad(e.to_string()))?;
        let values: Vec<String> = if p.consume_token(&Token::LParen) {
            let mut v = Vec::new();
            loop {
                v.push(p.parse_literal_string().map_err(|e| bad(e.to_string()))?);
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            p.expect_token(&Token::RParen)
                .map_err(|e| bad(e.to_string()))?;
            v
        } else {
            p.parse_literal_string()
                .map_err(|e| bad(e.to_string()))?
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        match key.value.to_ascii_uppercase().as_str() {
            "CURRENT_USER" => options.user = values.join(","),
            "CURRENT_ROLE" => options.role = Some(values.join(",")),
            "SNOWFLAKE$SESSION_ACTIVATED_ROLES" => options.secondary_roles = Some(values),
            other => {
                return Err(bad(format!(
                    "'{other}' is not CURRENT_USER, CURRENT_ROLE or SNOWFLAKE$SESSION_ACTIVATED_ROLES"
                )));
            }
        }
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    p.expect_token(&Token::RParen)
        .map_err(|e| bad(e.to_string()))?;
    match p.next_token().token {
        Token::Word(x) if x.value == "AS" => {}
        other => return Err(bad(format!("expected AS <query>, found {other}"))),
    }
    let query = p.parse_query().map_err(|e| bad(e.to_string()))?;
    if options.user.is_empty() {
        return Err(bad("CURRENT_USER => '...' is required".into()));
    }
    Ok(AdminStatement::PolicyContext {
        options,
        query: query.to_string(),
    })
}

/// The workspace administrator `user` names (normalized), or an error when
/// `settings.administrators` does not list them.
pub fn administrator(ws: &Workspace, user: &str) -> Result<String> {
    let name = normalize_ident(user);
    if ws.settings.administrators.contains(&name) {
        Ok(name)
    } else {
        Err(VeilError::Session(format!(
            "User '{name}' is not a workspace administrator: only the users listed in settings.administrators of veil.yaml may act with --admin."
        )))
    }
}

/// Runs `sql` as the workspace administrator `user` ([`Engine::admin_sql`]:
/// no policies) once `user` is checked to be one, and appends an audit
/// record for it (role `ADMINISTRATOR`) when the engine has an audit log.
pub async fn run_as_administrator(
    engine: &Engine,
    user: &str,
    sql: &str,
) -> Result<Vec<RecordBatch>> {
    let name = administrator(engine.current().workspace(), user)?;
    let started = Instant::now();
    let result = engine.admin_sql(sql).await;
    if let Some(log) = engine.audit_log() {
        let record = AuditRecord::query(QueryAudit {
            user: &name,
            role: "ADMINISTRATOR",
            purpose: None,
            sql,
            tables: &[],
            policies: Vec::new(),
            result: result.as_ref().map(|b| crate::output::row_count(b)),
            duration: started.elapsed(),
            version: engine.version(),
            simulated_by: None,
        });
        if let Err(e) = log.append(&record) {
            // As for users' queries: the failure is reported, the result stands.
            eprintln!("warning: {e}");
        }
    }
    result
}

/// Recognizes the administrative statements.
pub(crate) fn parse_admin(sql: &str) -> Result<AdminStatement> {
    let words = upper_words(sql, 4);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["EXECUTE", "USING", ..] => policy_context(sql),
        ["SHOW", "MASKING", "POLICIES", ..] => Ok(AdminStatement::Show(MASKING_POLICIES)),
        ["SHOW", "ROW", "ACCESS", "POLICIES"] => Ok(AdminStatement::Show(ROW_ACCESS_POLICIES)),
        _ => Ok(AdminStatement::Sql),
    }
}

/// `VEIL.SYSTEM.MASKING_POLICIES`.
pub const MASKING_POLICIES: &str = "MASKING_POLICIES";
/// `VEIL.SYSTEM.ROW_ACCESS_POLICIES`.
pub const ROW_ACCESS_POLICIES: &str = "ROW_ACCESS_POLICIES";
/// `VEIL.SYSTEM.POLICY_REFERENCES`.
pub const POLICY_REFERENCES: &str = "POLICY_REFERENCES";

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
pub(crate) fn catalog_tables(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_context_parses() {
        let AdminStatement::PolicyContext { options, query } = parse_admin(
            "execute using policy_context(current_user => 'joe', current_role => 'SALES_MANAGER_EU', snowflake$session_activated_roles => 'A, B') as select * from sales",
        )
        .unwrap() else {
            panic!("not a policy context")
        };
        assert_eq!(options.user, "joe");
        assert_eq!(options.role.as_deref(), Some("SALES_MANAGER_EU"));
        assert_eq!(
            options.secondary_roles,
            Some(vec!["A".to_string(), "B".to_string()])
        );
        assert_eq!(query, "SELECT * FROM SALES");
        assert!(
            parse_admin("execute using policy_context(current_role => 'R') as select 1").is_err()
        );
        assert_eq!(
            parse_admin("show masking policies").unwrap(),
            AdminStatement::Show(MASKING_POLICIES)
        );
    }
}
