//! Loading a workspace: `veil.yaml` (and the files it includes) → [`Workspace`],
//! with every error naming the file and line. Data files are attached
//! separately by [`data`].

pub mod data;
pub mod data_check;
pub mod ddl;
mod discovery;
pub mod journal;
pub mod synced_users;
pub(crate) mod user_table;
mod yaml;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Result, VeilError};
use crate::model::*;
use crate::sql::ident::{normalize_ident, parse_table_name};

pub use yaml::item_lines;

/// The development secret used when none is configured (with a warning).
pub const DEV_SECRET: &str = "veil-development-secret";

/// Reads and validates the workspace manifest in `dir`.
pub fn load_workspace(dir: &Path) -> Result<Workspace> {
    let manifest = dir.join("veil.yaml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        VeilError::workspace(
            manifest.display().to_string(),
            format!("cannot read the workspace manifest: {e}"),
        )
    })?;
    let yaml_phase = crate::trace::phase("load: read + parse YAML");
    let root: yaml::FileDoc = yaml::parse_doc(&text, "veil.yaml")?;
    let mut files = vec![("veil.yaml".to_string(), text, root)];
    let includes = files[0].2.include.clone();
    for pattern in includes {
        let full = dir.join(&pattern);
        let paths = glob::glob(&full.to_string_lossy()).map_err(|e| {
            VeilError::workspace(
                "veil.yaml",
                format!("include pattern '{pattern}' is invalid: {e}"),
            )
        })?;
        let mut matched: Vec<PathBuf> = paths.filter_map(|p| p.ok()).collect();
        matched.sort();
        if matched.is_empty() {
            return Err(VeilError::workspace(
                "veil.yaml",
                format!("include pattern '{pattern}' matches no file"),
            ));
        }
        for path in matched {
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                VeilError::workspace(rel.clone(), format!("cannot read included file: {e}"))
            })?;
            let doc = yaml::parse_doc(&text, &rel)?;
            if doc.settings.is_some() {
                return Err(VeilError::workspace(
                    rel,
                    "settings may only appear in veil.yaml",
                ));
            }
            if doc.lint.is_some() {
                return Err(VeilError::workspace(
                    rel,
                    "lint may only appear in veil.yaml",
                ));
            }
            files.push((rel, text, doc));
        }
    }
    yaml_phase.end();
    let phase = crate::trace::phase("load: build model");
    let mut ws = build(dir, files)?;
    phase.end();
    let phase = crate::trace::phase("load: synced users");
    synced_users::merge(&mut ws)?;
    phase.end();
    let phase = crate::trace::phase("load: DDL scripts");
    ddl::apply_workspace_scripts(&mut ws)?;
    phase.end();
    // The catalog journal last: its tags go on top of YAML's and DDL's.
    let phase = crate::trace::phase("load: catalog journal");
    journal::apply_journal(&mut ws)?;
    phase.end();
    if ws.settings.secret_is_default && ws.uses_encryption() {
        let env = &ws.settings.secret_env;
        ws.warnings.push(format!(
            "{env} is not set: hashing and encryption use Veil's development secret, so anyone with Veil can decrypt reversible and format-preserving values; set {env} for real data."
        ));
    } else if ws.settings.secret_is_default && ws.uses_secret() {
        let env = &ws.settings.secret_env;
        ws.warnings.push(format!(
            "{env} is not set: hashing uses Veil's development secret, so hashes are predictable; set {env} for real data."
        ));
    }
    // Cross-references last: a YAML user may hold a role a DDL script creates.
    let phase = crate::trace::phase("load: validate");
    validate(&ws)?;
    phase.end();
    Ok(ws)
}

/// Checks the references of a workspace, after its DDL scripts have run (or
/// as built or changed in code): unique names; roles, grants, owners and
/// condition roles that exist; no role inheritance cycle. Errors name the
/// workspace item at fault (`veil.yaml:line` for YAML items).
pub fn validate(ws: &Workspace) -> Result<()> {
    let fail = |origin: &Origin, message: String| {
        let location = if origin.file.is_empty() {
            "engine".to_string()
        } else {
            origin.to_string()
        };
        Err(VeilError::workspace(location, message))
    };
    let mut seen = HashSet::new();
    for r in &ws.roles {
        if !seen.insert(&r.name) {
            return fail(&r.origin, format!("role {} is declared twice", r.name));
        }
        for t in &r.grants {
            if ws.table(t).is_none() && ws.snowflake.view(t).is_none() {
                return fail(
                    &r.origin,
                    format!(
                        "role {} is granted table {t}, which is not declared",
                        r.name
                    ),
                );
            }
        }
        for parent in &r.inherits {
            if parent != "PUBLIC" && ws.role(parent).is_none() {
                return fail(
                    &r.origin,
                    format!(
                        "role {} inherits role {parent}, which is not declared",
                        r.name
                    ),
                );
            }
        }
    }
    let mut seen = HashSet::new();
    for u in &ws.users {
        if !seen.insert(&u.name) {
            return fail(&u.origin, format!("user {} is declared twice", u.name));
        }
        for r in &u.roles {
            if r != "PUBLIC" && ws.role(r).is_none() {
                return fail(
                    &u.origin,
                    format!("user {} is granted role {r}, which is not declared", u.name),
                );
            }
        }
    }
    for t in &ws.tables {
        for o in &t.owners {
            if ws.user(o).is_none() {
                return fail(
                    &t.origin,
                    format!("table {}: owner {o} is not a declared user", t.name),
                );
            }
        }
    }
    let mut seen = HashSet::new();
    for p in &ws.policies {
        if !seen.insert(&p.name) {
            return fail(&p.origin, format!("policy '{}' is declared twice", p.name));
        }
        for r in policy_conditions(&p.kind).iter().flat_map(|c| &c.roles) {
            if r != "PUBLIC" && ws.role(r).is_none() {
                return fail(
                    &p.origin,
                    format!(
                        "policy '{}': condition names role {r}, which is not declared",
                        p.name
                    ),
                );
            }
        }
    }
    if let Some(cycle) = role_cycle(&ws.roles) {
        let origin = cycle
            .first()
            .and_then(|name| ws.role(name))
            .map(|r| r.origin.clone())
            .unwrap_or_default();
        return fail(&origin, role_cycle_message(&cycle));
    }
    Ok(())
}

/// `role cycle: A → B → A (...)`, for a cycle as [`role_cycle`]
/// returns it.
pub(crate) fn role_cycle_message(cycle: &[String]) -> String {
    format!(
        "role cycle: {} (each role inherits the next); remove one of these grants",
        cycle.join(" → ")
    )
}

/// The conditions of a policy (who it applies to, who may subscribe).
fn policy_conditions(kind: &PolicyKind) -> Vec<&Condition> {
    match kind {
        PolicyKind::Masking { applies, .. } | PolicyKind::Row { applies, .. } => match applies {
            Applicability::Everyone => vec![],
            Applicability::EveryoneExcept(c) | Applicability::EveryoneWho(c) => vec![c],
        },
        PolicyKind::Subscription {
            allow: Allow::Condition(c),
            ..
        } => vec![c],
        PolicyKind::Subscription { .. } => vec![],
    }
}

fn at(file: &str, lines: &[usize], index: usize) -> Origin {
    Origin {
        file: file.to_string(),
        line: lines.get(index).copied().unwrap_or(0),
    }
}

fn err(origin: &Origin, message: impl Into<String>) -> VeilError {
    VeilError::workspace(origin.to_string(), message)
}

/// The lint rules `veil.yaml` silences; an unknown rule is an error at its line.
fn lint_allow(text: &str, doc: Option<&yaml::LintDoc>) -> Result<Vec<String>> {
    let Some(doc) = doc else {
        return Ok(Vec::new());
    };
    for rule in &doc.allow {
        if !LINT_RULES.contains(&rule.as_str()) {
            // The line: the first line at or after `lint:` that names the rule.
            let start = text
                .lines()
                .position(|l| l.starts_with("lint:"))
                .unwrap_or(0);
            let line = text
                .lines()
                .enumerate()
                .skip(start)
                .find(|(_, l)| l.contains(rule.as_str()))
                .map_or(start + 1, |(i, _)| i + 1);
            return Err(VeilError::workspace(
                format!("veil.yaml:{line}"),
                format!(
                    "lint allows unknown rule '{rule}'; the rules are {}",
                    LINT_RULES.join(", ")
                ),
            ));
        }
    }
    Ok(doc.allow.clone())
}

fn build(dir: &Path, files: Vec<(String, String, yaml::FileDoc)>) -> Result<Workspace> {
    let settings_doc = files[0].2.settings.clone().unwrap_or_default();
    let default_database = normalize_ident(
        settings_doc
            .default_database
            .as_deref()
            .unwrap_or("ANALYTICS"),
    );
    let default_schema =
        normalize_ident(settings_doc.default_schema.as_deref().unwrap_or("PUBLIC"));
    let warnings: Vec<String> = Vec::new();
    let secret_env = settings_doc
        .secret_env
        .clone()
        .unwrap_or_else(|| "VEIL_SECRET".to_string());
    let (secret, secret_is_default) = match std::env::var(&secret_env) {
        Ok(s) if !s.is_empty() => (s, false),
        _ => (DEV_SECRET.to_string(), true),
    };
    let audit = match &settings_doc.audit {
        None => Some(dir.join("state").join("audit.jsonl")),
        Some(serde_norway::Value::Bool(false)) => None,
        Some(serde_norway::Value::String(s)) if s == "off" => None,
        Some(serde_norway::Value::String(s)) if !s.trim().is_empty() => Some(dir.join(s)),
        Some(_) => {
            return Err(VeilError::workspace(
                "veil.yaml",
                "audit must be a path relative to the workspace or off",
            ));
        }
    };
    let salt_scope = match settings_doc.salt_scope.as_deref() {
        None | Some("data_source") => SaltScope::DataSource,
        Some("global") => SaltScope::Global,
        Some(other) => {
            return Err(VeilError::workspace(
                "veil.yaml",
                format!("salt_scope '{other}' must be data_source or global"),
            ));
        }
    };
    let mode = match settings_doc.enforcement.as_deref() {
        None | Some("inlined") => EnforcementMode::Inlined,
        Some("profile_join" | "profile-join") => EnforcementMode::ProfileJoin,
        Some(other) => {
            return Err(VeilError::workspace(
                "veil.yaml",
                format!("enforcement '{other}' must be inlined or profile_join"),
            ));
        }
    };
    let secondary_roles_all = match settings_doc.secondary_roles.as_deref() {
        None | Some("all") => true,
        Some("none") => false,
        Some(other) => {
            return Err(VeilError::workspace(
                "veil.yaml",
                format!("secondary_roles '{other}' must be all or none"),
            ));
        }
    };
    let subscriptions_required = match settings_doc.access.as_deref() {
        None | Some("immuta") => true,
        Some("snowflake") => false,
        Some(other) => {
            return Err(VeilError::workspace(
                "veil.yaml",
                format!(
                    "access '{other}' must be immuta (grant and subscription) or snowflake (grant alone)"
                ),
            ));
        }
    };
    let lint_allow = lint_allow(&files[0].1, files[0].2.lint.as_ref())?;
    let settings = Settings {
        default_database: default_database.clone(),
        default_schema: default_schema.clone(),
        lint_allow,
        secret,
        secret_is_default,
        secret_env,
        salt_scope,
        mode,
        secondary_roles_all,
        subscriptions_required,
        memo_capacity: settings_doc
            .memo_capacity
            .unwrap_or(veil_udfs::DEFAULT_MEMO_CAPACITY),
        administrators: settings_doc
            .administrators
            .iter()
            .map(|a| normalize_ident(a))
            .collect(),
        audit,
        discovery: discovery::settings(dir, &files, &default_database)?,
        lineage_tags: settings_doc
            .lineage
            .as_ref()
            .map(|l| l.tags.clone())
            .unwrap_or_default(),
    };
    let table_name = |text: &str, origin: &Origin| {
        parse_table_name(text, &default_database, &default_schema).map_err(|m| err(origin, m))
    };

    // Tables.
    let mut tables: Vec<Table> = Vec::new();
    for (file, text, doc) in &files {
        let lines = item_lines(text, "tables");
        for (i, t) in doc.tables.iter().enumerate() {
            let origin = at(file, &lines, i);
            let name = table_name(&t.name, &origin)?;
            if tables.iter().any(|x| x.name == name) {
                return Err(err(&origin, format!("table {name} is declared twice")));
            }
            let location = dir.join(&t.location);
            let format = match t.format.as_deref() {
                Some(f) => data::format_from_name(f).ok_or_else(|| err(&origin, format!("table {name}: format '{f}' must be csv, parquet, ndjson or arrow")))?,
                None => data::format_from_path(&location).ok_or_else(|| {
                    err(&origin, format!("table {name}: cannot tell the format of '{}'; add format: csv|parquet|ndjson|arrow", t.location))
                })?,
            };
            let mut columns: Vec<Column> = Vec::new();
            for c in &t.columns {
                let cname = normalize_ident(&c.name);
                let declared = SnowflakeType::parse(&c.r#type)
                    .map_err(|m| err(&origin, format!("table {name}, column {cname}: {m}")))?;
                if columns.iter().any(|x| x.name == cname) {
                    return Err(err(
                        &origin,
                        format!("table {name} declares column {cname} twice"),
                    ));
                }
                let tags = c
                    .tags
                    .iter()
                    .map(|t| ColumnTag::new(t.clone(), TagSource::Manual))
                    .collect();
                columns.push(Column {
                    name: cname,
                    declared,
                    tags,
                    removed_tags: Vec::new(),
                    masking_policy: None,
                });
            }
            if columns.is_empty() {
                return Err(err(&origin, format!("table {name} declares no columns")));
            }
            let event_time = match &t.event_time {
                Some(e) => {
                    let e = normalize_ident(e);
                    match columns.iter().find(|c| c.name == e) {
                        Some(c) if c.declared.is_temporal() => Some(e),
                        Some(c) => {
                            return Err(err(
                                &origin,
                                format!(
                                    "table {name}: event_time column {e} is {} but must be DATE or TIMESTAMP_NTZ",
                                    c.declared
                                ),
                            ));
                        }
                        None => {
                            return Err(err(
                                &origin,
                                format!(
                                    "table {name}: event_time column {e} is not a declared column"
                                ),
                            ));
                        }
                    }
                }
                None => None,
            };
            tables.push(Table {
                name,
                location,
                format,
                event_time,
                owners: t.owners.iter().map(|o| normalize_ident(o)).collect(),
                columns,
                row_access_policy: None,
                rows: None,
                origin,
            });
        }
    }

    // Roles.
    let mut roles: Vec<Role> = Vec::new();
    for (file, text, doc) in &files {
        let lines = item_lines(text, "roles");
        for (i, r) in doc.roles.iter().enumerate() {
            let origin = at(file, &lines, i);
            let name = normalize_ident(&r.name);
            if roles.iter().any(|x| x.name == name) {
                return Err(err(&origin, format!("role {name} is declared twice")));
            }
            // Granted tables and inherited roles may come from DDL scripts:
            // `validate` checks them once the scripts have run.
            let grants = r
                .grants
                .iter()
                .map(|g| table_name(g, &origin))
                .collect::<Result<Vec<_>>>()?;
            roles.push(Role {
                name,
                grants,
                inherits: r.inherits.iter().map(|x| normalize_ident(x)).collect(),
                privileges: Vec::new(),
                origin,
            });
        }
    }

    // Users.
    let mut users: Vec<User> = Vec::new();
    let mut user_names: HashSet<String> = HashSet::new();
    for (file, text, doc) in &files {
        let lines = item_lines(text, "users");
        for (i, u) in doc.users.iter().enumerate() {
            let origin = at(file, &lines, i);
            if let Some(location) = &u.location {
                let alone = u.name.is_empty()
                    && u.roles.is_empty()
                    && u.groups.is_empty()
                    && u.attributes.is_empty()
                    && u.purposes.is_empty()
                    && u.status.is_none();
                if !alone {
                    return Err(err(
                        &origin,
                        "a users table entry has location (and format) only; its rows hold the users",
                    ));
                }
                for user in user_table::read_users(dir, location, u.format.as_deref(), &origin)? {
                    if !user_names.insert(user.name.clone()) {
                        return Err(err(
                            &user.origin,
                            format!("user {} is declared twice", user.name),
                        ));
                    }
                    users.push(user);
                }
                continue;
            }
            if u.name.is_empty() {
                return Err(err(
                    &origin,
                    "a user needs a name (or a location for a users table)",
                ));
            }
            if u.format.is_some() {
                return Err(err(
                    &origin,
                    "format belongs to a users table entry (with location)",
                ));
            }
            let name = normalize_ident(&u.name);
            if !user_names.insert(name.clone()) {
                return Err(err(&origin, format!("user {name} is declared twice")));
            }
            let status = match u.status.as_deref() {
                None | Some("active") => UserStatus::Active,
                Some("staged") => UserStatus::Staged,
                Some("disabled") => UserStatus::Disabled,
                Some(other) => {
                    return Err(err(
                        &origin,
                        format!("user {name}: status '{other}' must be active, staged or disabled"),
                    ));
                }
            };
            // Checked by `validate` after the DDL scripts (which may create them).
            let user_roles: Vec<String> = u.roles.iter().map(|r| normalize_ident(r)).collect();
            let mut attributes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (k, v) in &u.attributes {
                if k.contains('=') {
                    return Err(err(
                        &origin,
                        format!("user {name}: attribute key '{k}' may not contain '='"),
                    ));
                }
                attributes.entry(k.clone()).or_default().extend(v.values());
            }
            users.push(User {
                name,
                status,
                roles: user_roles,
                groups: u.groups.iter().cloned().collect(),
                attributes,
                purposes: u.purposes.iter().cloned().collect(),
                origin,
            });
        }
    }
    for t in &tables {
        for o in &t.owners {
            if !user_names.contains(o) {
                return Err(err(
                    &t.origin,
                    format!("table {}: owner {o} is not a declared user", t.name),
                ));
            }
        }
    }

    // Policies.
    let mut policies: Vec<Policy> = Vec::new();
    let mut names = HashSet::new();
    for (file, text, doc) in &files {
        let lines = item_lines(text, "policies");
        for (i, p) in doc.policies.iter().enumerate() {
            let origin = at(file, &lines, i);
            if !names.insert(p.name.clone()) {
                return Err(err(
                    &origin,
                    format!("policy '{}' is declared twice", p.name),
                ));
            }
            let ctx = yaml::PolicyContext {
                origin: &origin,
                tables: &tables,
                users: &users,
                default_database: &default_database,
                default_schema: &default_schema,
            };
            policies.push(yaml::policy(p, &ctx)?);
        }
    }

    Ok(Workspace {
        dir: dir.to_path_buf(),
        settings,
        tables,
        roles,
        users,
        policies,
        snowflake: SnowflakeObjects::default(),
        warnings,
        journal: CatalogJournal::default(),
    })
}
