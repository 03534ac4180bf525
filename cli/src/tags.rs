//! `veil tag add|remove`, `veil tags [export|import]` and `veil lineage
//! ingest`: the catalog journal from the command line (SPEC §7.1, §7.3).
//! Each command loads the workspace's catalog (no data files are read),
//! records its change through the library's journal, and appends an audit
//! record per tag change and propagation.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use veil_engine::audit::{AuditLog, AuditRecord};
use veil_engine::load::journal::{Recorded, parse_column, record};
use veil_engine::model::{TagSource, Workspace};

use crate::{Failure, ReportFormat, emit, emit_line};

/// The workspace and audit flags every tag command takes.
#[derive(Args)]
pub(crate) struct Target {
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace", default_value = ".")]
    workspace: PathBuf,
    /// Append an audit record per tag change and propagation to this JSON
    /// Lines file (default: settings.audit of veil.yaml, state/audit.jsonl).
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Who makes the change, as the journal records it.
    #[arg(long, default_value = "ADMIN")]
    actor: String,
}

/// `veil tag`.
#[derive(Subcommand)]
pub(crate) enum TagAction {
    /// Put TAG on a column and propagate it through lineage
    /// (e.g. `veil tag add -w ws CRM.CORE.CUSTOMER.EMAIL PII.Email`).
    Add {
        #[command(flatten)]
        target: Target,
        /// The column, DB.SCHEMA.TABLE.COLUMN.
        column: String,
        /// The tag (hierarchical, e.g. PII.Email).
        tag: String,
    },
    /// Remove TAG from a column: a propagated tag is soft-deleted there;
    /// descendants no other ancestor supplies lose it
    /// (e.g. `veil tag remove -w ws CRM.CORE.CUSTOMER_2.EMAIL PII.Email`).
    Remove {
        #[command(flatten)]
        target: Target,
        /// The column, DB.SCHEMA.TABLE.COLUMN.
        column: String,
        /// The tag.
        tag: String,
    },
}

/// `veil tags`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct TagsArgs {
    #[command(subcommand)]
    action: Option<TagsAction>,
    /// Workspace directory (contains veil.yaml).
    #[arg(short = 'w', long = "workspace", default_value = ".")]
    workspace: PathBuf,
    /// Only this table (DB.SCHEMA.TABLE or a partial name).
    table: Option<String>,
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value = "table")]
    format: ReportFormat,
}

/// `veil tags export|import`.
#[derive(Subcommand)]
pub(crate) enum TagsAction {
    /// Write the tag catalogue (hierarchy and every column assignment with
    /// source and state) as JSON, with no internal ids
    /// (e.g. `veil tags export -w dev -o tags.json`).
    Export {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// Write here instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Check an exported catalogue against this workspace and record it:
    /// every problem is reported first, nothing is written unless all of it
    /// applies (e.g. `veil tags import -w prod tags.json --dry-run`).
    Import {
        #[command(flatten)]
        target: Target,
        /// The file `veil tags export` wrote.
        file: PathBuf,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `veil lineage`.
#[derive(Subcommand)]
pub(crate) enum LineageAction {
    /// Ingest Snowflake ACCESS_HISTORY rows (JSON array or JSON Lines) as
    /// column lineage (e.g. `veil lineage ingest -w ws access_history.json`).
    Ingest {
        #[command(flatten)]
        target: Target,
        /// The ACCESS_HISTORY export.
        file: PathBuf,
        /// Also propagate the tags already on the source columns (Veil's
        /// explicit opt-in; by default only tags added later propagate).
        #[arg(long)]
        retroactive: bool,
    },
}

/// Loads the workspace's catalog and prints its warnings.
pub(crate) fn load(dir: &Path) -> Result<Workspace, Failure> {
    let ws = veil_engine::load::load_workspace(dir)?;
    for w in &ws.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ws)
}

/// Appends the audit records of `recorded` (one per tag change and
/// propagation) to `--audit` or `settings.audit`, and prints its warnings.
fn audit(target: &Target, ws: &Workspace, recorded: &Recorded) -> Result<(), Failure> {
    audit_recorded(target.audit.as_deref(), ws, recorded)
}

/// Appends an audit record per event of `recorded` to `flag` (an
/// `--audit FILE`) or `settings.audit`, and prints its warnings.
pub(crate) fn audit_recorded(
    flag: Option<&Path>,
    ws: &Workspace,
    recorded: &Recorded,
) -> Result<(), Failure> {
    for w in &recorded.warnings {
        eprintln!("warning: {w}");
    }
    let path = match flag {
        Some(p) => Some(p.to_path_buf()),
        None => ws.settings.audit.clone(),
    };
    let Some(path) = path else {
        return Ok(());
    };
    let records: Vec<AuditRecord> = recorded
        .events
        .iter()
        .filter_map(|e| AuditRecord::catalog_change(e, 0))
        .collect();
    if records.is_empty() {
        return Ok(());
    }
    veil_engine::audit::prepare_log_dir(&path)?;
    let log = AuditLog::open(&path)?;
    for r in &records {
        log.append(r)?;
    }
    Ok(())
}

fn column(text: &str) -> Result<veil_engine::model::ColumnRef, Failure> {
    parse_column(text).map_err(Failure::Usage)
}

/// Prints what a change recorded: each event, one line.
fn print_events(recorded: &Recorded) -> Result<(), Failure> {
    if recorded.events.is_empty() {
        return emit_line("nothing changed");
    }
    for e in &recorded.events {
        use veil_engine::model::CatalogChange;
        let line = match &e.change {
            CatalogChange::TagAdded {
                column,
                tag,
                source,
                origin: None,
            } => format!("added {tag} on {column} ({source})"),
            CatalogChange::TagAdded {
                column,
                tag,
                origin: Some(o),
                ..
            } => format!("propagated {tag} to {column} (origin {o})"),
            CatalogChange::TagRemoved {
                column,
                tag,
                origin: None,
            } => format!("removed {tag} from {column}"),
            CatalogChange::TagRemoved {
                column,
                tag,
                origin: Some(o),
            } => format!("removed {tag} from {column} (no ancestor carries it since {o} lost it)"),
            CatalogChange::AccessRequested { .. } | CatalogChange::AccessDecided { .. } => {
                format!("{} {}", e.change.kind(), e.actor)
            }
            CatalogChange::Lineage {
                column, sources, ..
            } => format!(
                "lineage {column} <- {}",
                sources
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CatalogChange::TableCreated(created) => format!(
                "created table {} ({} columns)",
                created.name,
                created.columns.len()
            ),
        };
        emit_line(line)?;
    }
    Ok(())
}

/// `veil tag add|remove`.
pub(crate) fn tag(action: TagAction) -> Result<(), Failure> {
    let (target, column_text, tag, add) = match action {
        TagAction::Add {
            target,
            column,
            tag,
        } => (target, column, tag, true),
        TagAction::Remove {
            target,
            column,
            tag,
        } => (target, column, tag, false),
    };
    let ws = load(&target.workspace)?;
    let column = column(&column_text)?;
    let recorded = record(&ws, &target.actor, |r| {
        if add {
            r.add_tag(&column, &tag, TagSource::Manual)
        } else {
            r.remove_tag(&column, &tag)
        }
    })?;
    audit(&target, &ws, &recorded)?;
    print_events(&recorded)
}

/// `veil tags [export|import]`.
pub(crate) fn tags(args: TagsArgs) -> Result<(), Failure> {
    match args.action {
        None => {
            let ws = load(&args.workspace)?;
            let table = args
                .table
                .as_deref()
                .map(|t| {
                    veil_engine::ident::parse_table_name(
                        t,
                        &ws.settings.default_database,
                        &ws.settings.default_schema,
                    )
                    .map_err(Failure::Usage)
                })
                .transpose()?;
            let rows = veil_engine::tools::tags::tag_rows(&ws, table.as_ref())?;
            match args.format {
                ReportFormat::Table => emit(veil_engine::tools::tags::render_rows(&rows)),
                ReportFormat::Json => emit_line(json(&rows)?),
            }
        }
        Some(TagsAction::Export { workspace, output }) => {
            let ws = load(&workspace)?;
            let text = json(&veil_engine::tools::tags::export_tags(&ws)?)? + "\n";
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display()))),
                None => emit(text),
            }
        }
        Some(TagsAction::Import {
            target,
            file,
            dry_run,
        }) => {
            let ws = load(&target.workspace)?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
            let report = veil_engine::tools::tags::import_tags(
                &ws,
                &text,
                &file.display().to_string(),
                dry_run,
            )?;
            for p in &report.problems {
                eprintln!("problem: {p}");
            }
            if !report.problems.is_empty() {
                eprintln!("{} problem(s): nothing was imported", report.problems.len());
                return Err(Failure::Failed);
            }
            let verb = if dry_run { "would add" } else { "added" };
            for a in &report.added {
                emit_line(format!("{verb} {a}"))?;
            }
            for s in &report.skipped {
                emit_line(format!("skipped {s}"))?;
            }
            if let Some(recorded) = &report.recorded {
                audit(&target, &ws, recorded)?;
                let propagated = recorded.propagations().count();
                if propagated > 0 {
                    emit_line(format!("{propagated} propagation(s) through lineage"))?;
                }
            }
            Ok(())
        }
    }
}

/// `veil lineage ingest`.
pub(crate) fn lineage(action: LineageAction) -> Result<(), Failure> {
    let LineageAction::Ingest {
        target,
        file,
        retroactive,
    } = action;
    let ws = load(&target.workspace)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let label = file.display().to_string();
    let (lineage, mut report) =
        veil_engine::load::journal::access_history::parse_access_history(&ws, &text, &label)?;
    let recorded = record(&ws, &target.actor, |r| {
        veil_engine::load::journal::access_history::record_lineage(
            r,
            &lineage,
            retroactive,
            &mut report,
        );
        Ok(())
    })?;
    audit(&target, &ws, &recorded)?;
    for u in &report.unknown {
        eprintln!("warning: {label}: {u} is not declared in the workspace; its lineage is skipped");
    }
    emit_line(format!(
        "{} row(s), {} column edge(s), {} new; {} view object(s) ignored; {} unknown object(s); {} tag(s) propagated",
        report.rows,
        report.edges,
        report.new_edges,
        report.ignored_views,
        report.unknown.len(),
        report.propagated
    ))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Usage(format!("cannot render JSON: {e}")))
}
