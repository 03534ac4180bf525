//! Logging in: the connection limit (`53300`), SCRAM-SHA-256 against `veil
//! passwd` verifiers through pgwire's SASL handler (or `--trust` on
//! loopback), the workspace user's status, and an audit record for every
//! attempt. A wrong password, an unknown, staged or disabled user all get
//! the same `28P01` error, after the same work: users the server will not
//! admit are checked against a decoy verifier, so the SCRAM exchange runs
//! to its end either way.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_APPLICATION_NAME, METADATA_USER, PgWireConnectionState,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use veil_engine::audit::AuditRecord;
use veil_engine::ident::normalize_ident;

use super::cancel::Registry;
use super::{Conn, catalog, errors};
use crate::credentials::Credentials;
use crate::options::Authentication;
use crate::server::ServerState;

/// The version PostgreSQL clients are told (they pick catalog queries by it).
pub(crate) const SERVER_VERSION: &str = "15.0 (Veil)";

/// The connection slot taken at the startup message, until the login
/// succeeds and the slot moves into [`Conn`].
struct Slot(tokio::sync::OwnedSemaphorePermit);

/// The startup handler of every connection.
pub(crate) struct Startup {
    state: Arc<ServerState>,
    cancels: Arc<Registry>,
    sasl: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    parameters: Arc<DefaultServerParameterProvider>,
    pids: RandomPidSecretKeyGenerator,
}

/// The server parameters sent after login.
fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.server_version = SERVER_VERSION.to_owned();
    p.is_superuser = false;
    p.default_transaction_read_only = true;
    p
}

impl Startup {
    pub(crate) fn new(state: Arc<ServerState>, cancels: Arc<Registry>) -> Self {
        let parameters = Arc::new(parameters());
        let sasl = match state.authentication() {
            Authentication::Credentials(credentials) => {
                let source = Verifiers {
                    state: Arc::clone(&state),
                    credentials: Arc::clone(credentials),
                };
                Some(
                    SASLAuthStartupHandler::new(Arc::clone(&parameters))
                        .with_scram(ScramAuth::new(Arc::new(source))),
                )
            }
            Authentication::Trust => None,
        };
        Self {
            state,
            cancels,
            sasl,
            parameters,
            pids: RandomPidSecretKeyGenerator::default(),
        }
    }

    /// The login name as the client sent it.
    fn client_user<C: ClientInfo>(client: &C) -> String {
        client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default()
    }

    fn audit<C: ClientInfo>(&self, client: &C, failure: Option<&str>) {
        if failure.is_some() {
            self.state
                .operations()
                .metrics
                .authentication_failure(crate::metrics::Protocol::Postgres);
        }
        if let Some(log) = self.state.engine().audit_log() {
            let user = normalize_ident(&Self::client_user(client));
            let record = AuditRecord::login(
                &user,
                &format!("postgresql://{}", client.socket_addr()),
                failure,
                self.state.engine().version(),
            );
            if let Err(e) = log.append(&record) {
                eprintln!("warning: cannot write the audit log: {e}");
            }
        }
    }

    /// After a successful authentication: opens the login's session and
    /// registers its cancel key.
    fn open<C: ClientInfo>(&self, client: &C) -> PgWireResult<()> {
        let user = Self::client_user(client);
        let session = match self.state.open_session(&user) {
            Ok(s) => s,
            Err(e) => {
                self.audit(client, Some(&e.to_string()));
                return Err(errors::bad_login(&user));
            }
        };
        let Some(slot) = client
            .session_extensions()
            .get::<std::sync::Mutex<Option<Slot>>>()
        else {
            return Err(errors::fatal(
                errors::INTERNAL,
                "the connection has no slot.",
            ));
        };
        let slot = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| errors::fatal(errors::INTERNAL, "the connection has no slot."))?;
        let (pid, secret) = client.pid_and_secret_key();
        let (cancel, registration) = self.cancels.register(pid, &secret);
        client.session_extensions().insert(Conn {
            session,
            cancel,
            catalog: catalog::CatalogCache::default(),
            admin: crate::admin::AdminMode::default(),
            _slot: slot.0,
            _cancel_key: registration,
        });
        if let Some(connected) = veil_engine::audit::client::current()
            && let Some(name) = client.metadata().get(METADATA_APPLICATION_NAME)
        {
            connected.set_application_name(name);
        }
        self.audit(client, None);
        Ok(())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            let Some(permit) = self.state.try_connection() else {
                return Err(errors::fatal(
                    errors::TOO_MANY_CONNECTIONS,
                    "sorry, too many clients already",
                ));
            };
            client
                .session_extensions()
                .insert(std::sync::Mutex::new(Some(Slot(permit))));
            if startup
                .parameters
                .get(METADATA_USER)
                .is_none_or(|u| u.is_empty())
            {
                return Err(errors::fatal(
                    "28000",
                    "no PostgreSQL user name specified in startup packet",
                ));
            }
            if self.sasl.is_none() {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = Self::client_user(client);
                if let Err(e) = self.state.open_session(&user) {
                    self.audit(client, Some(&e.to_string()));
                    return Err(errors::bad_login(&user));
                }
                let (pid, secret) = self.pids.generate(client);
                client.set_pid_and_secret_key(pid, secret);
                self.open(client)?;
                return finish_authentication(client, self.parameters.as_ref()).await;
            }
        }
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        let was_authenticated = matches!(client.state(), PgWireConnectionState::ReadyForQuery);
        match sasl.on_startup(client, message).await {
            Ok(()) => {
                if !was_authenticated
                    && matches!(client.state(), PgWireConnectionState::ReadyForQuery)
                {
                    self.open(client)?;
                }
                Ok(())
            }
            Err(e) => {
                let user = Self::client_user(client);
                self.audit(client, Some(&format!("authentication failed: {e}")));
                Err(errors::bad_login(&user))
            }
        }
    }
}

/// Verifiers for pgwire's SCRAM exchange.
#[derive(Debug)]
struct Verifiers {
    state: Arc<ServerState>,
    credentials: Arc<Credentials>,
}

#[async_trait]
impl AuthSource for Verifiers {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // Only SCRAM is offered; no password is ever stored.
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().unwrap_or_default();
        // Both checks always run: the answer's timing does not say which failed.
        let admitted = self.state.open_session(user).is_ok();
        let verifier = match self.credentials.verifier(user) {
            Some(v) if admitted => v,
            _ => Credentials::decoy_verifier(),
        };
        Ok((verifier.scram_secret(), None))
    }
}
