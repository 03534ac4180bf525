//! `veil passwd` (a credentials line for a login) and `veil serve` (the
//! servers of SPEC §9). The flags live here; the servers are library code
//! in `veil-serve`.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use veil_serve::Credentials;
use veil_serve::ops::Operations;
use veil_serve::options::{Authentication, ServeOptions};
use veil_serve::pg::PgServer;
use veil_serve::reload::{WatchOptions, WorkspaceWatcher};
use veil_serve::server::ServerState;
use veil_serve::snowflake::{self, SnowflakeLimits, SnowflakeServer};

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
    /// Address of the PostgreSQL wire protocol listener [default:
    /// 127.0.0.1:5433, unless only --snowflake-listen is given: then the
    /// Snowflake listener serves alone].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the Snowflake connector protocol listener (HTTP), for
    /// snowflake-connector-python, pandas and dbt-snowflake; off unless set.
    #[arg(long)]
    snowflake_listen: Option<SocketAddr>,
    /// Address of the `/health` and Prometheus `/metrics` listener; off
    /// unless set.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Credentials file: lines of `veil passwd USER` (mode 600).
    #[arg(long, conflicts_with = "trust")]
    credentials: Option<PathBuf>,
    /// No passwords: believe the login name (only on loopback listeners).
    #[arg(long)]
    trust: bool,
    /// TLS certificate chain (PEM) for the PostgreSQL listener.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) for `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
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
    /// Serve the version loaded at start; do not watch the workspace for
    /// changes.
    #[arg(long)]
    no_watch: bool,
    /// Run users' statements on the Ballista cluster whose scheduler is at
    /// df://HOST:PORT; they are still checked and planned here.
    #[arg(long, env = "VEIL_CLUSTER")]
    cluster: Option<String>,
}

/// `veil serve`: loads the workspace and serves it until SIGTERM or
/// Ctrl-C, then shuts down gracefully (running statements finish, the
/// audit log is flushed).
pub(crate) async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let usage = |e: &dyn std::fmt::Display| Failure::Usage(e.to_string());
    let credentials = match &args.credentials {
        Some(path) => Some(Arc::new(Credentials::load(path).map_err(|e| usage(&e))?)),
        None => None,
    };
    let authentication = match (&credentials, args.trust) {
        (Some(c), _) => Authentication::Credentials(Arc::clone(c)),
        (None, true) => Authentication::Trust,
        (None, false) => {
            return Err(Failure::Usage(
                "veil serve needs --credentials FILE (lines of `veil passwd USER`) or --trust (loopback only).".into(),
            ));
        }
    };
    let default_pg: SocketAddr = veil_serve::options::DEFAULT_PG_LISTEN
        .parse()
        .map_err(|e| Failure::Usage(format!("the default listener address: {e}")))?;
    let pg_listen = match (args.listen, args.snowflake_listen) {
        (Some(a), _) => Some(a),
        (None, Some(_)) => None,
        (None, None) => Some(default_pg),
    };
    let options = ServeOptions {
        pg_listen: pg_listen.unwrap_or(default_pg),
        authentication,
        max_connections: args.max_connections,
        statement_timeout: args.statement_timeout,
    };
    let logins: Vec<SocketAddr> = pg_listen.into_iter().chain(args.snowflake_listen).collect();
    if let Some(warning) = options.check(&logins).map_err(|e| usage(&e))? {
        eprintln!("warning: {warning}");
    }
    let mut operations = Operations::default();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        operations.tls = Some(veil_serve::tls::acceptor(cert, key)?);
    }

    let engine = crate::load(&args.workspace).await?;
    crate::cluster::attach(&engine, args.cluster.as_deref())?;
    // Listen for SIGTERM/Ctrl-C before any listener is announced, so a stop
    // right after start is a graceful one.
    let signals = veil_serve::shutdown::signal()
        .map_err(|e| Failure::Usage(format!("cannot listen for SIGTERM: {e}")))?;
    let audit = match &args.audit {
        Some(p) => Some(p.clone()),
        None => engine.current().workspace().settings.audit.clone(),
    };
    if let Some(path) = audit {
        veil_engine::audit::prepare_log_dir(&path)?;
        engine.set_audit_log(&path)?;
    }
    let state = ServerState::with_operations(engine.clone(), options, operations.clone());
    let _watcher = match args.no_watch {
        true => None,
        false => Some(WorkspaceWatcher::start(
            engine.clone(),
            &args.workspace,
            Some(operations.metrics.clone()),
            WatchOptions::default(),
        )?),
    };

    let pg = match pg_listen {
        Some(listen) => {
            let pg = PgServer::bind_to(state, listen)
                .await
                .map_err(|e| usage(&e))?;
            let addr = pg
                .local_addr()
                .map_err(|e| Failure::Usage(format!("cannot read the listener's address: {e}")))?;
            eprintln!(
                "Veil serves {} over the PostgreSQL protocol on {addr}: psql -h {} -p {} -U <user>",
                args.workspace.display(),
                addr.ip(),
                addr.port()
            );
            Some(pg)
        }
        None => None,
    };
    let stopping = operations.shutdown.clone();
    let mut side = tokio::task::JoinSet::new();
    if let Some(listen) = args.metrics_listen {
        let (listener, listen) = bind(listen, "--metrics-listen").await?;
        eprintln!("Health and metrics on http://{listen}/health and http://{listen}/metrics");
        let stop = stopping.clone();
        side.spawn(veil_serve::ops::serve(
            listener,
            operations.metrics.clone(),
            operations.shutdown.clone(),
            async move { stop.closing().await },
        ));
    }
    if let Some(listen) = args.snowflake_listen {
        let (listener, listen) = bind(listen, "--snowflake-listen").await?;
        let auth = match &credentials {
            Some(c) => snowflake::Authentication::Passwords(Arc::clone(c) as _),
            None => snowflake::Authentication::Trust,
        };
        let limits = SnowflakeLimits {
            statement_timeout: Some(args.statement_timeout),
            max_sessions: args.max_connections,
            ..SnowflakeLimits::default()
        };
        eprintln!(
            "Veil serves Snowflake's connector protocol on {listen}: \
             snowflake.connector.connect(host='{}', port={}, protocol='http', account='veil', user=..., password=...)",
            listen.ip(),
            listen.port()
        );
        let server = SnowflakeServer::with_limits(engine.clone(), auth, limits);
        let stop = stopping.clone();
        side.spawn(async move {
            server
                .serve(listener, async move { stop.stopping().await })
                .await
        });
    }

    // SIGTERM or Ctrl-C starts the shutdown sequence; the listeners stop
    // accepting when it begins.
    let sequence = {
        let shutdown = operations.shutdown.clone();
        let engine = engine.clone();
        let grace = args.statement_timeout;
        tokio::spawn(async move {
            signals.await;
            eprintln!(
                "veil serve: shutting down: running statements finish, then connections close."
            );
            shutdown.run(grace, Some(&engine)).await
        })
    };
    if let Some(pg) = pg {
        pg.serve(std::future::pending()).await;
    }
    let left = sequence
        .await
        .map_err(|e| Failure::Usage(format!("the shutdown sequence failed: {e}")))?;
    while let Some(done) = side.join_next().await {
        if let Ok(Err(e)) = done {
            eprintln!("veil serve: a listener stopped with an error: {e}");
        }
    }
    if left > 0 {
        eprintln!(
            "veil serve: {left} statement(s) were still running at the end of the grace period."
        );
    }
    eprintln!("veil serve: stopped; the audit log is flushed.");
    Ok(())
}

/// Binds a side listener, naming the flag when the address is taken;
/// returns it with the address it got (port 0 picks one).
async fn bind(addr: SocketAddr, flag: &str) -> Result<(TcpListener, SocketAddr), Failure> {
    let cannot =
        |e: std::io::Error| Failure::Usage(format!("{flag} {addr}: cannot listen there: {e}"));
    let listener = TcpListener::bind(addr).await.map_err(cannot)?;
    let bound = listener.local_addr().map_err(cannot)?;
    Ok((listener, bound))
}
