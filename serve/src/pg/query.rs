//! The simple query protocol, and the one place a statement is routed: a
//! client setting answered here (`settings`), a catalog query answered from
//! the login's catalog (`catalog`), or — everything else — Veil's own
//! statement path, [`veil_engine::Session::sql_stream`], Snowflake dialect,
//! where every policy applies once. Results stream batch by batch; a
//! cancel request or the statement timeout stops them with `57014`.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::sink::Sink;
use futures::stream::{self, BoxStream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_APPLICATION_NAME, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use tokio::sync::watch;

use super::settings::{self, Local};
use super::{Conn, cancel, catalog, encoding, errors};
use crate::admin::AdminReply;
use crate::metrics::Outcome;
use crate::server::ServerState;
use crate::track::StatementTrack;

/// The simple query handler.
pub(crate) struct Queries {
    state: Arc<ServerState>,
}

impl Queries {
    pub(crate) fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }
}

/// The logged-in connection of `client`.
pub(crate) fn conn<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Conn>> {
    client
        .session_extensions()
        .get::<Conn>()
        .ok_or_else(|| errors::fatal("08P01", "the connection is not logged in."))
}

/// Splits a simple-query string into statements at top-level `;`.
pub(crate) fn split_statements(sql: &str) -> Vec<String> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return vec![sql.to_string()];
    };
    let mut out = Vec::new();
    let mut current = String::new();
    for t in tokens {
        if t == Token::SemiColon {
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        } else {
            current.push_str(&t.to_string());
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Streams `batches` as rows of `fields`, batch by batch, until the stream
/// ends, fails, or a cancel request arrives.
fn rows(
    batches: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    cancel: watch::Receiver<u64>,
) -> BoxStream<'static, PgWireResult<DataRow>> {
    struct State {
        batches: SendableRecordBatchStream,
        fields: Arc<Vec<FieldInfo>>,
        cancel: watch::Receiver<u64>,
        pending: VecDeque<DataRow>,
        done: bool,
    }
    let state = State {
        batches,
        fields,
        cancel,
        pending: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(row) = st.pending.pop_front() {
                return Some((Ok(row), st));
            }
            if st.done {
                return None;
            }
            let next = tokio::select! {
                biased;
                _ = cancel::cancelled(&mut st.cancel) => {
                    st.done = true;
                    return Some((Err(errors::canceled()), st));
                }
                next = st.batches.next() => next,
            };
            match next {
                None => return None,
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(errors::from_stream(e)), st));
                }
                Some(Ok(batch)) => match encoding::encode_batch(&batch, &st.fields) {
                    Ok(encoded) => st.pending.extend(encoded),
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                },
            }
        }
    })
    .boxed()
}

/// A one-column text result.
fn text_result(name: &str, value: String) -> Response {
    let fields = Arc::new(vec![FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]);
    let f = Arc::clone(&fields);
    let row = stream::once(async move {
        let mut enc = pgwire::api::results::DataRowEncoder::new(f);
        enc.encode_field(&Some(value))?;
        Ok(enc.take_row())
    });
    let mut response = QueryResponse::new(fields, row);
    response.set_command_tag("SHOW");
    Response::Query(response)
}

/// Where a statement goes.
pub(crate) enum Route {
    Local(Local),
    Catalog,
    Veil,
}

/// Routes one statement.
pub(crate) fn route(sql: &str) -> Route {
    if let Some(local) = settings::classify(sql) {
        Route::Local(local)
    } else if catalog::is_catalog_query(sql) {
        Route::Catalog
    } else {
        Route::Veil
    }
}

/// Runs one statement for `conn` and returns its response; result columns
/// go in `format` (`None`: text). `application_name` settings are recorded
/// in `metadata` and in the connection's audit records. The statement is
/// refused with `57P01` once shutdown has begun; otherwise it holds the
/// shutdown open and is counted in the metrics until its last row.
pub(crate) async fn run_statement(
    state: &ServerState,
    conn: &Conn,
    metadata: &mut std::collections::HashMap<String, String>,
    sql: &str,
    format: Option<&Format>,
) -> PgWireResult<Response> {
    let ops = state.operations();
    let Some(track) = StatementTrack::start(&ops.metrics, &ops.shutdown, conn.session.user())
    else {
        return Err(errors::error(
            errors::ADMIN_SHUTDOWN,
            "terminating statement: the server is shutting down.",
        ));
    };
    match run_routed(state, conn, metadata, sql, format).await {
        Ok(Response::Query(mut query)) => {
            let rows = std::mem::replace(query.data_rows(), stream::empty().boxed());
            *query.data_rows() = tracked(rows, track);
            Ok(Response::Query(query))
        }
        Ok(other) => {
            track.finish(Outcome::Ok);
            Ok(other)
        }
        Err(e) => {
            track.finish(outcome(&e));
            Err(e)
        }
    }
}

/// How a statement error counts in the metrics.
fn outcome(e: &PgWireError) -> Outcome {
    match e {
        PgWireError::UserError(info) => Outcome::from_sqlstate(Some(&info.code)),
        _ => Outcome::from_sqlstate(Some(errors::INTERNAL)),
    }
}

/// `rows`, finishing `track` after the last row or at the first error.
fn tracked(
    rows: pgwire::api::results::SendableRowStream,
    track: StatementTrack,
) -> pgwire::api::results::SendableRowStream {
    stream::unfold((rows, Some(track)), |(mut rows, mut track)| async move {
        let next = rows.next().await;
        match &next {
            None => {
                if let Some(t) = track.take() {
                    t.finish(Outcome::Ok);
                }
            }
            Some(Err(e)) => {
                if let Some(t) = track.take() {
                    t.finish(outcome(e));
                }
            }
            Some(Ok(_)) => {}
        }
        next.map(|item| (item, (rows, track)))
    })
    .boxed()
}

/// [`run_statement`] after the shutdown check: administrator statements
/// ([`crate::admin`]), then the routes.
async fn run_routed(
    state: &ServerState,
    conn: &Conn,
    metadata: &mut std::collections::HashMap<String, String>,
    sql: &str,
    format: Option<&Format>,
) -> PgWireResult<Response> {
    let mut cancel = conn.cancel.watch();
    if let Some(reply) =
        crate::admin::intercept(state.engine(), conn.session.user(), &conn.admin, sql).await
    {
        let stream = match reply.map_err(|e| errors::from_veil(&e))? {
            AdminReply::Done(tag) => return Ok(Response::Execution(Tag::new(tag))),
            AdminReply::Rows(batches) => batches_stream(batches),
        };
        let fields = Arc::new(encoding::fields(&stream.schema(), format));
        let rows = rows(stream, Arc::clone(&fields), cancel);
        return Ok(Response::Query(QueryResponse::new(fields, rows)));
    }
    let stream = match route(sql) {
        Route::Local(Local::Done(tag, record)) => {
            if let Some((_, value)) = record {
                if let Some(connected) = veil_engine::audit::client::current() {
                    connected.set_application_name(&value);
                }
                metadata.insert(METADATA_APPLICATION_NAME.to_string(), value);
            }
            return Ok(Response::Execution(Tag::new(tag)));
        }
        Route::Local(Local::Show(name, value)) => {
            let value = if name == METADATA_APPLICATION_NAME {
                metadata
                    .get(METADATA_APPLICATION_NAME)
                    .cloned()
                    .unwrap_or_default()
            } else {
                value
            };
            return Ok(text_result(&name, value));
        }
        Route::Local(Local::Begin) => return Ok(Response::TransactionStart(Tag::new("BEGIN"))),
        Route::Local(Local::End(tag)) => return Ok(Response::TransactionEnd(Tag::new(tag))),
        Route::Local(Local::BadEncoding(value)) => {
            return Err(errors::error(
                errors::INVALID_PARAMETER,
                format!("Veil sends UTF8 only; client_encoding '{value}' is not supported."),
            ));
        }
        Route::Catalog => {
            let ctx = conn
                .catalog
                .context(state.engine(), &conn.session)
                .map_err(|e| errors::error(errors::INTERNAL, e.to_string()))?;
            catalog::run(&ctx, sql).await.map_err(catalog_error)?
        }
        Route::Veil => {
            let sql = super::names::from_postgres(sql);
            let started = tokio::select! {
                biased;
                _ = cancel::cancelled(&mut cancel) => return Err(errors::canceled()),
                s = conn.session.sql_stream(&sql) => s,
            };
            started.map_err(|e| errors::from_veil(&e))?
        }
    };
    let fields = Arc::new(encoding::fields(&stream.schema(), format));
    let rows = rows(stream, Arc::clone(&fields), cancel);
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// Collected batches (an administrator statement's rows) as a stream.
fn batches_stream(batches: Vec<veil_engine::RecordBatch>) -> SendableRecordBatchStream {
    let schema = batches.first().map_or_else(
        || Arc::new(datafusion::arrow::datatypes::Schema::empty()),
        |b| b.schema(),
    );
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            stream::iter(batches.into_iter().map(Ok)),
        ),
    )
}

/// A failed catalog query: names it could not resolve are reported the way
/// Veil reports them (a user table is never in the catalog context).
pub(crate) fn catalog_error(e: datafusion::error::DataFusionError) -> PgWireError {
    let text = e.to_string();
    if let Some(rest) = text.split("table '").nth(1)
        && text.contains("not found")
    {
        let name = rest.split('\'').next().unwrap_or_default();
        return errors::error(
            errors::NOT_AUTHORIZED,
            format!(
                "Object '{}' does not exist or not authorized.",
                name.to_uppercase()
            ),
        );
    }
    match e {
        datafusion::error::DataFusionError::SQL(..) => errors::error(errors::SYNTAX, text),
        _ => errors::error(errors::ACCESS_RULE, text),
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = conn(client)?;
        let mut responses = Vec::new();
        for sql in split_statements(query) {
            match run_statement(&self.state, &conn, client.metadata_mut(), &sql, None).await {
                Ok(r) => responses.push(r),
                Err(e) => {
                    // PostgreSQL stops at the first failing statement.
                    let info: pgwire::error::ErrorInfo = e.into();
                    responses.push(Response::Error(Box::new(info)));
                    break;
                }
            }
        }
        if responses.is_empty() {
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_top_level_semicolons() {
        assert_eq!(
            split_statements("SELECT ';'; SELECT 2;;"),
            vec!["SELECT ';'".to_string(), " SELECT 2".to_string()]
        );
    }
}
