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
    /// Append an audit record per statement to this JSON Lines file.
    #[arg(long)]
    audit: Option<PathBuf>,
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
        /// Run as the workspace administrator: no policies, raw relations,
        /// and the audit log as `veil.audit` (-u names the administrator).
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
        #[arg(short = 'w', long = "workspace")]
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
    },
    /// Export the workspace's policies (snowflake: the DDL installing them).
    Export {
        /// Target system.
        #[arg(value_enum)]
        target: ExportTarget,
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace")]
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
    Bench {
        /// TPC-H scale factor.
        #[arg(long, default_value_t = 1.0)]
        sf: f64,
        /// Queries to run, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        queries: Vec<String>,
        /// Output directory: Parquet cache, generated workspace, reports.
        #[arg(long, default_value = "target/veil-bench")]
        out: PathBuf,
        /// Users in the generated workspace's user_profile.
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Timed runs per query and way (after one checked warm-up run).
        #[arg(long, default_value_t = 5)]
        iterations: usize,
    },
    /// Policy smells: fail-open constructs, conflicts, collision risks, clutter.
    Lint {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace")]
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
    /// A check failed (tests, lint); its report is already printed.
    Failed,
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

async fn open(identity: &Identity) -> Result<(Engine, veil_engine::Session), Failure> {
    let engine = load(&identity.workspace).await?;
    if let Some(path) = &identity.audit {
        engine.set_audit_log(path)?;
    }
    let session = engine.session_with(SessionOptions {
        user: identity.user.clone(),
        role: identity.role.clone(),
        purpose: identity.purpose.clone(),
        mode: mode(identity.mode),
        secondary_roles: None,
        statement_timeout: None,
    })?;
    Ok((engine, session))
}

async fn load(dir: &std::path::Path) -> Result<Engine, Failure> {
    let engine = Engine::load(dir).await?;
    for w in &engine.workspace().warnings {
        eprintln!("warning: {w}");
    }
    Ok(engine)
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
            admin,
            format,
            sql,
        } => {
            let sql = read_sql(sql)?;
            let batches = if admin {
                let engine = load(&identity.workspace).await?;
                if let Some(path) = &identity.audit {
                    engine.set_audit_log(path)?;
                }
                engine.admin_sql(&sql).await?
            } else {
                let (_engine, session) = open(&identity).await?;
                session.sql(&sql).await?
            };
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
        Command::Test {
            workspace,
            files,
            complete,
            junit,
            mode: m,
        } => {
            let engine = load(&workspace).await?;
            let files = if files.is_empty() {
                veil_engine::policy_test::workspace_test_files(&workspace)?
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
                    veil_engine::policy_test::complete_file(&engine, f, mode(m)).await?;
                    println!("completed {}", f.display());
                }
                return Ok(());
            }
            let report = veil_engine::policy_test::run_files(&engine, &files, mode(m)).await?;
            print!("{}", report.text());
            if let Some(path) = junit {
                std::fs::write(&path, report.junit())
                    .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
            }
            if !report.passed() {
                return Err(Failure::Failed);
            }
        }
        Command::Diff { old, new, format } => {
            let old_engine = load(&old).await?;
            let new_engine = load(&new).await?;
            let report = veil_engine::diff::diff(&old_engine, &new_engine).await?;
            match format {
                ReportFormat::Table => {
                    println!("veil diff {} → {}\n", old.display(), new.display());
                    print!("{report}");
                }
                ReportFormat::Json => println!("{}", report.json()?),
            }
        }
        Command::Export {
            target: ExportTarget::Snowflake,
            workspace,
            with_secret,
            as_workspace,
        } => {
            let engine = load(&workspace).await?;
            let ws = engine.workspace();
            let options = veil_engine::export::ExportOptions { with_secret };
            print!("{}", veil_engine::export::export_snowflake(&ws, &options)?);
            if let Some(out) = as_workspace {
                veil_engine::export::write_workspace(&ws, &options, &out)?;
                eprintln!(
                    "wrote a Veil workspace running this DDL to {}",
                    out.display()
                );
            }
        }
        Command::Bench {
            sf,
            queries,
            out,
            users,
            iterations,
        } => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "warning: this is a debug build; run `cargo run --release -- bench` for real numbers"
                );
            }
            let options = veil_engine::bench::BenchOptions {
                sf,
                queries,
                out: out.clone(),
                users,
                iterations,
                progress: true,
            };
            let report = veil_engine::bench::run(&options).await?;
            let table = report.table();
            println!("{table}");
            let stem = format!(
                "report-sf{}-u{users}",
                veil_engine::bench::tpch::sf_label(sf)
            );
            for (ext, text) in [
                ("md", table),
                ("json", report.json()),
                ("svg", report.svg()),
            ] {
                let path = out.join(format!("{stem}.{ext}"));
                std::fs::write(&path, text).map_err(|e| {
                    Failure::Usage(format!("cannot write '{}': {e}", path.display()))
                })?;
                eprintln!("wrote {}", path.display());
            }
        }
        Command::Lint {
            workspace,
            deny,
            format,
        } => {
            let engine = load(&workspace).await?;
            let findings = veil_engine::lint::lint(&engine).await?;
            match format {
                ReportFormat::Table => {
                    for f in &findings {
                        println!("{f}");
                    }
                    let errors = findings
                        .iter()
                        .filter(|f| f.severity == veil_engine::lint::Severity::Error)
                        .count();
                    println!(
                        "\n{} finding(s): {errors} error(s), {} warning(s)",
                        findings.len(),
                        findings.len() - errors
                    );
                }
                ReportFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&findings)
                        .map_err(|e| Failure::Usage(format!("cannot render JSON: {e}")))?
                ),
            }
            let fails = findings.iter().any(|f| {
                f.severity == veil_engine::lint::Severity::Error
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
