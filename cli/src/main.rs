//! The `veil` command line: parses flags, calls the library, maps errors to
//! exit codes (0 ok, 1 query error or failed check, 2 usage or workspace
//! error). Output goes through [`emit`]: when the reader of stdout goes away
//! (`veil query … | head -1`), the command ends quietly with exit 0, as
//! Unix tools do.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use veil_engine::{EnforcementMode, Engine, SessionOptions, VeilError};

/// mimalloc, as DataFusion's own CLI uses: glibc's allocator returned the
/// freed buffers of Parquet page decoding to the kernel between statements
/// and faulted fresh zeroed pages in again for the next one (a point lookup
/// spent more time in page faults than in its own work).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod access;
mod bench;
mod cluster;
mod discover;
mod serve;
mod tags;
mod users;

#[derive(Parser)]
#[command(
    name = "veil",
    version,
    about = "Snowflake/Immuta-style data-access policies, enforced locally on DataFusion"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Inlined,
    #[value(alias = "profile_join")]
    ProfileJoin,
}

#[derive(clap::Args)]
struct Identity {
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace", default_value = ".")]
    workspace: PathBuf,
    /// User to run as.
    #[arg(short = 'u', long = "user")]
    user: String,
    /// Primary role (default: the user's first role).
    #[arg(long)]
    role: Option<String>,
    /// Purpose to act under.
    #[arg(long)]
    purpose: Option<String>,
    /// Override the workspace's enforcement mode.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Append an audit record per statement to this JSON Lines file
    /// (default: settings.audit of veil.yaml, state/audit.jsonl).
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Run statements on the Ballista cluster whose scheduler is at
    /// df://HOST:PORT (`veil scheduler`, `veil executor`); they are still
    /// checked and planned here, with this user's policies.
    #[arg(long, env = "VEIL_CLUSTER")]
    cluster: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled sample workspace as several users, side by side.
    Demo {
        /// Another workspace to demo (default: the bundled sample).
        #[arg(short = 'w', long = "workspace")]
        workspace: Option<PathBuf>,
    },
    /// Run SQL as a user ('-' reads SQL from stdin).
    Query {
        #[command(flatten)]
        identity: Identity,
        /// Run as a workspace administrator (-u must be listed in
        /// settings.administrators): no policies, raw relations, and the
        /// audit log as `veil.audit`.
        #[arg(long)]
        admin: bool,
        /// Output format.
        #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
        format: Format,
        /// The SQL, or '-' for stdin.
        sql: String,
    },
    /// Show the rewritten SQL and which policy decided each table and column.
    Explain {
        #[command(flatten)]
        identity: Identity,
        /// The SQL, or '-' for stdin.
        sql: String,
    },
    /// Run policy test files (sqllogictest, one session per block).
    Test {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// Test files (default: every *.slt under the workspace).
        files: Vec<PathBuf>,
        /// Rewrite the expected output from the current results.
        #[arg(long)]
        complete: bool,
        /// Also write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Override the workspace's enforcement mode.
        #[arg(long, value_enum)]
        mode: Option<Mode>,
    },
    /// Impact analysis: what changes, for whom, between two workspaces.
    Diff {
        /// The workspace as it is.
        old: PathBuf,
        /// The workspace as it would be.
        new: PathBuf,
        /// Output format.
        #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
        format: ReportFormat,
        /// Exit 1 when any user's access, rows or masking change (for CI
        /// gates), 0 otherwise.
        #[arg(long)]
        exit_code: bool,
    },
    /// An interactive SQL shell as a user (\? lists its commands); reads
    /// plain lines when stdin is not a terminal.
    Shell {
        #[command(flatten)]
        identity: Identity,
    },
    /// Print a shell completion script (e.g. `veil completions bash >
    /// /etc/bash_completion.d/veil`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Export the workspace's policies (snowflake: the DDL installing them).
    Export {
        /// Target system.
        #[arg(value_enum)]
        target: ExportTarget,
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// Print the hashing secret in a secure function (keep the output private).
        #[arg(long)]
        with_secret: bool,
        /// Also write a Veil workspace here that runs the exported DDL on the
        /// same data and users (to compare results before deploying).
        #[arg(long = "as-workspace")]
        as_workspace: Option<PathBuf>,
    },
    /// Benchmark what policies cost on TPC-H: each query unenforced, over
    /// hand-written secure views, and enforced by Veil in both modes; writes
    /// a table, JSON and an SVG chart (run with --release).
    Bench(bench::command::BenchArgs),
    /// Tag or untag a column in the catalog journal (propagates through lineage).
    Tag {
        #[command(subcommand)]
        action: tags::TagAction,
    },
    /// Every column's tags with source, origin, state and when; `export` and
    /// `import` move the tag catalogue between workspaces.
    Tags(tags::TagsArgs),
    /// Access requests for `allow: approval` subscriptions: request, approve, deny, list.
    Access(access::AccessArgs),
    /// Column lineage: ingest Snowflake ACCESS_HISTORY rows.
    Lineage {
        #[command(subcommand)]
        action: tags::LineageAction,
    },
    /// Sensitive data discovery: sample every table, report columns that
    /// hold e-mail addresses, card numbers, names, ... (--write tags them).
    Discover(discover::DiscoverArgs),
    /// Identity: sync users from a SCIM 2.0 export, stage and activate users.
    Users(users::UsersArgs),
    /// Serve the workspace to PostgreSQL clients (psql, DBeaver, drivers): every login is a workspace user.
    ///
    /// Example: `veil serve -w testdata/sample --credentials creds` then `psql -h 127.0.0.1 -p 5433 -U alice`
    Serve(serve::ServeArgs),
    /// Print one credentials line for USER (a salted SCRAM-SHA-256 verifier) from a password on stdin.
    ///
    /// Example: `printf '%s\n' "$PW" | veil passwd alice >> creds && chmod 600 creds`
    Passwd {
        /// The login (Snowflake rules: unquoted is upper-cased).
        user: String,
    },
    /// A Ballista scheduler for `veil executor`s and `--cluster` clients.
    Scheduler(cluster::SchedulerArgs),
    /// A Ballista executor that runs Veil's functions, keyed with its own
    /// VEIL_SECRET.
    Executor(cluster::ExecutorArgs),
    /// Policy smells: fail-open constructs, conflicts, collision risks, clutter.
    Lint {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// Fail (exit 1) on warnings too.
        #[arg(long = "deny", value_enum)]
        deny: Option<Deny>,
        /// Output format.
        #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
        format: ReportFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportTarget {
    Snowflake,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Deny {
    Warnings,
}

enum Failure {
    Usage(String),
    Veil(VeilError),
    /// A check failed (tests, lint, diff --exit-code); its report is already
    /// printed.
    Failed,
    /// Stdout was closed by its reader: stop quietly.
    Closed,
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Self::Closed
        } else {
            Self::Usage(format!("cannot write the output: {e}"))
        }
    }
}

/// Writes `text` to stdout as is (no newline added or trimmed).
fn emit(text: impl AsRef<str>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref().as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Writes `text` and a newline unless it ends with one.
fn emit_line(text: impl AsRef<str>) -> Result<(), Failure> {
    let text = text.as_ref();
    emit(text)?;
    if !text.ends_with('\n') {
        emit("\n")?;
    }
    Ok(())
}

fn mode(m: Option<Mode>) -> Option<EnforcementMode> {
    m.map(|m| match m {
        Mode::Inlined => EnforcementMode::Inlined,
        Mode::ProfileJoin => EnforcementMode::ProfileJoin,
    })
}

impl From<VeilError> for Failure {
    fn from(e: VeilError) -> Self {
        Self::Veil(e)
    }
}

fn read_sql(sql: String) -> Result<String, Failure> {
    if sql != "-" {
        return Ok(sql);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure::Usage(format!("cannot read SQL from stdin: {e}")))?;
    Ok(text)
}

fn options(identity: &Identity) -> SessionOptions {
    SessionOptions {
        user: identity.user.clone(),
        role: identity.role.clone(),
        purpose: identity.purpose.clone(),
        mode: mode(identity.mode),
        secondary_roles: None,
        statement_timeout: None,
    }
}

/// Loads the workspace and opens its audit log: `--audit`, else
/// `settings.audit` (creating `state/` with a `.gitignore`), unless that
/// is `off`.
async fn load_audited(identity: &Identity) -> Result<Engine, Failure> {
    let engine = load(&identity.workspace).await?;
    cluster::attach(&engine, identity.cluster.as_deref())?;
    let _phase = veil_engine::trace::phase("query: open audit log");
    let path = match &identity.audit {
        Some(p) => Some(p.clone()),
        None => engine.current().workspace().settings.audit.clone(),
    };
    if let Some(path) = path {
        veil_engine::audit::prepare_log_dir(&path)?;
        engine.set_audit_log(&path)?;
    }
    Ok(engine)
}

async fn open(identity: &Identity) -> Result<(Engine, veil_engine::Session), Failure> {
    let engine = load_audited(identity).await?;
    let session = engine.session_with(options(identity))?;
    Ok((engine, session))
}

/// A session that runs nothing (explain): no audit log is opened.
async fn open_unaudited(identity: &Identity) -> Result<veil_engine::Session, Failure> {
    let engine = load(&identity.workspace).await?;
    Ok(engine.session_with(options(identity))?)
}

/// Loads a workspace and prints its warnings, each once per command (`diff`
/// loads two workspaces that often share a secret).
async fn load(dir: &Path) -> Result<Engine, Failure> {
    static PRINTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let engine = Engine::load(dir).await?;
    let mut printed = PRINTED.lock().unwrap_or_else(|p| p.into_inner());
    let printed = printed.get_or_insert_with(HashSet::new);
    for w in &engine.current().workspace().warnings {
        if printed.insert(w.clone()) {
            eprintln!("warning: {w}");
        }
    }
    Ok(engine)
}

/// `veil shell`: a line editor with history on a terminal, plain lines
/// from a pipe; both feed [`veil_engine::shell::Shell`].
async fn shell(identity: &Identity) -> Result<(), Failure> {
    let engine = load_audited(identity).await?;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut shell = veil_engine::shell::Shell::new(engine, options(identity), terminal)?;
    let mut err = std::io::stderr();
    if !terminal {
        let mut out = std::io::stdout();
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
            if shell.line(&line, &mut out, &mut err).await? == veil_engine::shell::Step::Quit {
                return Ok(out.flush()?);
            }
        }
        shell.finish(&mut out, &mut err).await?;
        return Ok(out.flush()?);
    }
    let history = history_file(&identity.workspace);
    let mut editor = rustyline::DefaultEditor::new()
        .map_err(|e| Failure::Usage(format!("cannot start the line editor: {e}")))?;
    if let Some(h) = &history {
        // A missing history file is the first session.
        let _ = editor.load_history(h);
    }
    emit("Veil shell: SQL ends with ';', \\? lists commands, \\q quits.\n")?;
    loop {
        let mut out = std::io::stdout();
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if shell.line(&line, &mut out, &mut err).await? == veil_engine::shell::Step::Quit {
                    break;
                }
            }
            // Ctrl-C drops the statement being typed, as psql does.
            Err(rustyline::error::ReadlineError::Interrupted) if shell.in_statement() => {
                shell.discard();
            }
            Err(
                rustyline::error::ReadlineError::Interrupted | rustyline::error::ReadlineError::Eof,
            ) => break,
            Err(e) => return Err(Failure::Usage(format!("cannot read a line: {e}"))),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = editor.save_history(h) {
            eprintln!(
                "warning: cannot save the shell history to {}: {e}",
                h.display()
            );
        }
    }
    Ok(())
}

/// `~/.veil_history`, or the workspace's `state/shell_history` without a
/// home directory.
fn history_file(workspace: &Path) -> Option<PathBuf> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Some(PathBuf::from(home).join(".veil_history")),
        None => {
            let state = workspace.join("state");
            veil_engine::audit::prepare_log_dir(&state.join("shell_history")).ok()?;
            Some(state.join("shell_history"))
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command.unwrap_or(Command::Demo { workspace: None }) {
        Command::Demo { workspace } => {
            let dir = match workspace {
                Some(d) => d,
                None => veil_engine::tools::demo::sample_dir()?,
            };
            // The demo is a showcase: no audit log (it would land in the
            // bundled sample's directory).
            let engine = Engine::load(&dir).await?;
            emit(veil_engine::tools::demo::run_demo(&engine).await?)?;
        }
        Command::Query {
            identity,
            admin,
            format,
            sql,
        } => {
            let sql = read_sql(sql)?;
            let phase = veil_engine::trace::phase("query: load + open");
            let batches = if admin {
                let engine = load_audited(&identity).await?;
                veil_engine::tools::admin::run_as_administrator(&engine, &identity.user, &sql)
                    .await?
            } else {
                let (_engine, session) = open(&identity).await?;
                phase.end();
                let phase = veil_engine::trace::phase("query: session.sql");
                let batches = session.sql(&sql).await?;
                phase.end();
                batches
            };
            let _phase = veil_engine::trace::phase("query: format + print");
            let text = match format {
                Format::Table => veil_engine::output::table(&batches)?,
                Format::Csv => veil_engine::output::csv(&batches)?,
                Format::Json => veil_engine::output::json(&batches)?,
            };
            emit_line(text)?;
        }
        Command::Explain { identity, sql } => {
            let sql = read_sql(sql)?;
            let session = open_unaudited(&identity).await?;
            emit(session.explain(&sql)?.to_string())?;
        }
        Command::Test {
            workspace,
            files,
            complete,
            junit,
            mode: m,
        } => {
            let engine = load(&workspace).await?;
            let files = if files.is_empty() {
                veil_engine::tools::test_runner::workspace_test_files(&workspace)?
            } else {
                files
            };
            if files.is_empty() {
                return Err(Failure::Usage(format!(
                    "no test files (*.slt) under {}",
                    workspace.display()
                )));
            }
            if complete {
                for f in &files {
                    veil_engine::tools::test_runner::complete_file(&engine, f, mode(m)).await?;
                    emit(format!("completed {}\n", f.display()))?;
                }
                return Ok(());
            }
            let report =
                veil_engine::tools::test_runner::run_files(&engine, &files, mode(m)).await?;
            emit(report.text())?;
            if let Some(path) = junit {
                std::fs::write(&path, report.junit())
                    .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
            }
            if !report.passed() {
                return Err(Failure::Failed);
            }
        }
        Command::Diff {
            old,
            new,
            format,
            exit_code,
        } => {
            let old_engine = load(&old).await?;
            let new_engine = load(&new).await?;
            let report = veil_engine::tools::diff::diff(&old_engine, &new_engine).await?;
            match format {
                ReportFormat::Table => {
                    emit(format!(
                        "veil diff {} → {}\n\n{report}",
                        old.display(),
                        new.display()
                    ))?;
                }
                ReportFormat::Json => emit_line(report.json()?)?,
            }
            if exit_code && report.has_changes() {
                return Err(Failure::Failed);
            }
        }
        Command::Shell { identity } => shell(&identity).await?,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "veil", &mut script);
            emit(String::from_utf8_lossy(&script))?;
        }
        Command::Export {
            target: ExportTarget::Snowflake,
            workspace,
            with_secret,
            as_workspace,
        } => {
            let engine = load(&workspace).await?;
            let ws = engine.workspace();
            let options = veil_engine::tools::export::ExportOptions { with_secret };
            emit(veil_engine::tools::export::export_snowflake(&ws, &options)?)?;
            if let Some(out) = as_workspace {
                veil_engine::tools::export::write_workspace(&ws, &options, &out)?;
                eprintln!(
                    "wrote a Veil workspace running this DDL to {}",
                    out.display()
                );
            }
        }
        Command::Bench(args) => bench::command::bench(args).await?,
        Command::Tag { action } => tags::tag(action)?,
        Command::Tags(args) => tags::tags(args)?,
        Command::Lineage { action } => tags::lineage(action)?,
        Command::Access(args) => access::access(args.action)?,
        Command::Discover(args) => discover::run(args).await?,
        Command::Users(args) => users::run(args).await?,
        Command::Serve(args) => serve::serve(args).await?,
        Command::Passwd { user } => serve::passwd(&user)?,
        Command::Scheduler(args) => cluster::scheduler(args).await?,
        Command::Executor(args) => cluster::executor(args).await?,
        Command::Lint {
            workspace,
            deny,
            format,
        } => {
            let engine = load(&workspace).await?;
            let findings = veil_engine::tools::lint::lint(&engine).await?;
            match format {
                ReportFormat::Table => {
                    for f in &findings {
                        emit(format!("{f}\n"))?;
                    }
                    let errors = findings
                        .iter()
                        .filter(|f| f.severity == veil_engine::tools::lint::Severity::Error)
                        .count();
                    emit(format!(
                        "\n{} finding(s): {errors} error(s), {} warning(s)\n",
                        findings.len(),
                        findings.len() - errors
                    ))?;
                }
                ReportFormat::Json => emit_line(
                    serde_json::to_string_pretty(&findings)
                        .map_err(|e| Failure::Usage(format!("cannot render JSON: {e}")))?,
                )?,
            }
            let fails = findings.iter().any(|f| {
                f.severity == veil_engine::tools::lint::Severity::Error
                    || matches!(deny, Some(Deny::Warnings))
            });
            if fails {
                return Err(Failure::Failed);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let total = veil_engine::trace::phase("main: total");
    let phase = veil_engine::trace::phase("main: parse arguments");
    let cli = Cli::parse();
    phase.end();
    let phase = veil_engine::trace::phase("main: tokio runtime");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    phase.end();
    let result = runtime.block_on(run(cli));
    total.end();
    match result {
        Ok(()) | Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::Failed) => ExitCode::from(1),
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Veil(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_setup_error() { 2 } else { 1 })
        }
    }
}
