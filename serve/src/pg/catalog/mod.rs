//! `pg_catalog` and `information_schema` for PostgreSQL clients (psql's
//! `\dt`, `\d TABLE`, `\dn`; DBeaver's and Metabase's discovery queries),
//! listing only what the login may see: the tables its session is granted,
//! with their declared column types (masked columns keep their declared
//! type).
//!
//! Catalog queries run in a small DataFusion context of their own, per
//! connection, that holds these catalog tables and nothing else: no user
//! table is registered there, so a catalog query cannot read user data and
//! no path around Veil's statement gate opens. A query that names a user
//! table and a catalog table together fails as not authorized.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{Statement, VisitMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use veil_engine::model::{SnowflakeType, TableName};
use veil_engine::{Engine, Session};

use super::auth::SERVER_VERSION;

/// The schema every catalog table lives in.
pub(super) const PG_CATALOG: &str = "pg_catalog";
/// The SQL-standard catalog schema.
const INFORMATION_SCHEMA: &str = "information_schema";
/// `pg_catalog`'s namespace oid (PostgreSQL's).
const PG_CATALOG_OID: i64 = 11;
/// `information_schema`'s namespace oid.
const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// The owner every object is listed with.
const OWNER_OID: i64 = 10;
/// The owner's name.
const OWNER: &str = "veil";
/// The first oid given to a listed schema; tables follow.
const FIRST_OID: i64 = 16_384;

/// A connection's catalog context, rebuilt when its session's policy
/// version changes.
#[derive(Default)]
pub(crate) struct CatalogCache {
    inner: Mutex<Option<(u64, SessionContext)>>,
}

impl CatalogCache {
    /// The catalog context for `session`'s current view.
    pub(crate) fn context(&self, engine: &Engine, session: &Session) -> DfResult<SessionContext> {
        // `check` refreshes the session's binding to the current version.
        let _ = session.check("SELECT 1");
        let version = session.version();
        let mut slot = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, ctx)) = slot.as_ref()
            && *v == version
        {
            return Ok(ctx.clone());
        }
        let ctx = build(engine, session)?;
        *slot = Some((version, ctx.clone()));
        Ok(ctx)
    }
}

/// How a Veil name shows in PostgreSQL's catalog: Snowflake stores unquoted
/// names upper-case, PostgreSQL lower-case, so an all-upper-case name shows
/// lower-case (and `\d customers` finds `CUSTOMERS`); any other stays exact.
pub(crate) fn pg_name(name: &str) -> String {
    if name.chars().any(|c| c.is_lowercase()) {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

mod builder;
mod empty;
mod functions;
mod information_schema;
mod pg_tables;
mod types;

use DataType::{Boolean as BOOL, Int16 as I2, Int32 as I4, Int64 as I8, Utf8 as TEXT};
use builder::*;
pub(crate) use empty::EMPTY_CATALOGS;
use functions::register_functions;
use types::*;

/// One listed table.
pub(super) struct Listed {
    oid: i64,
    schema_oid: i64,
    schema: String,
    name: String,
    columns: Vec<(String, SnowflakeType)>,
}

/// The tables `session` is granted, with oids, in name order.
fn listed(engine: &Engine, session: &Session) -> (Vec<Listed>, BTreeMap<String, i64>) {
    let version = engine.current();
    let engine_ws = Some(version.workspace());
    let granted: Vec<TableName> = session.granted_tables().into_iter().collect();
    let mut schemas: BTreeMap<String, i64> = BTreeMap::new();
    for t in &granted {
        let next = FIRST_OID + schemas.len() as i64;
        schemas.entry(pg_name(&t.schema)).or_insert(next);
    }
    let first_table = FIRST_OID + 1000;
    let tables = granted
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let schema = pg_name(&t.schema);
            let columns = engine_ws
                .as_ref()
                .and_then(|ws| ws.table(t))
                .map(|table| {
                    table
                        .columns
                        .iter()
                        .map(|c| (pg_name(&c.name), c.declared))
                        .collect()
                })
                .unwrap_or_default();
            Listed {
                oid: first_table + i as i64,
                schema_oid: schemas.get(&schema).copied().unwrap_or(FIRST_OID),
                schema,
                name: pg_name(&t.table),
                columns,
            }
        })
        .collect();
    (tables, schemas)
}

fn build(engine: &Engine, session: &Session) -> DfResult<SessionContext> {
    let database = pg_name(&engine.current().workspace().settings.default_database);
    let login = session.user().to_string();
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(&database, PG_CATALOG)
        .with_information_schema(false)
        .set_str("datafusion.sql_parser.dialect", "postgres");
    let ctx = SessionContext::new_with_config(config);
    let (tables, schemas) = listed(engine, session);
    let catalog = ctx
        .catalog(&database)
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no catalog".into()))?;
    let pg = catalog
        .schema(PG_CATALOG)
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no pg_catalog".into()))?;
    let info: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
    catalog.register_schema(INFORMATION_SCHEMA, Arc::clone(&info))?;
    let login_pg = pg_name(&login);
    pg_tables::register(&pg, &tables, &schemas, &database, &login_pg)?;
    information_schema::register(&info, &tables, &schemas, &database)?;

    register_functions(
        &ctx,
        &database,
        &login_pg,
        tables.first().map(|l| l.schema.clone()),
    );
    Ok(ctx)
}

/// Whether a statement is a catalog query: it names `pg_catalog` or
/// `information_schema`, a `pg_*` relation, or calls a PostgreSQL catalog
/// function. Such statements never reach user tables (see the module doc).
pub(crate) fn is_catalog_query(sql: &str) -> bool {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return false;
    };
    let words: Vec<(String, bool)> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) => (w.value.to_lowercase(), w.quote_style.is_none()),
            Token::LParen => ("(".into(), false),
            Token::Period => (".".into(), false),
            other => (other.to_string(), false),
        })
        .collect();
    const FUNCTIONS: &[&str] = &[
        "version",
        "current_schema",
        "current_schemas",
        "current_database",
        "current_catalog",
        "current_schemas",
        "format_type",
        "obj_description",
        "col_description",
        "shobj_description",
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "current_setting",
        "quote_ident",
        "session_user",
    ];
    words.iter().enumerate().any(|(i, (w, _))| {
        let next = words.get(i + 1).map(|n| n.0.as_str());
        w == PG_CATALOG
            || w == INFORMATION_SCHEMA
            || (w.starts_with("pg_") && next != Some("."))
            || (FUNCTIONS.contains(&w.as_str())
                && (next == Some("(") || w == "session_user" || w == "current_catalog"))
    })
}

/// Runs a catalog query in the connection's catalog context.
pub(crate) async fn run(ctx: &SessionContext, sql: &str) -> DfResult<SendableRecordBatchStream> {
    let dialect = PostgreSqlDialect {};
    let mut statements = Parser::parse_sql(&dialect, sql)?;
    let mut statement: Statement = match statements.len() {
        1 => statements.remove(0),
        _ => {
            return Err(datafusion::error::DataFusionError::Plan(
                "one statement at a time.".into(),
            ));
        }
    };
    super::subquery::over_empty_catalog(&mut statement);
    let _ = VisitMut::visit(&mut statement, &mut super::rewrite::PgSyntax);
    let state = ctx.state();
    let plan = state
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
            statement,
        )))
        .await?;
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)?;
    let df = ctx.execute_logical_plan(plan).await?;
    df.execute_stream().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_queries_are_recognized() {
        assert!(is_catalog_query(
            "SELECT n.nspname FROM pg_catalog.pg_namespace n"
        ));
        assert!(is_catalog_query("select * from information_schema.tables"));
        assert!(is_catalog_query("SELECT version()"));
        assert!(is_catalog_query("select relname from pg_class"));
        assert!(!is_catalog_query("SELECT name, ssn FROM customers"));
        assert!(!is_catalog_query("SELECT current_user"));
    }

    #[test]
    fn names_follow_case_rules() {
        assert_eq!(pg_name("CUSTOMERS"), "customers");
        assert_eq!(pg_name("MixedCase"), "MixedCase");
    }

    #[test]
    fn format_type_prints_modifiers() {
        assert_eq!(
            format_type(1043, 10).as_deref(),
            Some("character varying(6)")
        );
        assert_eq!(
            format_type(1700, ((10 << 16) | 2) + 4).as_deref(),
            Some("numeric(10,2)")
        );
    }
}
