//! The `veil` command line: parses flags, calls the library, maps errors to
//! exit codes (0 ok, 1 query error, 2 usage or workspace error).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use veil_engine::{EnforcementMode, Engine, SessionOptions, VeilError};

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
    ProfileJoin,
}

#[derive(clap::Args)]
struct Identity {
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace")]
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
}

enum Failure {
    Usage(String),
    Veil(VeilError),
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

async fn open(identity: &Identity) -> Result<(Engine, veil_engine::Session), Failure> {
    let engine = Engine::load(&identity.workspace).await?;
    for w in &engine.workspace().warnings {
        eprintln!("warning: {w}");
    }
    let session = engine.session_with(SessionOptions {
        user: identity.user.clone(),
        role: identity.role.clone(),
        purpose: identity.purpose.clone(),
        mode: identity.mode.map(|m| match m {
            Mode::Inlined => EnforcementMode::Inlined,
            Mode::ProfileJoin => EnforcementMode::ProfileJoin,
        }),
    })?;
    Ok((engine, session))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command.unwrap_or(Command::Demo { workspace: None }) {
        Command::Demo { workspace } => {
            let dir = match workspace {
                Some(d) => d,
                None => veil_engine::demo::sample_dir()?,
            };
            let engine = Engine::load(&dir).await?;
            print!("{}", veil_engine::demo::run_demo(&engine).await?);
        }
        Command::Query {
            identity,
            format,
            sql,
        } => {
            let sql = read_sql(sql)?;
            let (_engine, session) = open(&identity).await?;
            let batches = session.sql(&sql).await?;
            let text = match format {
                Format::Table => veil_engine::output::table(&batches)?,
                Format::Csv => veil_engine::output::csv(&batches)?,
                Format::Json => veil_engine::output::json(&batches)?,
            };
            println!("{}", text.trim_end());
        }
        Command::Explain { identity, sql } => {
            let sql = read_sql(sql)?;
            let (_engine, session) = open(&identity).await?;
            print!("{}", session.explain(&sql)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
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
