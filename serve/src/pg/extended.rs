//! The extended query protocol: parse, bind, describe, execute, with
//! parameters and portals. A statement is kept as its SQL text — nothing is
//! decided by a PostgreSQL-dialect parse — and runs through the same route
//! as a simple query (`query::run_statement`), once, with its parameters
//! bound as literals: policies apply exactly once per execution.
//!
//! Parameters are found with the Snowflake tokenizer Veil parses with, so
//! a `$1` inside a string literal or a comment is not a parameter; values
//! are written as typed SQL literals (strings with `'` doubled and `\`
//! escaped, as Snowflake reads them).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::sink::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldInfo, Response,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use rust_decimal::Decimal;

use super::query::{Route, catalog_error, conn, route, run_statement};
use super::settings::Local;
use super::{Conn, encoding, errors};
use crate::server::ServerState;

/// Keeps a statement as its text.
#[derive(Debug, Default)]
pub(crate) struct SqlText;

#[async_trait]
impl QueryParser for SqlText {
    type Statement = String;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<String>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        Ok(Some(sql.to_string()))
    }

    fn get_parameter_types(&self, stmt: &String) -> PgWireResult<Vec<Type>> {
        Ok(vec![Type::TEXT; parameter_count(stmt)])
    }

    fn get_result_schema(
        &self,
        _stmt: &String,
        _column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

/// The `$n` placeholders of `sql`: byte range and parameter number.
fn placeholders(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let Ok(tokens) = Tokenizer::new(&SnowflakeDialect {}, sql).tokenize_with_location() else {
        return Vec::new();
    };
    // Byte offset of each line start (spans count lines and characters).
    let mut line_starts = vec![0usize];
    line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, col: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let rest = sql.get(start..)?;
        let col = usize::try_from(col).ok()?.checked_sub(1)?;
        Some(
            start
                + rest
                    .char_indices()
                    .nth(col)
                    .map(|(i, _)| i)
                    .unwrap_or(rest.len()),
        )
    };
    tokens
        .iter()
        .filter_map(|t| match &t.token {
            Token::Placeholder(p) => {
                let n: usize = p.strip_prefix('$')?.parse().ok()?;
                let start = offset(t.span.start.line, t.span.start.column)?;
                let end = offset(t.span.end.line, t.span.end.column)?;
                (n >= 1 && sql.get(start..end) == Some(p.as_str())).then_some((start..end, n))
            }
            _ => None,
        })
        .collect()
}

/// How many parameters `sql` takes (its highest `$n`).
fn parameter_count(sql: &str) -> usize {
    placeholders(sql)
        .into_iter()
        .map(|(_, n)| n)
        .max()
        .unwrap_or(0)
}

/// `sql` with each `$n` replaced by `values[n - 1]`.
fn bind(sql: &str, values: &[String]) -> PgWireResult<String> {
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (range, n) in placeholders(sql) {
        let value = values.get(n - 1).ok_or_else(|| {
            errors::error(
                "08P01",
                format!(
                    "the statement has ${n} but {} parameters were bound.",
                    values.len()
                ),
            )
        })?;
        out.push_str(&sql[at..range.start]);
        out.push_str(value);
        at = range.end;
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

/// A string as a Snowflake literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Parameter `i` of `portal` as a SQL literal, read as type `t`.
fn literal(portal: &Portal<String>, i: usize, t: &Type) -> PgWireResult<String> {
    let null = || "NULL".to_string();
    Ok(match *t {
        Type::BOOL => portal
            .parameter::<bool>(i, t)?
            .map_or_else(null, |v| if v { "TRUE".into() } else { "FALSE".into() }),
        Type::INT2 => portal
            .parameter::<i16>(i, t)?
            .map_or_else(null, |v| v.to_string()),
        Type::INT4 => portal
            .parameter::<i32>(i, t)?
            .map_or_else(null, |v| v.to_string()),
        Type::INT8 => portal
            .parameter::<i64>(i, t)?
            .map_or_else(null, |v| v.to_string()),
        Type::FLOAT4 | Type::FLOAT8 => {
            let v = if *t == Type::FLOAT4 {
                portal.parameter::<f32>(i, t)?.map(f64::from)
            } else {
                portal.parameter::<f64>(i, t)?
            };
            match v {
                None => null(),
                Some(v) if v.is_finite() => format!("CAST({v:?} AS DOUBLE)"),
                Some(v) => format!("CAST('{v}' AS DOUBLE)"),
            }
        }
        Type::NUMERIC => portal
            .parameter::<Decimal>(i, t)?
            .map_or_else(null, |v| v.to_string()),
        Type::DATE => portal
            .parameter::<NaiveDate>(i, t)?
            .map_or_else(null, |v| format!("DATE '{v}'")),
        Type::TIMESTAMP => portal
            .parameter::<NaiveDateTime>(i, t)?
            .map_or_else(null, |v| format!("TIMESTAMP '{v}'")),
        _ if portal.parameter_format.is_binary(i)
            && !matches!(*t, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) =>
        {
            return Err(errors::error(
                errors::REFUSED,
                format!(
                    "parameter ${} has type {}, which Veil does not bind.",
                    i + 1,
                    t.name()
                ),
            ));
        }
        _ => match portal.parameters.get(i) {
            Some(Some(bytes)) => quote(&String::from_utf8_lossy(bytes)),
            Some(None) => null(),
            None => return Err(PgWireError::ParameterIndexOutOfBound(i)),
        },
    })
}

/// The statement's parameter types: what the client declared, else `text`.
fn parameter_types(stmt: &StoredStatement<String>) -> Vec<Type> {
    let n = parameter_count(&stmt.statement).max(stmt.parameter_types.len());
    (0..n)
        .map(|i| {
            stmt.parameter_types
                .get(i)
                .cloned()
                .flatten()
                .filter(|t| *t != Type::UNKNOWN)
                .unwrap_or(Type::TEXT)
        })
        .collect()
}

/// The SQL a portal runs: its statement with its parameters bound.
fn bound_sql(portal: &Portal<String>) -> PgWireResult<String> {
    let types = parameter_types(&portal.statement);
    let values = (0..portal.parameter_len())
        .map(|i| literal(portal, i, types.get(i).unwrap_or(&Type::TEXT)))
        .collect::<PgWireResult<Vec<_>>>()?;
    bind(&portal.statement.statement, &values)
}

/// The result columns `sql` will have, without running it.
async fn result_schema(
    state: &ServerState,
    conn: &Conn,
    sql: &str,
) -> PgWireResult<Option<Schema>> {
    match route(sql) {
        Route::Local(Local::Show(name, _)) => Ok(Some(Schema::new(vec![
            datafusion::arrow::datatypes::Field::new(name, DataType::Utf8, true),
        ]))),
        Route::Local(_) => Ok(None),
        Route::Catalog => {
            let ctx = conn
                .catalog
                .context(state.engine(), &conn.session)
                .map_err(|e| errors::error(errors::INTERNAL, e.to_string()))?;
            let stream = super::catalog::run(&ctx, sql)
                .await
                .map_err(catalog_error)?;
            Ok(Some(stream.schema().as_ref().clone()))
        }
        Route::Veil => match conn
            .session
            .logical_plan(&super::names::from_postgres(sql))
            .await
        {
            Ok(plan) => Ok(Some(plan.schema().as_arrow().clone())),
            Err(_) => {
                // Run it to get the error the way a query gets it (and its
                // audit record); a statement that does start is dropped.
                let stream = conn
                    .session
                    .sql_stream(&super::names::from_postgres(sql))
                    .await
                    .map_err(|e| errors::from_veil(&e))?;
                Ok(Some(stream.schema().as_ref().clone()))
            }
        },
    }
}

/// `sql` with every parameter bound to NULL (for describing a statement
/// before its parameters are known).
fn with_nulls(sql: &str) -> PgWireResult<String> {
    bind(sql, &vec!["NULL".to_string(); parameter_count(sql)])
}

/// The extended query handler.
pub(crate) struct Extended {
    state: Arc<ServerState>,
    parser: Arc<SqlText>,
}

impl Extended {
    pub(crate) fn new(state: Arc<ServerState>) -> Self {
        Self {
            state,
            parser: Arc::new(SqlText),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = String;
    type QueryParser = SqlText;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        stmt: &StoredStatement<String>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        let sql = with_nulls(&stmt.statement)?;
        let fields = match result_schema(&self.state, &conn, &sql).await? {
            Some(schema) => encoding::fields(&schema, None),
            None => Vec::new(),
        };
        Ok(DescribeStatementResponse::new(
            parameter_types(stmt),
            fields,
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<String>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        let sql = bound_sql(portal)?;
        match result_schema(&self.state, &conn, &sql).await? {
            Some(schema) => Ok(DescribePortalResponse::new(encoding::fields(
                &schema,
                Some(&portal.result_column_format),
            ))),
            None => Ok(DescribePortalResponse::no_data()),
        }
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<String>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        let sql = bound_sql(portal)?;
        let format = match &portal.result_column_format {
            Format::UnifiedText => None,
            f => Some(f),
        };
        run_statement(&self.state, &conn, client.metadata_mut(), &sql, format).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_outside_strings_and_comments_bind() {
        let sql = "SELECT '$1', x FROM t -- $2\nWHERE a = $1 AND b = $2";
        assert_eq!(parameter_count(sql), 2);
        let bound = bind(sql, &["'eu'".into(), "7".into()]).unwrap();
        assert_eq!(
            bound,
            "SELECT '$1', x FROM t -- $2\nWHERE a = 'eu' AND b = 7"
        );
    }

    #[test]
    fn string_values_cannot_end_their_literal() {
        assert_eq!(quote("x\\' OR 1=1 --"), "'x\\\\'' OR 1=1 --'");
        let sql = bind("SELECT * FROM t WHERE a = $1", &[quote("x\\' OR 1=1 --")]).unwrap();
        let tokens = Tokenizer::new(&SnowflakeDialect {}, &sql)
            .tokenize()
            .unwrap();
        let strings: Vec<_> = tokens
            .iter()
            .filter(|t| matches!(t, Token::SingleQuotedString(_)))
            .collect();
        assert_eq!(strings.len(), 1, "{sql}");
        assert!(
            !tokens
                .iter()
                .any(|t| matches!(t, Token::Word(w) if w.value == "OR"))
        );
    }

    #[test]
    fn field_format_is_text_by_default() {
        let schema = Schema::new(vec![datafusion::arrow::datatypes::Field::new(
            "A",
            DataType::Int64,
            true,
        )]);
        assert_eq!(
            encoding::fields(&schema, None)[0].format(),
            pgwire::api::results::FieldFormat::Text
        );
    }
}
