//! Statements over the Snowflake protocol: bindings spliced in as SQL
//! literals (the tokenizer finds the placeholders, so text inside strings
//! and comments is never touched), the session statements Snowflake
//! clients send (`USE ...`, `ALTER SESSION SET`, `SHOW ...`, `DESCRIBE`)
//! answered from the login's own view of the workspace, and everything else
//! run by the login's [`veil_engine::Session`] — which refuses what users
//! may not run (SPEC rule 10) and applies the policies.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, SecondaryRoles, SelectItem, SetExpr,
    ShowStatementFilter, ShowStatementFilterPosition, ShowStatementInParentType,
    ShowStatementOptions, Statement, TableFactor, Use, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde_json::Value as Json;
use veil_engine::SendableRecordBatchStream;
use veil_engine::ident::normalize_ident;
use veil_engine::model::{SnowflakeType, TableName};

use super::error::SfError;
use super::session::SfSession;

/// The version `CURRENT_VERSION()` reports.
pub const VERSION: &str = concat!("veil-", env!("CARGO_PKG_VERSION"));

/// What a statement produced.
pub enum Output {
    /// Rows streamed from Veil's session.
    Stream {
        /// The rows.
        stream: SendableRecordBatchStream,
        /// Declared types of the columns, where a column shows a table
        /// column.
        declared: Vec<Option<SnowflakeType>>,
    },
    /// Rows built here (session statements, SHOW).
    Batches {
        /// Their schema.
        schema: Arc<Schema>,
        /// The rows.
        batches: Vec<RecordBatch>,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream { .. } => f.write_str("Output::Stream"),
            Self::Batches { batches, .. } => write!(f, "Output::Batches({})", batches.len()),
        }
    }
}

/// Runs one statement of `sf`'s login.
pub async fn run(sf: &SfSession, sql: &str, bindings: Option<&Json>) -> Result<Output, SfError> {
    let sql = match bindings {
        Some(b) => bind(sql, b)?,
        None => sql.to_string(),
    };
    let statements = match veil_engine::ident::parse_statements(&sql) {
        Ok(s) => s,
        // The session reports the syntax error in its own words.
        Err(_) => return run_in_engine(sf, &sql, None).await,
    };
    if statements.len() > 1 {
        // The session refuses it in its own words (one statement at a time).
        return run_in_engine(sf, &sql, None).await;
    }
    let Some(statement) = statements.into_iter().next() else {
        return Err(SfError::syntax(
            "SQL compilation error: Empty SQL statement.",
        ));
    };
    match statement {
        Statement::Use(u) => use_statement(sf, u),
        Statement::AlterSession {
            set,
            session_params,
        } => {
            for option in &session_params.options {
                let name = option.option_name.to_ascii_uppercase();
                if set && name == "PYTHON_CONNECTOR_QUERY_RESULT_FORMAT" {
                    let value = match &option.option_value {
                        datafusion::sql::sqlparser::ast::helpers::key_value_options::KeyValueOptionKind::Single(v) => match &v.value {
                            Value::SingleQuotedString(s) => s.to_ascii_uppercase(),
                            other => other.to_string().to_ascii_uppercase(),
                        },
                        _ => String::new(),
                    };
                    sf.update(|c| c.json_results = value == "JSON");
                } else if !set && name == "PYTHON_CONNECTOR_QUERY_RESULT_FORMAT" {
                    sf.update(|c| c.json_results = false);
                }
            }
            Ok(status("Statement executed successfully."))
        }
        Statement::ShowTables { show_options, .. } => show_objects(sf, &show_options, false),
        Statement::ShowViews { show_options, .. } => show_views(sf, &show_options),
        Statement::ShowObjects(o) => show_objects(sf, &o.show_options, true),
        Statement::ShowSchemas { show_options, .. } => show_schemas(sf, &show_options),
        Statement::ShowDatabases { show_options, .. } => show_databases(sf, &show_options),
        Statement::ShowColumns { show_options, .. } => show_columns(sf, &show_options).await,
        Statement::ExplainTable { table_name, .. } => describe(sf, &table_name).await,
        mut other => {
            let (ctx, _) = sf.current();
            let version = sf.engine().current();
            let settings = &version.workspace().settings;
            let qualify =
                ctx.database != settings.default_database || ctx.schema != settings.default_schema;
            let mut context = ContextFunctions {
                database: ctx.database.clone(),
                schema: ctx.schema.clone(),
                warehouse: ctx.warehouse.clone(),
                changed: false,
            };
            let _ = other.visit(&mut context);
            if qualify {
                let mut q = Qualify::new(&other, &ctx.database, &ctx.schema);
                let _ = other.visit(&mut q);
                context.changed |= q.changed;
            }
            if context.changed {
                run_in_engine(sf, &other.to_string(), Some(&ctx)).await
            } else {
                run_in_engine(sf, &sql, Some(&ctx)).await
            }
        }
    }
}

/// Hands a statement to the login's Veil session.
async fn run_in_engine(
    sf: &SfSession,
    sql: &str,
    _ctx: Option<&super::session::SessionContext>,
) -> Result<Output, SfError> {
    let (_, session) = sf.current();
    let stream = session.sql_stream(sql).await.map_err(SfError::from)?;
    let declared = declared_types(sf, &session, sql, &stream.schema());
    Ok(Output::Stream { stream, declared })
}

/// The declared type of each result column that shows a column of a table
/// the statement reads under the same name (one declared type among them),
/// for VARCHAR lengths and NUMBER precision in the metadata.
fn declared_types(
    sf: &SfSession,
    session: &veil_engine::Session,
    sql: &str,
    schema: &Schema,
) -> Vec<Option<SnowflakeType>> {
    let Ok(checked) = session.check(sql) else {
        return vec![None; schema.fields().len()];
    };
    let version = sf.engine().current();
    let ws = version.workspace();
    schema
        .fields()
        .iter()
        .map(|f| {
            let found: BTreeSet<String> = checked
                .tables
                .iter()
                .filter_map(|t| ws.table(t))
                .flat_map(|t| t.columns.iter())
                .filter(|c| c.name == *f.name())
                .map(|c| c.declared.to_string())
                .collect();
            if found.len() != 1 {
                return None;
            }
            checked
                .tables
                .iter()
                .filter_map(|t| ws.table(t))
                .flat_map(|t| t.columns.iter())
                .find(|c| c.name == *f.name())
                .map(|c| c.declared)
        })
        .collect()
}

/// A one-row `status` result, as Snowflake answers session statements.
fn status(message: &str) -> Output {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(vec![message])) as ArrayRef],
    );
    Output::Batches {
        batches: batch.into_iter().collect(),
        schema,
    }
}

fn object_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident_text(i),
            other => normalize_ident(&other.to_string()),
        })
        .collect()
}

fn ident_text(i: &Ident) -> String {
    // parse_statements has upper-cased unquoted words already.
    i.value.clone()
}

fn use_statement(sf: &SfSession, u: Use) -> Result<Output, SfError> {
    let (ctx, session) = sf.current();
    let granted = session.granted_tables();
    match u {
        Use::Role(name) => {
            let role = object_parts(&name).join(".");
            sf.use_role(&role)?;
            Ok(status("Statement executed successfully."))
        }
        Use::SecondaryRoles(which) => {
            let roles = match which {
                SecondaryRoles::All => {
                    let version = sf.engine().current();
                    let user = version.workspace().user(&sf.user).map(|u| u.roles.clone());
                    Some(user.unwrap_or_default())
                }
                SecondaryRoles::None => Some(Vec::new()),
                SecondaryRoles::List(list) => Some(list.iter().map(ident_text).collect()),
            };
            sf.use_secondary_roles(roles)?;
            Ok(status("Statement executed successfully."))
        }
        Use::Database(name) | Use::Catalog(name) => {
            let parts = object_parts(&name);
            let [db] = parts.as_slice() else {
                return Err(does_not_exist("Database", &name.to_string()));
            };
            if !granted.iter().any(|t| t.database == *db) {
                return Err(does_not_exist("Database", db));
            }
            let db = db.clone();
            // Snowflake's USE DATABASE selects its PUBLIC schema.
            sf.update(|c| {
                c.database = db;
                c.schema = "PUBLIC".to_string();
            });
            Ok(status("Statement executed successfully."))
        }
        Use::Schema(name) | Use::Object(name) => {
            let parts = object_parts(&name);
            let (db, schema) = match parts.as_slice() {
                [s] => (ctx.database.clone(), s.clone()),
                [d, s] => (d.clone(), s.clone()),
                _ => return Err(does_not_exist("Schema", &name.to_string())),
            };
            if !granted
                .iter()
                .any(|t| t.database == db && t.schema == schema)
            {
                return Err(does_not_exist("Schema", &format!("{db}.{schema}")));
            }
            sf.update(|c| {
                c.database = db;
                c.schema = schema;
            });
            Ok(status("Statement executed successfully."))
        }
        Use::Warehouse(name) => {
            let w = object_parts(&name).join(".");
            sf.update(|c| c.warehouse = Some(w));
            Ok(status("Statement executed successfully."))
        }
        Use::Default => Ok(status("Statement executed successfully.")),
    }
}

fn does_not_exist(kind: &str, name: &str) -> SfError {
    SfError::not_authorized(format!(
        "SQL compilation error: {kind} '{name}' does not exist or not authorized."
    ))
}

mod bind;
mod rewrite;
mod show;

pub use bind::{bind, quote};
use rewrite::*;
use show::*;

#[cfg(test)]
mod tests {
    use super::bind::is_number;
    use super::*;
    use serde_json::json;

    #[test]
    fn qmark_bindings_become_literals_in_order() {
        let sql = bind(
            "select * from t where a = ? and b = ? and c = '?'",
            &json!({"1": {"type": "FIXED", "value": "-5"}, "2": {"type": "TEXT", "value": "it's \\ ok"}}),
        )
        .unwrap();
        assert_eq!(
            sql,
            "select * from t where a = (-5) and b = 'it''s \\\\ ok' and c = '?'"
        );
    }

    #[test]
    fn numeric_and_named_bindings() {
        let sql = bind(
            "select :2, :1, :name, x::int, v:path",
            &json!({"1": {"type": "TEXT", "value": "a"}, "2": {"type": "BOOLEAN", "value": "true"}, "name": {"type": "FIXED", "value": "7"}}),
        )
        .unwrap();
        assert_eq!(sql, "select TRUE, 'a', 7, x::int, v:path");
    }

    #[test]
    fn bindings_refuse_what_is_not_their_type() {
        let e = bind(
            "select ?",
            &json!({"1": {"type": "FIXED", "value": "1; drop"}}),
        )
        .unwrap_err();
        assert_eq!(e.code, "002049");
        let e = bind("select ?", &json!({})).map(|_| ());
        assert!(e.is_ok(), "no bindings: the text is unchanged");
        let e = bind(
            "select ?, ?",
            &json!({"1": {"type": "FIXED", "value": "1"}}),
        )
        .unwrap_err();
        assert!(e.message.contains("Bind variable 2"));
    }

    #[test]
    fn dates_and_timestamps_bind_from_epoch_units() {
        let sql = bind(
            "select ?, ?",
            &json!({"1": {"type": "DATE", "value": "86400000"}, "2": {"type": "TIMESTAMP_NTZ", "value": "1500000000"}}),
        )
        .unwrap();
        assert_eq!(
            sql,
            "select DATE '1970-01-02', TIMESTAMP '1970-01-01 00:00:01.500000000'"
        );
    }

    #[test]
    fn like_matches_as_show_does() {
        assert!(like("CUST%", "customers"));
        assert!(like("_RDERS", "ORDERS"));
        assert!(!like("CUST", "CUSTOMERS"));
    }

    #[test]
    fn numbers_are_validated() {
        for ok in ["1", "-1.5", "1e10", "2.", ".5", "1E-3"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in ["", "-", "1-1", "1e", "0x10", "1 OR 1=1", "."] {
            assert!(!is_number(bad), "{bad}");
        }
    }
}
