//! Workspace Snowflake DDL scripts (SPEC §4): every `*.sql` file at the top
//! of the workspace, applied in file-name order after `veil.yaml`.
//!
//! sqlparser 0.62 does not parse Snowflake's policy DDL, so this module
//! parses the supported subset with sqlparser's own `Parser` primitives
//! (keywords, identifiers, object names, `parse_data_type`, `parse_expr` for
//! bodies) over Veil's tokens (unquoted identifiers upper-cased):
//!
//! - `CREATE [OR REPLACE] ROLE | TAG [IF NOT EXISTS] name`
//! - `CREATE [OR REPLACE] MASKING POLICY [IF NOT EXISTS] p AS (val T [, c T2 ...])
//!   RETURNS T -> body [COMMENT = '...'] [EXEMPT_OTHER_POLICIES = TRUE|FALSE]`
//! - `CREATE [OR REPLACE] ROW ACCESS POLICY [IF NOT EXISTS] p AS (a T, ...)
//!   RETURNS BOOLEAN -> body [COMMENT = '...']`
//! - `CREATE [OR REPLACE] [SECURE] [MEMOIZABLE] FUNCTION f(a T, ...) RETURNS T
//!   [LANGUAGE SQL] AS '<expression or SELECT>'` (also `$$...$$`)
//! - `GRANT ROLE r TO USER u | ROLE r2` (a grant closing a cycle is an
//!   error), `GRANT SELECT ON [TABLE] t TO ROLE r`
//! - `GRANT USAGE ON DATABASE d | SCHEMA [d.]s | WAREHOUSE w TO ROLE r` and
//!   `GRANT APPLY MASKING POLICY | APPLY ROW ACCESS POLICY | APPLY TAG ON
//!   ACCOUNT TO ROLE r`: recorded on the role ([`Privilege`]), not enforced
//!   (`veil lint` reports a read without USAGE on the database or schema)
//! - `ALTER TABLE t MODIFY|ALTER [COLUMN] c SET MASKING POLICY p [USING (c, cond...)] [FORCE]`,
//!   `... UNSET MASKING POLICY`, `... SET TAG tag = 'v' [, ...]`, `... UNSET TAG tag [, ...]`,
//!   several in one statement: `MODIFY [(] COLUMN a SET ..., COLUMN b UNSET ... [)]`
//! - `ALTER TABLE t ADD ROW ACCESS POLICY p ON (cols)`,
//!   `ALTER TABLE t DROP ROW ACCESS POLICY p | DROP ALL ROW ACCESS POLICIES`
//! - `ALTER TAG tag SET MASKING POLICY p [, MASKING POLICY p2] [FORCE]`,
//!   `ALTER TAG tag UNSET MASKING POLICY p [, ...]`
//! - `CREATE [OR REPLACE] [SECURE] VIEW v AS <query>`, `GRANT SELECT ON VIEW v TO ROLE r`,
//!   `ALTER VIEW v MODIFY|ALTER [COLUMN] c SET|UNSET MASKING POLICY p ...`
//! - `ALTER MASKING POLICY | ROW ACCESS POLICY [IF EXISTS] p SET BODY -> body`
//!   (the policy changes in place, still attached)
//! - `CREATE [OR REPLACE] TABLE [IF NOT EXISTS] t (col T, ...)` and
//!   `INSERT INTO t [(cols)] VALUES (...), ...`: mapping and entitlements
//!   tables held in memory; `CREATE SCHEMA` is accepted and ignored
//! - `USE DATABASE d`, `USE SCHEMA [d.]s`, `USE ROLE r`
//!
//! A syntax error names the file, line and column of the token the parser
//! stopped at; any other error those of the statement (or of its change,
//! in a multi-column `ALTER`). Tables and
//! masking and row access policies resolve against `USE DATABASE/SCHEMA` and
//! the workspace defaults (a policy is known by its `DB.SCHEMA.NAME`); tags
//! and functions by their last name part.

mod apply;
mod checks;
mod parse;

use apply::{Scope, apply};
use parse::{parse_script, split_location};

use std::path::Path;

use datafusion::sql::sqlparser::ast::Expr;
use datafusion::sql::sqlparser::tokenizer::Location;

use crate::error::{Result, VeilError};
use crate::model::*;

/// One parsed DDL statement.
#[derive(Debug, Clone, PartialEq)]
enum Ddl {
    CreateRole {
        name: String,
        replace: bool,
        if_not_exists: bool,
    },
    CreateTag {
        name: String,
        replace: bool,
        if_not_exists: bool,
    },
    CreateMasking {
        def: MaskingPolicyDef,
        name: Vec<String>,
        replace: bool,
        if_not_exists: bool,
    },
    CreateRowAccess {
        def: RowAccessPolicyDef,
        name: Vec<String>,
        replace: bool,
        if_not_exists: bool,
    },
    CreateFunction {
        def: SqlFunction,
        replace: bool,
    },
    CreateView {
        name: Vec<String>,
        query: Box<datafusion::sql::sqlparser::ast::Query>,
        secure: bool,
        replace: bool,
    },
    GrantRoleToUser {
        role: String,
        user: String,
    },
    GrantRoleToRole {
        role: String,
        to: String,
    },
    GrantSelect {
        table: Vec<String>,
        role: String,
    },
    GrantUsage {
        on: UsageOn,
        name: Vec<String>,
        role: String,
    },
    GrantApply {
        privilege: Privilege,
        role: String,
    },
    /// Several changes in one statement (`ALTER TABLE t MODIFY COLUMN a ...,
    /// COLUMN b ...`), each with the line and column it starts at.
    Each(Vec<(Location, Ddl)>),
    SetMasking {
        table: Vec<String>,
        column: String,
        policy: Vec<String>,
        using: Vec<String>,
        force: bool,
    },
    UnsetMasking {
        table: Vec<String>,
        column: String,
    },
    ViewSetMasking {
        view: Vec<String>,
        column: String,
        policy: Vec<String>,
        using: Vec<String>,
        force: bool,
    },
    ViewUnsetMasking {
        view: Vec<String>,
        column: String,
    },
    SetTags {
        table: Vec<String>,
        column: String,
        tags: Vec<(String, String)>,
    },
    UnsetTags {
        table: Vec<String>,
        column: String,
        tags: Vec<String>,
    },
    AddRowAccess {
        table: Vec<String>,
        policy: Vec<String>,
        columns: Vec<String>,
    },
    DropRowAccess {
        table: Vec<String>,
        policy: Option<Vec<String>>,
    },
    TagSetMasking {
        tag: String,
        policies: Vec<Vec<String>>,
        force: bool,
    },
    TagUnsetMasking {
        tag: String,
        policies: Vec<Vec<String>>,
    },
    CreateTable {
        name: Vec<String>,
        columns: Vec<(String, SnowflakeType)>,
        replace: bool,
        if_not_exists: bool,
    },
    Insert {
        table: Vec<String>,
        columns: Option<Vec<String>>,
        rows: Vec<Vec<Option<String>>>,
    },
    CreateSchema,
    SetBody {
        masking: bool,
        name: Vec<String>,
        body: Expr,
    },
    UseDatabase(String),
    UseSchema(Vec<String>),
    UseRole,
}

/// What `GRANT USAGE ON ...` names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum UsageOn {
    Database,
    Schema,
    Warehouse,
}

/// Applies the workspace's `*.sql` scripts, in file-name order, then checks
/// that no column is masked by both layers.
pub fn apply_workspace_scripts(ws: &mut Workspace) -> Result<()> {
    let listing_error = |e: std::io::Error| {
        VeilError::workspace(
            ws.dir.display().to_string(),
            format!("cannot list DDL scripts: {e}"),
        )
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&ws.dir).map_err(listing_error)? {
        let path = entry.map_err(listing_error)?.path();
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    for path in files {
        apply_script(ws, &path)?;
    }
    check_layer_conflicts(ws)
}

/// Applies one DDL script to `ws`.
pub fn apply_script(ws: &mut Workspace, path: &Path) -> Result<()> {
    let rel = path
        .strip_prefix(&ws.dir)
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        VeilError::workspace(rel.clone(), format!("cannot read the DDL script: {e}"))
    })?;
    let mut state = Scope {
        database: ws.settings.default_database.clone(),
        schema: ws.settings.default_schema.clone(),
    };
    for (origin, column, stmt) in parse_script(&text, &rel)? {
        apply(ws, &mut state, stmt, &origin).map_err(|e| {
            // A change of a multi-change statement is located at its start.
            let (message, at) = split_location(&e);
            let (line, column) = match at {
                Some(at) => (at.line as usize, at.column as usize),
                None => (origin.line, column),
            };
            VeilError::workspace(format!("{}:{line}:{column}", origin.file), message)
        })?;
    }
    Ok(())
}

/// Snowflake's error 003529.
pub const ERROR_003529: &str = "003529 (42601): SQL compilation error: Specified column already attached to another masking policy. A column cannot be attached to multiple masking policies. Please drop the current association in order to attach a new masking policy.";

pub use crate::model::ddl_masks;

/// Both layers in one workspace: a column masked by DDL (directly or
/// through a tag) and by an Immuta-style masking policy is a load error
/// naming both.
fn check_layer_conflicts(ws: &Workspace) -> Result<()> {
    for t in &ws.tables {
        for c in &t.columns {
            let Some((ddl, why)) = ddl_masks(ws, c).into_iter().next() else {
                continue;
            };
            for p in &ws.policies {
                if !matches!(p.kind, PolicyKind::Masking { .. }) {
                    continue;
                }
                let reaches = match &p.target {
                    Target::Columns(cs) => cs.iter().any(|(tn, cn)| *tn == t.name && *cn == c.name),
                    Target::Tags(tags) => tags
                        .iter()
                        .any(|target| c.tags.iter().any(|ct| tag_is_under(&ct.name, target))),
                    Target::DataSources(ts) => ts.contains(&t.name),
                };
                if reaches {
                    return Err(VeilError::workspace(
                        p.origin.to_string(),
                        format!(
                            "column {}.{} is masked both by Snowflake masking policy {ddl} ({why}) and by policy '{}'; a column takes one mask, so remove one of them",
                            t.name, c.name, p.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
