//! `veil export snowflake`: the Snowflake DDL that installs a workspace's
//! Immuta-style policies (SPEC §4), and a Veil workspace that runs that DDL
//! locally, so a user can check "export, then re-import" gives the same
//! results before deploying.
//!
//! What the script holds, in the order it must run:
//! 1. a governance schema `<default database>.VEIL_POLICY`, the roles, and
//!    one role per purpose (`PURPOSE_FRAUD_ANALYSIS`): Snowflake has no
//!    purposes, so a user acts under one by activating its role as a
//!    secondary role (`USE SECONDARY ROLES PURPOSE_FRAUD_ANALYSIS`);
//! 2. the entitlements table (each user's groups and `key=value` attributes,
//!    a snapshot to refresh from the identity provider) and two memoizable
//!    lookup functions over it, `USER_GROUPS()` and `USER_ATTRIBUTES()`;
//! 3. the hashing secret as a secure function `HASH_SECRET()`, only with
//!    `--with-secret` (otherwise a commented template: the secret is never
//!    printed by default);
//! 4. per table, in schema `<DB>.VEIL_POLICY$<SCHEMA>$<TABLE>`, one masking
//!    policy per Immuta policy that wins a column (named like it, so
//!    `DESCRIBE` shows the same name) and one row access policy combining
//!    the row rules and the subscription; each created `IF NOT EXISTS` and
//!    then given its body with `ALTER ... SET BODY`, and attached with
//!    `FORCE`, so a rerun updates policies in place and no column is ever
//!    unprotected between statements; a `mask ... where` becomes a
//!    conditional masking policy (`USING (col, cond...)`), and a mask whose
//!    column another policy reads is `EXEMPT_OTHER_POLICIES = TRUE`, as
//!    Snowflake requires;
//! 5. grants last: no role can read a table before its policies are on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::Path;

use datafusion::sql::sqlparser::ast::{Expr, Ident, VisitMut, VisitorMut};

use crate::compile::{CompiledTable, compile_table};
use crate::error::{Result, VeilError};
use crate::model::*;
use crate::render::{SnowflakeExport, purpose_role, snowflake_policies};
use crate::sql::ident::top_level_identifiers;

/// Options of `veil export snowflake`.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Print the hashing secret inside a secure function (off by default).
    pub with_secret: bool,
}

/// The governance schema and object names the exported DDL uses.
struct Names {
    schema: String,
    entitlements: String,
    sql: SnowflakeExport,
}

fn names(ws: &Workspace) -> Result<Names> {
    let schema = format!("{}.VEIL_POLICY", ident(&ws.settings.default_database));
    let mut purpose_roles = BTreeMap::new();
    let mut purposes: BTreeSet<&str> = ws
        .users
        .iter()
        .flat_map(|u| u.purposes.iter().map(String::as_str))
        .collect();
    for p in &ws.policies {
        match &p.kind {
            PolicyKind::Row {
                rule: RowRule::Purpose(x),
                ..
            } => {
                purposes.insert(x);
            }
            PolicyKind::Masking { applies, .. } | PolicyKind::Row { applies, .. } => {
                if let Applicability::EveryoneExcept(c) | Applicability::EveryoneWho(c) = applies {
                    purposes.extend(c.purposes.iter().map(String::as_str));
                }
            }
            PolicyKind::Subscription {
                allow: Allow::Condition(c),
                ..
            } => purposes.extend(c.purposes.iter().map(String::as_str)),
            PolicyKind::Subscription { .. } => {}
        }
    }
    for p in purposes {
        let role = purpose_role(p);
        if let Some((other, _)) = purpose_roles.iter().find(|(_, r)| **r == role) {
            return Err(VeilError::workspace(
                ws.dir.display().to_string(),
                format!("purposes '{other}' and '{p}' would both become role {role}; rename one"),
            ));
        }
        if ws.role(&role).is_some() {
            return Err(VeilError::workspace(
                ws.dir.display().to_string(),
                format!("purpose '{p}' would become role {role}, which the workspace already has"),
            ));
        }
        purpose_roles.insert(p.to_string(), role);
    }
    Ok(Names {
        entitlements: format!("{schema}.ENTITLEMENTS"),
        sql: SnowflakeExport {
            groups_function: format!("{schema}.USER_GROUPS"),
            attributes_function: format!("{schema}.USER_ATTRIBUTES"),
            secret_function: format!("{schema}.HASH_SECRET"),
            purpose_roles,
        },
        schema,
    })
}

fn ident(part: &str) -> String {
    let mut s = String::new();
    let _ = fmt_ident(&mut s, part);
    s
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Replaces `t."COL"` (a raw column in rendered policy SQL) by `by(COL)`.
fn rebind(expr: &mut Expr, by: &dyn Fn(&str) -> Expr) {
    struct Rebind<'a>(&'a dyn Fn(&str) -> Expr);
    impl VisitorMut for Rebind<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = e
                && let [t, c] = parts.as_slice()
                && t.value == "t"
                && t.quote_style.is_some()
            {
                *e = (self.0)(&c.value);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(expr, &mut Rebind(by));
}

/// The table's columns a rebound row filter reads, in declared order.
fn referenced_columns(expr: &Expr, table: &Table) -> Vec<String> {
    let names = top_level_identifiers(expr);
    table
        .columns
        .iter()
        .filter(|c| names.contains(&c.name))
        .map(|c| c.name.clone())
        .collect()
}

/// A column as an identifier of exported SQL, quoted when Snowflake needs it.
fn column_ident(name: &str) -> Expr {
    Expr::Identifier(if ident(name) == name {
        Ident::new(name)
    } else {
        Ident::with_quote('"', name)
    })
}

/// One exported masking policy: its name and body, the columns it masks,
/// and the conditional columns its body reads besides the masked value
/// (`mask ... where` predicates: a Snowflake conditional masking policy).
struct ExportedMask {
    name: String,
    declared: SnowflakeType,
    body: Expr,
    columns: Vec<String>,
    conditional: Vec<String>,
    /// `EXEMPT_OTHER_POLICIES = TRUE`: another exported policy reads the
    /// raw value of a column this one masks.
    exempt: bool,
}

/// The masking policies of one table: columns won by one Immuta policy
/// share a Snowflake policy when their bodies are equal; otherwise each
/// gets `"<policy>:<COLUMN>"`. The masked column becomes argument `VAL`,
/// any other column the body reads a conditional argument of its own name.
fn table_masks(
    table: &Table,
    ct: &CompiledTable,
    masks: Vec<(String, Option<Expr>)>,
) -> Result<Vec<ExportedMask>> {
    let mut out: Vec<ExportedMask> = Vec::new();
    for (column, body) in masks {
        let Some(mut body) = body else { continue };
        let Some(compiled) = ct.columns.iter().find(|c| c.name == column) else {
            continue;
        };
        let Some(applied) = &compiled.mask else {
            continue;
        };
        rebind(&mut body, &|c| {
            if c == column {
                Expr::Identifier(Ident::new("VAL"))
            } else {
                column_ident(c)
            }
        });
        let conditional: Vec<String> = referenced_columns(&body, table)
            .into_iter()
            .filter(|c| *c != column)
            .collect();
        if conditional.iter().any(|c| c.eq_ignore_ascii_case("VAL")) {
            return Err(VeilError::workspace(
                table.origin.to_string(),
                format!(
                    "policy '{}' on column {}.{column} reads column VAL, which would clash with the masked value's argument in the exported masking policy; rename the column",
                    applied.policy, table.name
                ),
            ));
        }
        match out.iter_mut().find(|m| {
            m.name == applied.policy
                && m.body == body
                && m.declared == compiled.declared
                && m.conditional == conditional
        }) {
            Some(m) => m.columns.push(column),
            None => out.push(ExportedMask {
                name: applied.policy.clone(),
                declared: compiled.declared,
                body,
                columns: vec![column],
                conditional,
                exempt: false,
            }),
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in &out {
        *counts.entry(m.name.clone()).or_default() += 1;
    }
    for m in &mut out {
        if counts.get(&m.name).copied().unwrap_or(0) > 1 {
            m.name = format!("{}:{}", m.name, m.columns.join(","));
        }
    }
    Ok(out)
}

/// Marks `EXEMPT_OTHER_POLICIES = TRUE` on each mask of a column that
/// another policy reads (`read`: the row access policy's columns and the
/// conditional masks' conditional columns), as Snowflake requires before a
/// row access or conditional masking policy may reference a masked column.
fn mark_exempt(masks: &mut [ExportedMask], row_columns: &[String]) {
    let read: BTreeSet<String> = masks
        .iter()
        .flat_map(|m| m.conditional.iter().cloned())
        .chain(row_columns.iter().cloned())
        .collect();
    for m in masks.iter_mut() {
        m.exempt = m.columns.iter().any(|c| read.contains(c));
    }
}

/// The Snowflake DDL installing the workspace's Immuta-style policies.
pub fn export_snowflake(ws: &Workspace, options: &ExportOptions) -> Result<String> {
    let n = names(ws)?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "-- Snowflake DDL for the policies of Veil workspace {}, from `veil export snowflake`.\n\
         -- Run it as a role that owns the tables and may create policies. Reruns update\n\
         -- policies in place (ALTER ... SET BODY, then MASKING POLICY swaps with FORCE).\n\
         -- Purposes are roles: act under one with USE SECONDARY ROLES <PURPOSE_ROLE>, and\n\
         -- give users DEFAULT_SECONDARY_ROLES = () so no purpose is active by default.",
        ws.dir.display()
    );
    let _ = writeln!(w, "\nCREATE SCHEMA IF NOT EXISTS {};", n.schema);

    let _ = writeln!(w, "\n-- Roles and their hierarchy.");
    for r in &ws.roles {
        if r.name != "PUBLIC" {
            let _ = writeln!(w, "CREATE ROLE IF NOT EXISTS {};", ident(&r.name));
        }
    }
    for (purpose, role) in &n.sql.purpose_roles {
        let _ = writeln!(
            w,
            "CREATE ROLE IF NOT EXISTS {}; -- acting under purpose {purpose}",
            ident(role)
        );
    }
    for r in &ws.roles {
        for parent in &r.inherits {
            let _ = writeln!(
                w,
                "GRANT ROLE {} TO ROLE {};",
                ident(parent),
                ident(&r.name)
            );
        }
    }

    let _ = writeln!(
        w,
        "\n-- Entitlements: each user's groups and attributes (a snapshot; keep it in sync\n\
         -- with your identity provider), read by the policies through memoizable functions."
    );
    let _ = writeln!(
        w,
        "CREATE OR REPLACE TABLE {} (USER_NAME VARCHAR, KIND VARCHAR, VALUE VARCHAR);",
        n.entitlements
    );
    let mut rows = Vec::new();
    for u in &ws.users {
        for g in &u.groups {
            rows.push(format!("({}, 'GROUP', {})", quote(&u.name), quote(g)));
        }
        for (k, vs) in &u.attributes {
            for v in vs {
                rows.push(format!(
                    "({}, 'ATTRIBUTE', {})",
                    quote(&u.name),
                    quote(&format!("{k}={v}"))
                ));
            }
        }
    }
    if !rows.is_empty() {
        let _ = writeln!(
            w,
            "INSERT INTO {} (USER_NAME, KIND, VALUE) VALUES\n  {};",
            n.entitlements,
            rows.join(",\n  ")
        );
    }
    for (function, kind) in [
        (&n.sql.groups_function, "GROUP"),
        (&n.sql.attributes_function, "ATTRIBUTE"),
    ] {
        let _ = writeln!(
            w,
            "CREATE OR REPLACE MEMOIZABLE FUNCTION {function}() RETURNS ARRAY AS\n  \
             'SELECT ARRAY_AGG(VALUE) FROM {} WHERE USER_NAME = CURRENT_USER() AND KIND = ''{kind}''';",
            n.entitlements
        );
    }

    // Policies, table by table.
    let mut policy_sql = String::new();
    let mut uses_hash = false;
    for table in &ws.tables {
        if table.rows.is_some() {
            continue;
        }
        if let Some(rap) = &table.row_access_policy {
            return Err(VeilError::workspace(
                rap.origin.to_string(),
                format!(
                    "table {} already has Snowflake row access policy {}; export covers workspaces whose policies are Immuta-style",
                    table.name, rap.policy
                ),
            ));
        }
        let ct = compile_table(ws, table);
        uses_hash |= ct.columns.iter().any(|c| {
            c.mask.as_ref().is_some_and(|m| {
                std::iter::once(&m.mask)
                    .chain(m.otherwise.as_ref())
                    .any(|e| e.spec == MaskSpec::Hash && e.fallback.is_none())
            })
        });
        let (masks, filter) = snowflake_policies(&ct, &ws.settings, &n.sql).map_err(|e| {
            VeilError::workspace(
                table.origin.to_string(),
                format!("table {}: {e}", table.name),
            )
        })?;
        let mut masks = table_masks(table, &ct, masks)?;
        if masks.is_empty() && filter.is_none() {
            continue;
        }
        let filter = filter.map(|mut f| {
            rebind(&mut f, &column_ident);
            let columns = referenced_columns(&f, table);
            (f, columns)
        });
        mark_exempt(
            &mut masks,
            filter
                .as_ref()
                .map(|(_, c)| c.as_slice())
                .unwrap_or_default(),
        );
        let schema = format!(
            "{}.{}",
            ident(&table.name.database),
            ident(&format!(
                "VEIL_POLICY${}${}",
                table.name.schema, table.name.table
            ))
        );
        let p = &mut policy_sql;
        let _ = writeln!(p, "\n-- {}", table.name);
        let _ = writeln!(p, "CREATE SCHEMA IF NOT EXISTS {schema};");
        for m in &masks {
            let name = format!("{schema}.{}", ident(&m.name));
            let mut params = vec![format!("VAL {}", m.declared)];
            params.extend(
                m.conditional
                    .iter()
                    .filter_map(|c| table.column(c))
                    .map(|c| format!("{} {}", ident(&c.name), c.declared)),
            );
            let _ = writeln!(
                p,
                "CREATE MASKING POLICY IF NOT EXISTS {name} AS ({params}) RETURNS {t} ->\n  {body}{exempt};\n\
                 ALTER MASKING POLICY {name} SET BODY ->\n  {body};",
                params = params.join(", "),
                body = m.body,
                t = m.declared,
                exempt = if m.exempt {
                    "\n  EXEMPT_OTHER_POLICIES = TRUE"
                } else {
                    ""
                },
            );
            for c in &m.columns {
                let using = if m.conditional.is_empty() {
                    String::new()
                } else {
                    let mut args = vec![ident(c)];
                    args.extend(m.conditional.iter().map(|x| ident(x)));
                    format!(" USING ({})", args.join(", "))
                };
                let _ = writeln!(
                    p,
                    "ALTER TABLE {} MODIFY COLUMN {} SET MASKING POLICY {name}{using} FORCE;",
                    table.name,
                    ident(c)
                );
            }
        }
        if let Some((filter, columns)) = filter {
            let params: Vec<String> = columns
                .iter()
                .filter_map(|c| table.column(c))
                .map(|c| format!("{} {}", ident(&c.name), c.declared))
                .collect();
            let name = format!("{schema}.VEIL_ROWS");
            let _ = writeln!(
                p,
                "CREATE ROW ACCESS POLICY IF NOT EXISTS {name} AS ({}) RETURNS BOOLEAN ->\n  {filter};\n\
                 ALTER ROW ACCESS POLICY {name} SET BODY ->\n  {filter};\n\
                 -- First install only; later runs update the body above in place.\n\
                 ALTER TABLE {} ADD ROW ACCESS POLICY {name} ON ({});",
                params.join(", "),
                table.name,
                columns
                    .iter()
                    .map(|c| ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    if uses_hash {
        let secret_fn = &n.sql.secret_function;
        if options.with_secret {
            let _ = writeln!(
                w,
                "\n-- The hashing secret (printed because of --with-secret; keep this file private).\n\
                 CREATE OR REPLACE SECURE FUNCTION {secret_fn}() RETURNS VARCHAR AS $${}$$;",
                quote(&ws.settings.secret)
            );
        } else {
            let _ = writeln!(
                w,
                "\n-- Hash masks read the workspace secret from this secure function; create it\n\
                 -- yourself (or export with --with-secret). Until then hashed columns fail closed.\n\
                 -- CREATE OR REPLACE SECURE FUNCTION {secret_fn}() RETURNS VARCHAR AS $$'<secret>'$$;"
            );
        }
    }
    out.push_str(
        "\n-- Masking and row access policies, attached before anyone is granted the tables.",
    );
    out.push_str(&policy_sql);

    let w = &mut out;
    let _ = writeln!(w, "\n-- Grants, last.");
    for r in &ws.roles {
        for privilege in &r.privileges {
            let _ = writeln!(w, "GRANT {privilege} TO ROLE {};", ident(&r.name));
        }
        for t in &r.grants {
            let _ = writeln!(w, "GRANT SELECT ON TABLE {t} TO ROLE {};", ident(&r.name));
        }
    }
    for u in &ws.users {
        for r in &u.roles {
            let _ = writeln!(w, "GRANT ROLE {} TO USER {};", ident(r), ident(&u.name));
        }
        for p in &u.purposes {
            if let Some(role) = n.sql.purpose_roles.get(p) {
                let _ = writeln!(w, "GRANT ROLE {} TO USER {};", ident(role), ident(&u.name));
            }
        }
    }
    Ok(out)
}

/// Writes a Veil workspace at `out` that applies the exported DDL to the
/// same data and users: `veil.yaml` (settings, tables at their absolute
/// locations, users' identities, `access: snowflake`) and `policies.sql`.
pub fn write_workspace(ws: &Workspace, options: &ExportOptions, out: &Path) -> Result<()> {
    use serde_norway::{Mapping, Value};
    let ddl = export_snowflake(ws, options)?;
    let fail = |e: String| VeilError::workspace(out.display().to_string(), e);
    let s = |x: &str| Value::String(x.to_string());
    let mut settings = Mapping::new();
    settings.insert(s("default_database"), s(&ws.settings.default_database));
    settings.insert(s("default_schema"), s(&ws.settings.default_schema));
    settings.insert(s("access"), s("snowflake"));
    // Purposes are roles a session activates explicitly.
    settings.insert(s("secondary_roles"), s("none"));
    if !ws.settings.administrators.is_empty() {
        settings.insert(
            s("administrators"),
            Value::Sequence(ws.settings.administrators.iter().map(|a| s(a)).collect()),
        );
    }
    let mut tables = Vec::new();
    for t in ws.tables.iter().filter(|t| t.rows.is_none()) {
        let location = std::fs::canonicalize(&t.location)
            .map_err(|e| fail(format!("cannot resolve the data of {}: {e}", t.name)))?;
        let mut m = Mapping::new();
        m.insert(s("name"), s(&t.name.to_string()));
        m.insert(s("location"), s(&location.display().to_string()));
        let columns = t
            .columns
            .iter()
            .map(|c| {
                let mut cm = Mapping::new();
                cm.insert(s("name"), s(&c.name));
                cm.insert(s("type"), s(&c.declared.to_string()));
                Value::Mapping(cm)
            })
            .collect();
        m.insert(s("columns"), Value::Sequence(columns));
        tables.push(Value::Mapping(m));
    }
    let users = ws
        .users
        .iter()
        .map(|u| {
            let mut m = Mapping::new();
            m.insert(s("name"), s(&u.name));
            let status = match u.status {
                UserStatus::Active => "active",
                UserStatus::Staged => "staged",
                UserStatus::Disabled => "disabled",
            };
            m.insert(s("status"), s(status));
            m.insert(
                s("groups"),
                Value::Sequence(u.groups.iter().map(|g| s(g)).collect()),
            );
            let mut attrs = Mapping::new();
            for (k, vs) in &u.attributes {
                attrs.insert(s(k), Value::Sequence(vs.iter().map(|v| s(v)).collect()));
            }
            m.insert(s("attributes"), Value::Mapping(attrs));
            Value::Mapping(m)
        })
        .collect();
    let mut doc = Mapping::new();
    doc.insert(s("settings"), Value::Mapping(settings));
    doc.insert(s("tables"), Value::Sequence(tables));
    doc.insert(s("users"), Value::Sequence(users));
    let yaml = serde_norway::to_string(&Value::Mapping(doc)).map_err(|e| fail(e.to_string()))?;
    std::fs::create_dir_all(out).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
    let header = "# A Veil workspace that runs the policies of `veil export snowflake`\n\
                  # (policies.sql) on the exported workspace's data and users.\n";
    std::fs::write(out.join("veil.yaml"), format!("{header}{yaml}"))
        .map_err(|e| fail(format!("cannot write veil.yaml: {e}")))?;
    std::fs::write(out.join("policies.sql"), ddl)
        .map_err(|e| fail(format!("cannot write policies.sql: {e}")))?;
    Ok(())
}
