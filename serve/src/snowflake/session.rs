//! Logins and their state: the token table (session token and master
//! token, each 256 random bits from the operating system), and per login
//! the Veil session for the current role, the secondary roles, database,
//! schema and warehouse the client chose, the client settings it set, the
//! statements it is running (for abort) and the result chunks it may still
//! download.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use veil_engine::{Engine, Session, SessionOptions, VeilError};

use super::error::SfError;
use super::{Authentication, SnowflakeLimits};

/// Locks a mutex, recovering from a poisoned one (the state it guards is
/// replaced whole, never left half-written).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 256 random bits, URL-safe base64.
pub(crate) fn random_token() -> Result<String, SfError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| SfError::query_failed("The server could not draw a random token."))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A query id in Snowflake's shape (a UUID, random).
pub(crate) fn query_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Query ids name results, not secrets: a clock-based id will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// What the client chose for its session (`USE ...`, login parameters).
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The current (primary) role.
    pub role: String,
    /// `USE SECONDARY ROLES`: `None` is the workspace's setting.
    pub secondary_roles: Option<Vec<String>>,
    /// The current database.
    pub database: String,
    /// The current schema.
    pub schema: String,
    /// The current warehouse (Veil has none; kept for `CURRENT_WAREHOUSE()`).
    pub warehouse: Option<String>,
    /// Results as JSON rowsets rather than Arrow
    /// (`PYTHON_CONNECTOR_QUERY_RESULT_FORMAT = 'JSON'`).
    pub json_results: bool,
}

/// The downloadable chunks of one statement's result.
#[derive(Debug, Default)]
pub(crate) struct StoredResult {
    pub(crate) chunks: HashMap<String, bytes_::Bytes>,
}

/// `bytes` as axum re-exports it.
pub(crate) mod bytes_ {
    pub(crate) use axum::body::Bytes;
}

/// One login.
pub struct SfSession {
    /// The login (normalized user name).
    pub user: String,
    /// Answers `POST /session/token-request` only.
    pub(crate) master_token: String,
    /// The secret chunk downloads carry in a header.
    pub(crate) chunk_key: String,
    engine: Engine,
    statement_timeout: Option<std::time::Duration>,
    state: Mutex<(SessionContext, Arc<Session>)>,
    pub(crate) running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    pub(crate) results: Mutex<VecDeque<StoredResult>>,
}

impl std::fmt::Debug for SfSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfSession")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SfSession {
    /// The current context and Veil session.
    pub fn current(&self) -> (SessionContext, Arc<Session>) {
        let g = lock(&self.state);
        (g.0.clone(), Arc::clone(&g.1))
    }

    /// Switches the primary role (`USE ROLE`): only among the login's
    /// granted roles; the engine decides what is granted.
    pub fn use_role(&self, role: &str) -> Result<String, SfError> {
        let (mut ctx, _) = self.current();
        let session = open(
            &self.engine,
            &self.user,
            Some(role),
            ctx.secondary_roles.clone(),
            self.statement_timeout,
        )
        .map_err(|_| SfError::role_unavailable(&veil_engine::ident::normalize_ident(role)))?;
        ctx.role = session.role().to_string();
        let role = ctx.role.clone();
        *lock(&self.state) = (ctx, Arc::new(session));
        Ok(role)
    }

    /// `USE SECONDARY ROLES ALL | NONE | r, ...`.
    pub fn use_secondary_roles(&self, roles: Option<Vec<String>>) -> Result<(), SfError> {
        let (mut ctx, current) = self.current();
        let session = open(
            &self.engine,
            &self.user,
            Some(current.role()),
            roles.clone(),
            self.statement_timeout,
        )
        .map_err(|e| match e {
            VeilError::Session(m) => SfError::refused(m),
            other => SfError::from(other),
        })?;
        ctx.secondary_roles = roles;
        *lock(&self.state) = (ctx, Arc::new(session));
        Ok(())
    }

    /// Changes the context without changing the Veil session.
    pub fn update(&self, change: impl FnOnce(&mut SessionContext)) {
        let mut g = lock(&self.state);
        change(&mut g.0);
    }

    /// The engine this login runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Keeps a result's chunks for download, dropping the oldest beyond
    /// `keep`.
    pub(crate) fn store_result(&self, result: StoredResult, keep: usize) {
        let mut results = lock(&self.results);
        results.push_back(result);
        while results.len() > keep.max(1) {
            results.pop_front();
        }
    }

    /// One chunk, if this session still keeps it.
    pub(crate) fn chunk(&self, id: &str) -> Option<bytes_::Bytes> {
        lock(&self.results)
            .iter()
            .find_map(|r| r.chunks.get(id).cloned())
    }
}

/// Opens a Veil session for `user` under `role`.
fn open(
    engine: &Engine,
    user: &str,
    role: Option<&str>,
    secondary_roles: Option<Vec<String>>,
    statement_timeout: Option<std::time::Duration>,
) -> veil_engine::Result<Session> {
    engine.session_with(SessionOptions {
        role: role.map(str::to_string),
        secondary_roles,
        statement_timeout,
        ..SessionOptions::user(user)
    })
}

/// What a login asks for.
#[derive(Debug, Default)]
pub struct LoginRequest {
    /// `LOGIN_NAME`.
    pub user: String,
    /// `PASSWORD`.
    pub password: Option<String>,
    /// `roleName`.
    pub role: Option<String>,
    /// `databaseName`.
    pub database: Option<String>,
    /// `schemaName`.
    pub schema: Option<String>,
    /// `warehouse`.
    pub warehouse: Option<String>,
    /// `SESSION_PARAMETERS.PYTHON_CONNECTOR_QUERY_RESULT_FORMAT = JSON`.
    pub json_results: bool,
}

/// The tokens a login gets back.
#[derive(Debug)]
pub struct LoginTokens {
    /// Sent with every request.
    pub token: String,
    /// Renews the session token.
    pub master_token: String,
    /// The session.
    pub session: Arc<SfSession>,
}

/// Every open login, by session token and by master token.
#[derive(Default)]
pub struct SessionStore {
    by_token: Mutex<HashMap<String, Arc<SfSession>>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("sessions", &self.len())
            .finish()
    }
}

impl SessionStore {
    /// Open sessions.
    pub fn len(&self) -> usize {
        lock(&self.by_token).len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Authenticates a login and opens its session. A wrong password, an
    /// unknown, staged or disabled user all get the same error.
    pub fn login(
        &self,
        engine: &Engine,
        auth: &Authentication,
        limits: &SnowflakeLimits,
        req: LoginRequest,
    ) -> Result<LoginTokens, SfError> {
        let user = veil_engine::ident::normalize_ident(req.user.trim());
        if user.is_empty() {
            return Err(SfError::bad_login());
        }
        if let Authentication::Passwords(check) = auth {
            let password = req.password.as_deref().unwrap_or_default();
            if !check.verify_password(&user, password) {
                return Err(SfError::bad_login());
            }
        }
        let version = engine.current();
        let ws = version.workspace();
        let Some(u) = ws.user(&user) else {
            return Err(SfError::bad_login());
        };
        // Staged and disabled users: the engine refuses them; same error.
        let session = match open(engine, &user, None, None, limits.statement_timeout) {
            Ok(s) => s,
            Err(_) => return Err(SfError::bad_login()),
        };
        let session = match &req.role {
            Some(role) if !role.trim().is_empty() => {
                open(engine, &user, Some(role), None, limits.statement_timeout).map_err(|_| {
                    SfError::role_not_granted(&veil_engine::ident::normalize_ident(role))
                })?
            }
            _ => session,
        };
        let _ = u;
        let database = req
            .database
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(veil_engine::ident::normalize_ident)
            .unwrap_or_else(|| ws.settings.default_database.clone());
        let schema = req
            .schema
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(veil_engine::ident::normalize_ident)
            .unwrap_or_else(|| ws.settings.default_schema.clone());
        let ctx = SessionContext {
            role: session.role().to_string(),
            secondary_roles: None,
            database,
            schema,
            warehouse: req
                .warehouse
                .as_deref()
                .filter(|w| !w.trim().is_empty())
                .map(veil_engine::ident::normalize_ident),
            json_results: req.json_results,
        };
        let token = random_token()?;
        let master_token = random_token()?;
        let sf = Arc::new(SfSession {
            user,
            master_token: master_token.clone(),
            chunk_key: random_token()?,
            engine: engine.clone(),
            statement_timeout: limits.statement_timeout,
            state: Mutex::new((ctx, Arc::new(session))),
            running: Mutex::new(HashMap::new()),
            results: Mutex::new(VecDeque::new()),
        });
        let mut map = lock(&self.by_token);
        if map.len() >= limits.max_sessions {
            return Err(SfError::refused(format!(
                "The server has {} open sessions, its limit; close one and log in again.",
                limits.max_sessions
            )));
        }
        map.insert(token.clone(), Arc::clone(&sf));
        Ok(LoginTokens {
            token,
            master_token,
            session: sf,
        })
    }

    /// Every open session.
    pub(crate) fn all(&self) -> Vec<Arc<SfSession>> {
        lock(&self.by_token).values().cloned().collect()
    }

    /// The session of a session token.
    pub fn get(&self, token: &str) -> Option<Arc<SfSession>> {
        lock(&self.by_token).get(token).cloned()
    }

    /// Closes the session of `token`; its running statements are aborted
    /// and its chunks dropped.
    pub fn close(&self, token: &str) -> bool {
        let removed = lock(&self.by_token).remove(token);
        match removed {
            Some(s) => {
                for (_, h) in lock(&s.running).drain() {
                    h.abort();
                }
                lock(&s.results).clear();
                true
            }
            None => false,
        }
    }

    /// `POST /session/token-request`: with the master token, replaces
    /// `old` by a new session token of the same session.
    pub fn renew(&self, master_token: &str, old: &str) -> Result<String, SfError> {
        let mut map = lock(&self.by_token);
        let Some(session) = map.get(old).cloned() else {
            return Err(SfError::unknown_token());
        };
        if !constant_time_eq(session.master_token.as_bytes(), master_token.as_bytes()) {
            return Err(SfError::unknown_token());
        }
        let token = random_token()?;
        map.remove(old);
        map.insert(token.clone(), session);
        Ok(token)
    }
}

/// Compares secrets without an early exit.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
