//! The endpoints of Snowflake's connector protocol on axum: login, query,
//! abort, session close, heartbeat, token renewal, result chunk download,
//! telemetry. Request bodies are read here (size limit, gzip) and every
//! failure answers in Snowflake's error shape.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde_json::{Value, json};
use veil_engine::Engine;

use super::error::SfError;
use super::query::{self, Output};
use super::result::SfResult;
use super::session::{
    LoginRequest, SessionStore, SfSession, StoredResult, constant_time_eq, lock, query_id,
    random_token,
};
use super::{Authentication, SnowflakeLimits};

/// The header a chunk download carries its session's chunk key in.
pub const CHUNK_KEY_HEADER: &str = "x-veil-chunk-key";

/// Statement type id of a query (`SELECT`), as Snowflake reports it.
const SELECT_TYPE_ID: u64 = 0x1000;

/// What every handler shares.
pub struct Shared {
    engine: Engine,
    auth: Authentication,
    limits: SnowflakeLimits,
    /// Open logins.
    pub sessions: SessionStore,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("auth", &self.auth)
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state of a new server.
    pub fn new(engine: Engine, auth: Authentication, limits: SnowflakeLimits) -> Self {
        Self {
            engine,
            auth,
            limits,
            sessions: SessionStore::default(),
        }
    }
}

type St = State<Arc<Shared>>;
type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/session/v1/login-request", post(login))
        .route("/queries/v1/query-request", post(query_request))
        .route("/queries/v1/abort-request", post(abort))
        .route("/session", post(session))
        .route("/session/heartbeat", post(heartbeat))
        .route("/session/token-request", post(token_request))
        .route("/telemetry/send", post(telemetry))
        .route("/veil/chunks/{id}", get(chunk))
        .fallback(fallback)
        .with_state(shared)
}

fn ok(data: Value) -> Response {
    axum::Json(json!({"data": data, "code": null, "message": null, "success": true}))
        .into_response()
}

/// Reads a request body: at most `limit` bytes, gunzipped when the client
/// says so, then JSON.
async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, SfError> {
    let raw: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| SfError::too_large(limit))?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = if gzip {
        let mut out = Vec::new();
        let decoder = flate2::read::GzDecoder::new(&raw[..]);
        decoder
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|_| SfError::bad_request("The request body is not valid gzip."))?;
        if out.len() > limit {
            return Err(SfError::too_large(limit));
        }
        out
    } else {
        raw.to_vec()
    };
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| SfError::bad_request(format!("The request body is not valid JSON: {e}.")))
}

/// The token of `Authorization: Snowflake Token="…"`.
fn token(headers: &HeaderMap) -> Result<String, SfError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(SfError::no_token)?;
    let token = value
        .trim()
        .strip_prefix("Snowflake Token=\"")
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(SfError::no_token)?;
    if token.is_empty() {
        return Err(SfError::no_token());
    }
    Ok(token.to_string())
}

fn authenticated(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<(String, Arc<SfSession>), SfError> {
    let token = token(headers)?;
    let session = shared
        .sessions
        .get(&token)
        .ok_or_else(SfError::unknown_token)?;
    Ok((token, session))
}

fn params(p: Params) -> HashMap<String, String> {
    p.map(|Query(q)| q).unwrap_or_default()
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

async fn login(State(shared): St, p: Params, headers: HeaderMap, body: Body) -> Response {
    match login_inner(&shared, params(p), &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn login_inner(
    shared: &Shared,
    params: HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, SfError> {
    let body = read_json(headers, body, shared.limits.max_body_bytes).await?;
    let data = body
        .get("data")
        .ok_or_else(|| SfError::bad_request("The login request has no data."))?;
    let user = str_field(data, "LOGIN_NAME")
        .ok_or_else(|| SfError::bad_request("The login request has no LOGIN_NAME."))?;
    let json_results = data
        .get("SESSION_PARAMETERS")
        .and_then(|p| {
            p.as_object().and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("PYTHON_CONNECTOR_QUERY_RESULT_FORMAT"))
                    .map(|(_, v)| v.as_str().unwrap_or_default().eq_ignore_ascii_case("json"))
            })
        })
        .unwrap_or(false);
    let req = LoginRequest {
        user,
        password: str_field(data, "PASSWORD"),
        role: params.get("roleName").cloned(),
        database: params.get("databaseName").cloned(),
        schema: params.get("schemaName").cloned(),
        warehouse: params.get("warehouse").cloned(),
        json_results,
    };
    let tokens = shared
        .sessions
        .login(&shared.engine, &shared.auth, &shared.limits, req)?;
    let (ctx, session) = tokens.session.current();
    let version = shared.engine.current();
    Ok(ok(json!({
        "token": tokens.token,
        "masterToken": tokens.master_token,
        "validityInSeconds": 3600,
        "masterValidityInSeconds": 14400,
        "displayUserName": session.user(),
        "serverVersion": query::VERSION,
        "firstLogin": false,
        "remMeToken": null,
        "remMeValidityInSeconds": 0,
        "healthCheckInterval": 45,
        "newClientForUpgrade": null,
        "sessionId": version.id(),
        "parameters": [
            {"name": "AUTOCOMMIT", "value": true},
            {"name": "TIMEZONE", "value": "Etc/UTC"},
            {"name": "CLIENT_SESSION_KEEP_ALIVE_HEARTBEAT_FREQUENCY", "value": 3600},
            {"name": "CLIENT_PREFETCH_THREADS", "value": 4},
            {"name": "CLIENT_STAGE_ARRAY_BINDING_THRESHOLD", "value": 0},
        ],
        "sessionInfo": {
            "databaseName": ctx.database,
            "schemaName": ctx.schema,
            "warehouseName": ctx.warehouse,
            "roleName": ctx.role,
        },
    })))
}

async fn session(State(shared): St, p: Params, headers: HeaderMap) -> Response {
    let result = (|| {
        let (token, _) = authenticated(&shared, &headers)?;
        let params = params(p);
        if params
            .get("delete")
            .is_some_and(|d| d.eq_ignore_ascii_case("true"))
        {
            shared.sessions.close(&token);
        }
        Ok::<_, SfError>(ok(Value::Null))
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn heartbeat(State(shared): St, headers: HeaderMap) -> Response {
    match authenticated(&shared, &headers) {
        Ok(_) => ok(json!({})),
        Err(e) => e.into_response(),
    }
}

async fn token_request(State(shared): St, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let master = token(&headers)?;
        let body = read_json(&headers, body, shared.limits.max_body_bytes).await?;
        let old = str_field(&body, "oldSessionToken")
            .ok_or_else(|| SfError::bad_request("The token request has no oldSessionToken."))?;
        let new = shared.sessions.renew(&master, &old)?;
        Ok::<_, SfError>(ok(json!({
            "sessionToken": new,
            "validityInSecondsST": 3600,
            "masterToken": master,
            "validityInSecondsMT": 14400,
        })))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn telemetry(State(shared): St, headers: HeaderMap, body: Body) -> Response {
    // Accepted and dropped: Veil keeps its own audit log.
    let result = async {
        authenticated(&shared, &headers)?;
        read_json(&headers, body, shared.limits.max_body_bytes).await?;
        Ok::<_, SfError>(ok(Value::Null))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn abort(State(shared): St, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let (_, sf) = authenticated(&shared, &headers)?;
        let body = read_json(&headers, body, shared.limits.max_body_bytes).await?;
        let request_id = str_field(&body, "requestId")
            .ok_or_else(|| SfError::bad_request("The abort request has no requestId."))?;
        if let Some(h) = lock(&sf.running).remove(&request_id) {
            h.abort();
        }
        Ok::<_, SfError>(ok(Value::Null))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn chunk(State(shared): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let key = headers
        .get(CHUNK_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match shared.sessions.find_chunk(&id, key) {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => SfError {
            status: StatusCode::FORBIDDEN,
            ..SfError::not_authorized("The result chunk does not exist or not authorized.")
        }
        .into_response(),
    }
}

async fn fallback(uri: Uri) -> Response {
    SfError::not_found(uri.path()).into_response()
}

async fn query_request(State(shared): St, p: Params, headers: HeaderMap, body: Body) -> Response {
    match query_inner(&shared, params(p), &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Runs a statement to a converted result (in its own task, so an abort
/// request or a closed session can stop it).
async fn execute(
    shared: &Shared,
    sf: &Arc<SfSession>,
    request_id: Option<String>,
    sql: String,
    bindings: Option<Value>,
    describe_only: bool,
) -> Result<SfResult, SfError> {
    let max = shared.limits.max_result_bytes;
    let task_sf = Arc::clone(sf);
    let handle = tokio::spawn(async move {
        let output = query::run(&task_sf, &sql, bindings.as_ref()).await?;
        match output {
            Output::Batches { schema, batches } => {
                let mut r = SfResult::describe(&schema, &[]);
                if !describe_only {
                    for b in &batches {
                        r.push(b)?;
                    }
                }
                Ok(r)
            }
            Output::Stream {
                mut stream,
                declared,
            } => {
                let schema = stream.schema();
                let mut r = SfResult::describe(&schema, &declared);
                if describe_only {
                    return Ok(r);
                }
                while let Some(batch) = stream.next().await {
                    let batch =
                        batch.map_err(|e| SfError::from(veil_engine::error::from_datafusion(e)))?;
                    r.push(&batch)?;
                    if r.memory_size() > max {
                        return Err(SfError::query_failed(format!(
                            "The result is larger than {max} bytes, the server's limit; add a LIMIT or select fewer columns."
                        )));
                    }
                }
                Ok(r)
            }
        }
    });
    if let Some(id) = &request_id {
        lock(&sf.running).insert(id.clone(), handle.abort_handle());
    }
    let joined = handle.await;
    if let Some(id) = &request_id {
        lock(&sf.running).remove(id);
    }
    match joined {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Err(SfError::cancelled("SQL execution canceled")),
        Err(_) => Err(SfError::query_failed(
            "The statement failed inside the server; the administrator's log has the details.",
        )),
    }
}

async fn query_inner(
    shared: &Shared,
    params: HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, SfError> {
    let (_, sf) = authenticated(shared, headers)?;
    let body = read_json(headers, body, shared.limits.max_body_bytes).await?;
    let sql = str_field(&body, "sqlText")
        .ok_or_else(|| SfError::bad_request("The query request has no sqlText."))?;
    let bindings = body.get("bindings").filter(|b| !b.is_null()).cloned();
    let describe_only = body
        .get("describeOnly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let n_binds = bindings
        .as_ref()
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    let qid = query_id();
    let result = execute(
        shared,
        &sf,
        params.get("requestId").cloned(),
        sql,
        bindings,
        describe_only,
    )
    .await
    .map_err(|mut e| {
        e.message = e.message.replace('\n', " ");
        e
    });
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            let mut body = e.body();
            body["data"]["queryId"] = json!(qid);
            return Ok((e.status, axum::Json(body)).into_response());
        }
    };
    let (ctx, _) = sf.current();
    let mut data = json!({
        "parameters": [{"name": "TIMEZONE", "value": "Etc/UTC"}],
        "rowtype": result.rowtype(),
        "total": result.rows,
        "returned": result.rows,
        "queryId": qid,
        "databaseProvider": null,
        "finalDatabaseName": ctx.database,
        "finalSchemaName": ctx.schema,
        "finalWarehouseName": ctx.warehouse,
        "finalRoleName": ctx.role,
        "numberOfBinds": n_binds,
        "arrayBindSupported": false,
        "statementTypeId": SELECT_TYPE_ID,
        "version": 1,
    });
    if ctx.json_results {
        data["queryResultFormat"] = json!("json");
        data["rowset"] = result.json_rowset()?;
        return Ok(ok(data));
    }
    data["queryResultFormat"] = json!("arrow");
    let chunks = result.chunks(shared.limits.first_chunk_rows, shared.limits.chunk_bytes);
    let mut chunks = chunks.into_iter();
    let first = chunks.next().unwrap_or_default();
    data["rowsetBase64"] = json!(STANDARD.encode(result.ipc(&first)?));
    let rest: Vec<_> = chunks.collect();
    if !rest.is_empty() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("127.0.0.1")
            .to_string();
        let mut stored = StoredResult {
            chunks: HashMap::new(),
        };
        let mut list = Vec::with_capacity(rest.len());
        for c in rest {
            let bytes = result.ipc(&c)?;
            let rows: usize = c.iter().map(|b| b.num_rows()).sum();
            let id = random_token()?;
            list.push(json!({
                "url": format!("http://{host}/veil/chunks/{id}"),
                "rowCount": rows,
                "uncompressedSize": bytes.len(),
                "compressedSize": bytes.len(),
            }));
            stored.chunks.insert(id, Bytes::from(bytes));
        }
        sf.store_result(stored, shared.limits.kept_results);
        data["chunks"] = Value::Array(list);
        data["chunkHeaders"] = json!({ CHUNK_KEY_HEADER: sf.chunk_key });
    }
    Ok(ok(data))
}

impl SessionStore {
    /// A chunk by id, if the key is its session's chunk key.
    pub(crate) fn find_chunk(&self, id: &str, key: &str) -> Option<Bytes> {
        for s in self.all() {
            if let Some(b) = s.chunk(id) {
                return constant_time_eq(s.chunk_key.as_bytes(), key.as_bytes()).then_some(b);
            }
        }
        None
    }
}
