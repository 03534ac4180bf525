//! `veil passwd` (a credentials line for a login) and `veil serve` (the
//! servers of SPEC §9). The flags live here; the servers are library code
//! in `veil-serve`.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use veil_serve::Credentials;
use veil_serve::options::{Authentication, ServeOptions};
use veil_serve::pg::PgServer;
use veil_serve::server::ServerState;

use crate::Failure;

/// `veil passwd USER`: reads the password on stdin (the first line, without
/// its line ending) and prints one credentials line — a salted
/// SCRAM-SHA-256 verifier, never the password.
pub(crate) fn passwd(user: &str) -> Result<(), Failure> {
    if user.trim().is_empty() {
        return Err(Failure::Usage("the user name is empty.".into()));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Password for {user} (one line; it is not printed):");
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| Failure::Usage(format!("cannot read the password from stdin: {e}")))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(Failure::Usage(format!(
            "no password for {user} on stdin: pipe one line, e.g. `printf '%s\\n' \"$PW\" | veil passwd {user}`."
        )));
    }
    crate::emit_line(veil_serve::passwd_line(user, password))
}

/// Flags of `veil serve`.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace", default_value = ".")]
    workspace: PathBuf,
    /// Address of the PostgreSQL wire protocol listener.
    #[arg(long, default_value = veil_serve::options::DEFAULT_PG_LISTEN)]
    listen: SocketAddr,
    /// Credentials file: lines of `veil passwd USER` (mode 600).
    #[arg(long, conflicts_with = "trust")]
    credentials: Option<PathBuf>,
    /// No passwords: believe the login name (only on loopback listeners).
    #[arg(long)]
    trust: bool,
    /// How many connections may be open at once.
    #[arg(long, default_value_t = veil_serve::options::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// How long one statement may run (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = veil_serve::options::parse_duration)]
    statement_timeout: Duration,
    /// Append an audit record per login and statement to this JSON Lines
    /// file (default: settings.audit of veil.yaml, state/audit.jsonl).
    #[arg(long)]
    audit: Option<PathBuf>,
}

/// `veil serve`: loads the workspace and serves it until the process is
/// stopped.
pub(crate) async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let authentication = match (&args.credentials, args.trust) {
        (Some(path), _) => Authentication::Credentials(Arc::new(
            Credentials::load(path).map_err(|e| Failure::Usage(e.to_string()))?,
        )),
        (None, true) => Authentication::Trust,
        (None, false) => {
            return Err(Failure::Usage(
                "veil serve needs --credentials FILE (lines of `veil passwd USER`) or --trust (loopback only).".into(),
            ));
        }
    };
    let options = ServeOptions {
        pg_listen: args.listen,
        authentication,
        max_connections: args.max_connections,
        statement_timeout: args.statement_timeout,
    };
    if let Some(warning) = options
        .check(&[args.listen])
        .map_err(|e| Failure::Usage(e.to_string()))?
    {
        eprintln!("warning: {warning}");
    }
    let engine = crate::load(&args.workspace).await?;
    let audit = match &args.audit {
        Some(p) => Some(p.clone()),
        None => engine.current().workspace().settings.audit.clone(),
    };
    if let Some(path) = audit {
        veil_engine::audit::prepare_log_dir(&path)?;
        engine.set_audit_log(&path)?;
    }
    let state = ServerState::new(engine, options);
    let pg = PgServer::bind(state)
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let addr = pg
        .local_addr()
        .map_err(|e| Failure::Usage(format!("cannot read the listener's address: {e}")))?;
    eprintln!(
        "Veil serves {} over the PostgreSQL protocol on {addr}: psql -h {} -p {} -U <user>",
        args.workspace.display(),
        addr.ip(),
        addr.port()
    );
    pg.serve(std::future::pending()).await;
    Ok(())
}
