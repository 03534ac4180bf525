//! `veil users sync|stage|activate`: identity from a SCIM 2.0 export and
//! user staging (SPEC §7.4). The library does the work
//! (`veil_engine::directory`); this file parses flags and prints.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::{Failure, emit};

/// `veil users ...`.
#[derive(Args)]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Sync users from a SCIM 2.0 ListResponse export into state/users.yaml;
    /// refuses a change of more than 5 % in the user or group count unless
    /// --force.
    #[command(after_help = "Example:\n  veil users sync -w . exports/entra-users.json --dry-run")]
    Sync {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// The SCIM ListResponse JSON file.
        file: PathBuf,
        /// Print what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even a change of more than 5 % in the user or group count.
        #[arg(long)]
        force: bool,
    },
    /// Stage users: they stay known but cannot query until activated.
    #[command(after_help = "Example:\n  veil users stage -w . ALICE BOB")]
    Stage {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// Users to stage.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Activate users staged by `veil users stage`.
    #[command(after_help = "Example:\n  veil users activate -w . ALICE BOB")]
    Activate {
        /// Workspace directory (contains veil.yaml).
        #[arg(short = 'w', long = "workspace", default_value = ".")]
        workspace: PathBuf,
        /// Users to activate.
        #[arg(required = true)]
        users: Vec<String>,
    },
}

fn load(dir: &std::path::Path) -> Result<veil_engine::model::Workspace, Failure> {
    let ws = veil_engine::load::load_workspace(dir)?;
    for w in &ws.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ws)
}

/// Runs `veil users ...`.
pub(crate) async fn run(args: UsersArgs) -> Result<(), Failure> {
    match args.command {
        UsersCommand::Sync {
            workspace,
            file,
            dry_run,
            force,
        } => {
            let ws = load(&workspace)?;
            let plan = veil_engine::directory::sync::sync(&ws, &file, dry_run, force)?;
            emit(format!("{plan}\n"))?;
            if dry_run {
                emit("dry run: nothing was written\n")?;
            } else if let Some(reason) = &plan.guard {
                emit(format!("applied despite the guard (--force): {reason}\n"))?;
            }
        }
        UsersCommand::Stage { workspace, users } => {
            let ws = load(&workspace)?;
            let staged = veil_engine::directory::staging::stage(&ws, &users)?;
            emit(format!(
                "staged {} user(s){}\n",
                staged.len(),
                if staged.is_empty() {
                    String::new()
                } else {
                    format!(": {}", staged.join(", "))
                }
            ))?;
        }
        UsersCommand::Activate { workspace, users } => {
            let ws = load(&workspace)?;
            let active = veil_engine::directory::staging::activate(&ws, &users)?;
            emit(format!(
                "activated {} user(s){}\n",
                active.len(),
                if active.is_empty() {
                    String::new()
                } else {
                    format!(": {}", active.join(", "))
                }
            ))?;
        }
    }
    Ok(())
}
