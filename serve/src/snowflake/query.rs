//! Statements over the Snowflake protocol: bindings spliced in as SQL
//! literals (the tokenizer finds the placeholders, so text inside strings
//! and comments is never touched), the session statements Snowflake
//! clients send (`USE ...`, `ALTER SESSION SET`, `SHOW ...`, `DESCRIBE`)
//! answered from the login's own view of the workspace, and everything else
//! run by the login's [`veil_engine::Session`] — which refuses what users
//! may not run (SPEC rule 10) and applies the policies.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, SecondaryRoles, SelectItem, SetExpr,
    ShowStatementFilter, ShowStatementFilterPosition, ShowStatementInParentType,
    ShowStatementOptions, Statement, TableFactor, Use, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::SnowflakeDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde_json::Value as Json;
use veil_engine::SendableRecordBatchStream;
use veil_engine::ident::normalize_ident;
use veil_engine::model::{SnowflakeType, TableName};

use super::error::SfError;
use super::session::SfSession;

/// The version `CURRENT_VERSION()` reports.
pub const VERSION: &str = concat!("veil-", env!("CARGO_PKG_VERSION"));

/// What a statement produced.
pub enum Output {
    /// Rows streamed from Veil's session.
    Stream {
        /// The rows.
        stream: SendableRecordBatchStream,
        /// Declared types of the columns, where a column shows a table
        /// column.
        declared: Vec<Option<SnowflakeType>>,
    },
    /// Rows built here (session statements, SHOW).
    Batches {
        /// Their schema.
        schema: Arc<Schema>,
        /// The rows.
        batches: Vec<RecordBatch>,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stream { .. } => f.write_str("Output::Stream"),
            Self::Batches { batches, .. } => write!(f, "Output::Batches({})", batches.len()),
        }
    }
}

/// Runs one statement of `sf`'s login.
pub async fn run(sf: &SfSession, sql: &str, bindings: Option<&Json>) -> Result<Output, SfError> {
    let sql = match bindings {
        Some(b) => bind(sql, b)?,
        None => sql.to_string(),
    };
    let statements = match veil_engine::ident::parse_statements(&sql) {
        Ok(s) => s,
        // The session reports the syntax error in its own words.
        Err(_) => return run_in_engine(sf, &sql, None).await,
    };
    if statements.len() > 1 {
        // The session refuses it in its own words (one statement at a time).
        return run_in_engine(sf, &sql, None).await;
    }
    let Some(statement) = statements.into_iter().next() else {
        return Err(SfError::syntax(
            "SQL compilation error: Empty SQL statement.",
        ));
    };
    match statement {
        Statement::Use(u) => use_statement(sf, u),
        Statement::AlterSession {
            set,
            session_params,
        } => {
            for option in &session_params.options {
                let name = option.option_name.to_ascii_uppercase();
                if set && name == "PYTHON_CONNECTOR_QUERY_RESULT_FORMAT" {
                    let value = match &option.option_value {
                        datafusion::sql::sqlparser::ast::helpers::key_value_options::KeyValueOptionKind::Single(v) => match &v.value {
                            Value::SingleQuotedString(s) => s.to_ascii_uppercase(),
                            other => other.to_string().to_ascii_uppercase(),
                        },
                        _ => String::new(),
                    };
                    sf.update(|c| c.json_results = value == "JSON");
                } else if !set && name == "PYTHON_CONNECTOR_QUERY_RESULT_FORMAT" {
                    sf.update(|c| c.json_results = false);
                }
            }
            Ok(status("Statement executed successfully."))
        }
        Statement::ShowTables { show_options, .. } => show_objects(sf, &show_options, false),
        Statement::ShowViews { show_options, .. } => show_views(sf, &show_options),
        Statement::ShowObjects(o) => show_objects(sf, &o.show_options, true),
        Statement::ShowSchemas { show_options, .. } => show_schemas(sf, &show_options),
        Statement::ShowDatabases { show_options, .. } => show_databases(sf, &show_options),
        Statement::ShowColumns { show_options, .. } => show_columns(sf, &show_options).await,
        Statement::ExplainTable { table_name, .. } => describe(sf, &table_name).await,
        mut other => {
            let (ctx, _) = sf.current();
            let version = sf.engine().current();
            let settings = &version.workspace().settings;
            let qualify =
                ctx.database != settings.default_database || ctx.schema != settings.default_schema;
            let mut context = ContextFunctions {
                database: ctx.database.clone(),
                schema: ctx.schema.clone(),
                warehouse: ctx.warehouse.clone(),
                changed: false,
            };
            let _ = other.visit(&mut context);
            if qualify {
                let mut q = Qualify::new(&other, &ctx.database, &ctx.schema);
                let _ = other.visit(&mut q);
                context.changed |= q.changed;
            }
            if context.changed {
                run_in_engine(sf, &other.to_string(), Some(&ctx)).await
            } else {
                run_in_engine(sf, &sql, Some(&ctx)).await
            }
        }
    }
}

/// Hands a statement to the login's Veil session.
async fn run_in_engine(
    sf: &SfSession,
    sql: &str,
    _ctx: Option<&super::session::SessionContext>,
) -> Result<Output, SfError> {
    let (_, session) = sf.current();
    let stream = session.sql_stream(sql).await.map_err(SfError::from)?;
    let declared = declared_types(sf, &session, sql, &stream.schema());
    Ok(Output::Stream { stream, declared })
}

/// The declared type of each result column that shows a column of a table
/// the statement reads under the same name (one declared type among them),
/// for VARCHAR lengths and NUMBER precision in the metadata.
fn declared_types(
    sf: &SfSession,
    session: &veil_engine::Session,
    sql: &str,
    schema: &Schema,
) -> Vec<Option<SnowflakeType>> {
    let Ok(checked) = session.check(sql) else {
        return vec![None; schema.fields().len()];
    };
    let version = sf.engine().current();
    let ws = version.workspace();
    schema
        .fields()
        .iter()
        .map(|f| {
            let found: BTreeSet<String> = checked
                .tables
                .iter()
                .filter_map(|t| ws.table(t))
                .flat_map(|t| t.columns.iter())
                .filter(|c| c.name == *f.name())
                .map(|c| c.declared.to_string())
                .collect();
            if found.len() != 1 {
                return None;
            }
            checked
                .tables
                .iter()
                .filter_map(|t| ws.table(t))
                .flat_map(|t| t.columns.iter())
                .find(|c| c.name == *f.name())
                .map(|c| c.declared)
        })
        .collect()
}

/// A one-row `status` result, as Snowflake answers session statements.
fn status(message: &str) -> Output {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from(vec![message])) as ArrayRef],
    );
    Output::Batches {
        batches: batch.into_iter().collect(),
        schema,
    }
}

fn object_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident_text(i),
            other => normalize_ident(&other.to_string()),
        })
        .collect()
}

fn ident_text(i: &Ident) -> String {
    // parse_statements has upper-cased unquoted words already.
    i.value.clone()
}

fn use_statement(sf: &SfSession, u: Use) -> Result<Output, SfError> {
    let (ctx, session) = sf.current();
    let granted = session.granted_tables();
    match u {
        Use::Role(name) => {
            let role = object_parts(&name).join(".");
            sf.use_role(&role)?;
            Ok(status("Statement executed successfully."))
        }
        Use::SecondaryRoles(which) => {
            let roles = match which {
                SecondaryRoles::All => {
                    let version = sf.engine().current();
                    let user = version.workspace().user(&sf.user).map(|u| u.roles.clone());
                    Some(user.unwrap_or_default())
                }
                SecondaryRoles::None => Some(Vec::new()),
                SecondaryRoles::List(list) => Some(list.iter().map(ident_text).collect()),
            };
            sf.use_secondary_roles(roles)?;
            Ok(status("Statement executed successfully."))
        }
        Use::Database(name) | Use::Catalog(name) => {
            let parts = object_parts(&name);
            let [db] = parts.as_slice() else {
                return Err(does_not_exist("Database", &name.to_string()));
            };
            if !granted.iter().any(|t| t.database == *db) {
                return Err(does_not_exist("Database", db));
            }
            let db = db.clone();
            // Snowflake's USE DATABASE selects its PUBLIC schema.
            sf.update(|c| {
                c.database = db;
                c.schema = "PUBLIC".to_string();
            });
            Ok(status("Statement executed successfully."))
        }
        Use::Schema(name) | Use::Object(name) => {
            let parts = object_parts(&name);
            let (db, schema) = match parts.as_slice() {
                [s] => (ctx.database.clone(), s.clone()),
                [d, s] => (d.clone(), s.clone()),
                _ => return Err(does_not_exist("Schema", &name.to_string())),
            };
            if !granted
                .iter()
                .any(|t| t.database == db && t.schema == schema)
            {
                return Err(does_not_exist("Schema", &format!("{db}.{schema}")));
            }
            sf.update(|c| {
                c.database = db;
                c.schema = schema;
            });
            Ok(status("Statement executed successfully."))
        }
        Use::Warehouse(name) => {
            let w = object_parts(&name).join(".");
            sf.update(|c| c.warehouse = Some(w));
            Ok(status("Statement executed successfully."))
        }
        Use::Default => Ok(status("Statement executed successfully.")),
    }
}

fn does_not_exist(kind: &str, name: &str) -> SfError {
    SfError::not_authorized(format!(
        "SQL compilation error: {kind} '{name}' does not exist or not authorized."
    ))
}

/// Replaces context functions Veil's engine does not know
/// (`CURRENT_DATABASE()`, `CURRENT_SCHEMA()`, `CURRENT_WAREHOUSE()`,
/// `CURRENT_VERSION()`, ...) by the session's values; a bare call in the
/// select list keeps Snowflake's column name.
struct ContextFunctions {
    database: String,
    schema: String,
    warehouse: Option<String>,
    changed: bool,
}

impl ContextFunctions {
    fn value(&self, expr: &Expr) -> Option<(String, Option<String>)> {
        let Expr::Function(f) = expr else {
            return None;
        };
        if f.name.0.len() != 1 {
            return None;
        }
        let name = f.name.to_string().to_ascii_uppercase();
        let args_empty = matches!(
            &f.args,
            datafusion::sql::sqlparser::ast::FunctionArguments::List(l) if l.args.is_empty()
        ) || matches!(
            &f.args,
            datafusion::sql::sqlparser::ast::FunctionArguments::None
        );
        if !args_empty {
            return None;
        }
        let value = match name.as_str() {
            "CURRENT_DATABASE" => Some(self.database.clone()),
            "CURRENT_SCHEMA" => Some(self.schema.clone()),
            "CURRENT_WAREHOUSE" => self.warehouse.clone(),
            "CURRENT_VERSION" => Some(VERSION.to_string()),
            "CURRENT_ACCOUNT" | "CURRENT_ACCOUNT_NAME" => Some("VEIL".to_string()),
            "CURRENT_REGION" => Some("LOCAL".to_string()),
            "CURRENT_CLIENT" => Some(VERSION.to_string()),
            _ => return None,
        };
        Some((format!("{name}()"), value))
    }

    fn literal(value: Option<String>) -> Expr {
        match value {
            Some(v) => Expr::value(Value::SingleQuotedString(v)),
            None => Expr::Cast {
                kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                expr: Box::new(Expr::value(Value::Null)),
                data_type: datafusion::sql::sqlparser::ast::DataType::Varchar(None),
                format: None,
                array: false,
            },
        }
    }
}

impl VisitorMut for ContextFunctions {
    type Break = ();

    fn pre_visit_query(
        &mut self,
        query: &mut datafusion::sql::sqlparser::ast::Query,
    ) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) = item
                    && let Some((name, value)) = self.value(expr)
                {
                    *item = SelectItem::ExprWithAlias {
                        expr: Self::literal(value),
                        alias: Ident::with_quote('"', name),
                    };
                    self.changed = true;
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some((_, value)) = self.value(expr) {
            *expr = Self::literal(value);
            self.changed = true;
        }
        ControlFlow::Continue(())
    }
}

/// Qualifies table names with the session's database and schema after
/// `USE DATABASE` / `USE SCHEMA` (Veil's engine resolves unqualified names
/// against the workspace's defaults). Names of CTEs stay as written.
struct Qualify {
    database: String,
    schema: String,
    ctes: HashSet<String>,
    changed: bool,
}

impl Qualify {
    fn new(statement: &Statement, database: &str, schema: &str) -> Self {
        struct Ctes(HashSet<String>);
        impl datafusion::sql::sqlparser::ast::Visitor for Ctes {
            type Break = ();
            fn pre_visit_query(
                &mut self,
                q: &datafusion::sql::sqlparser::ast::Query,
            ) -> ControlFlow<()> {
                if let Some(with) = &q.with {
                    for c in &with.cte_tables {
                        self.0.insert(ident_text(&c.alias.name));
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut ctes = Ctes(HashSet::new());
        let _ = datafusion::sql::sqlparser::ast::Visit::visit(statement, &mut ctes);
        Self {
            database: database.to_string(),
            schema: schema.to_string(),
            ctes: ctes.0,
            changed: false,
        }
    }
}

impl VisitorMut for Qualify {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args, .. } = factor
            && args.is_none()
        {
            let quoted = |s: &str| ObjectNamePart::Identifier(Ident::with_quote('"', s));
            match name.0.len() {
                1 => {
                    let bare = object_parts(name).join("");
                    if !self.ctes.contains(&bare) {
                        name.0.insert(0, quoted(&self.schema));
                        name.0.insert(0, quoted(&self.database));
                        self.changed = true;
                    }
                }
                2 => {
                    name.0.insert(0, quoted(&self.database));
                    self.changed = true;
                }
                _ => {}
            }
        }
        ControlFlow::Continue(())
    }
}

/// Splices bindings into `sql` as literals: `?` placeholders in order, `:N`
/// by position, `:name` by name.
pub fn bind(sql: &str, bindings: &Json) -> Result<String, SfError> {
    let Json::Object(map) = bindings else {
        return Err(SfError::binding("Bindings must be an object."));
    };
    if map.is_empty() {
        return Ok(sql.to_string());
    }
    let dialect = SnowflakeDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SfError::syntax(format!("SQL compilation error: {e}")))?;
    let lines = line_starts(sql);
    let offset = |loc: datafusion::sql::sqlparser::tokenizer::Location| -> Option<usize> {
        let line_start = *lines.get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
        let col = usize::try_from(loc.column).ok()?.checked_sub(1)?;
        let rest = sql.get(line_start..)?;
        Some(line_start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i))
    };
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0usize;
    let mut next_positional = 1usize;
    let mut i = 0;
    let significant = |j: usize| !matches!(tokens[j].token, Token::Whitespace(_));
    while i < tokens.len() {
        let t = &tokens[i];
        let replacement: Option<(String, usize)> = match &t.token {
            Token::Placeholder(p) if p == "?" => {
                let key = next_positional.to_string();
                next_positional += 1;
                Some((key, i))
            }
            Token::Colon => {
                let prev_is_value = (0..i).rev().find(|j| significant(*j)).is_some_and(|j| {
                    // A name or a closing bracket before `:` makes it a path
                    // (`v:path`); a keyword (`SELECT :1`) does not.
                    match &tokens[j].token {
                        Token::Word(w) => w.keyword == Keyword::NoKeyword,
                        Token::RParen | Token::RBracket | Token::Number(..) => true,
                        _ => false,
                    }
                });
                match tokens.get(i + 1).map(|n| &n.token) {
                    Some(Token::Number(n, _)) if !prev_is_value => Some((n.clone(), i + 1)),
                    Some(Token::Word(w)) if !prev_is_value && w.quote_style.is_none() => {
                        Some((w.value.clone(), i + 1))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((key, last)) = replacement {
            let value = map
                .get(&key)
                .or_else(|| {
                    map.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                        .map(|(_, v)| v)
                })
                .ok_or_else(|| SfError::binding(format!("Bind variable {key} not set.")))?;
            let (Some(start), Some(end)) = (offset(t.span.start), offset(tokens[last].span.end))
            else {
                return Err(SfError::binding(
                    "The statement's placeholders could not be located.",
                ));
            };
            out.push_str(&sql[copied..start]);
            out.push_str(&literal(&key, value)?);
            copied = end;
            i = last + 1;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

fn line_starts(sql: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    starts
}

/// One binding `{"type": "FIXED", "value": "10"}` as a SQL literal.
fn literal(key: &str, binding: &Json) -> Result<String, SfError> {
    let ty = binding
        .get("type")
        .and_then(Json::as_str)
        .unwrap_or("TEXT")
        .to_ascii_uppercase();
    let value = match binding.get("value") {
        None | Some(Json::Null) => return Ok("NULL".to_string()),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        Some(Json::Bool(b)) => b.to_string(),
        Some(Json::Array(_)) => {
            return Err(SfError::unsupported(
                "Array bindings (executemany) are not supported: Veil user queries are read-only.",
            ));
        }
        Some(Json::Object(_)) => {
            return Err(SfError::binding(format!(
                "Bind variable {key} has an object value."
            )));
        }
    };
    let bad = || {
        SfError::binding(format!(
            "Bind variable {key} is not a valid {ty}: '{value}'."
        ))
    };
    match ty.as_str() {
        "FIXED" | "REAL" => {
            if !is_number(&value) {
                return Err(bad());
            }
            Ok(if value.starts_with('-') {
                format!("({value})")
            } else {
                value
            })
        }
        "BOOLEAN" => match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok("TRUE".into()),
            "false" | "0" => Ok("FALSE".into()),
            _ => Err(bad()),
        },
        "DATE" => {
            // Milliseconds since the epoch.
            let ms: i64 = value.parse().map_err(|_| bad())?;
            let d = chrono::DateTime::from_timestamp_millis(ms).ok_or_else(bad)?;
            Ok(format!("DATE '{}'", d.format("%Y-%m-%d")))
        }
        "TIMESTAMP_NTZ" | "TIMESTAMP_LTZ" | "TIMESTAMP_TZ" | "TIMESTAMP" => {
            // Nanoseconds since the epoch (a time zone offset may follow).
            let nanos: i128 = value
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|_| bad())?;
            let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| bad())?;
            let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| bad())?;
            let d = chrono::DateTime::from_timestamp(secs, sub).ok_or_else(bad)?;
            Ok(format!(
                "TIMESTAMP '{}'",
                d.naive_utc().format("%Y-%m-%d %H:%M:%S%.9f")
            ))
        }
        "TIME" => {
            let nanos: i64 = value.parse().map_err(|_| bad())?;
            let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| bad())?;
            let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| bad())?;
            let t =
                chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, sub).ok_or_else(bad)?;
            Ok(format!("'{}'", t.format("%H:%M:%S%.9f")))
        }
        "TEXT" | "ANY" | "VARIANT" | "CHAR" => Ok(quote(&value)),
        "BINARY" => {
            if !value.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            Ok(format!("X'{value}'"))
        }
        _ => Err(SfError::binding(format!(
            "Bind variable {key} has type {ty}, which Veil does not bind."
        ))),
    }
}

/// A Snowflake string literal: quotes doubled, backslashes escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => (digits(int) || int.is_empty()) && (digits(f) || (f.is_empty() && digits(int))),
        None => digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        digits(e)
    });
    mantissa_ok && exponent_ok
}

// ---- SHOW and DESCRIBE: only what the login may see ----

fn like_pattern(options: &ShowStatementOptions) -> Option<String> {
    match &options.filter_position {
        Some(ShowStatementFilterPosition::Infix(ShowStatementFilter::Like(p)))
        | Some(ShowStatementFilterPosition::Suffix(ShowStatementFilter::Like(p))) => {
            Some(p.clone())
        }
        Some(ShowStatementFilterPosition::Infix(ShowStatementFilter::ILike(p)))
        | Some(ShowStatementFilterPosition::Suffix(ShowStatementFilter::ILike(p))) => {
            Some(p.clone())
        }
        _ => None,
    }
}

/// SQL LIKE, case-insensitive (as SHOW ... LIKE is in Snowflake).
fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_uppercase().chars().collect();
    let t: Vec<char> = text.to_uppercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// The scope of `SHOW ... IN [DATABASE|SCHEMA] name`.
fn scope(
    sf: &SfSession,
    options: &ShowStatementOptions,
    default_to_schema: bool,
) -> (Option<String>, Option<String>) {
    let (ctx, _) = sf.current();
    match &options.show_in {
        Some(show_in) => {
            let parts = show_in
                .parent_name
                .as_ref()
                .map(object_parts)
                .unwrap_or_default();
            match (&show_in.parent_type, parts.as_slice()) {
                (Some(ShowStatementInParentType::Account), _) => (None, None),
                (Some(ShowStatementInParentType::Database), [d]) => (Some(d.clone()), None),
                (_, [d, s]) => (Some(d.clone()), Some(s.clone())),
                (Some(ShowStatementInParentType::Schema), [s]) => {
                    (Some(ctx.database.clone()), Some(s.clone()))
                }
                (None, [d]) => (Some(d.clone()), None),
                _ => (Some(ctx.database.clone()), Some(ctx.schema.clone())),
            }
        }
        None if default_to_schema => (Some(ctx.database.clone()), Some(ctx.schema.clone())),
        None => (Some(ctx.database), None),
    }
}

fn text_batch(names: &[&str], rows: Vec<Vec<Option<String>>>) -> Result<Output, SfError> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| SfError::query_failed(format!("SHOW could not build its result: {e}")))?;
    Ok(Output::Batches {
        schema,
        batches: vec![batch],
    })
}

/// The tables and views the login may see in a scope, with their kind.
fn visible(
    sf: &SfSession,
    database: Option<&str>,
    schema: Option<&str>,
) -> Vec<(TableName, &'static str)> {
    let (_, session) = sf.current();
    let version = sf.engine().current();
    let ws = version.workspace();
    session
        .granted_tables()
        .into_iter()
        .filter(|t| database.is_none_or(|d| t.database == d))
        .filter(|t| schema.is_none_or(|s| t.schema == s))
        .map(|t| {
            let kind = if ws.snowflake.view(&t).is_some() {
                "VIEW"
            } else {
                "TABLE"
            };
            (t, kind)
        })
        .collect()
}

fn show_objects(
    sf: &SfSession,
    options: &ShowStatementOptions,
    objects: bool,
) -> Result<Output, SfError> {
    let (db, schema) = scope(sf, options, true);
    let pattern = like_pattern(options);
    let rows: Vec<Vec<Option<String>>> = visible(sf, db.as_deref(), schema.as_deref())
        .into_iter()
        .filter(|(_, kind)| objects || *kind == "TABLE")
        .filter(|(t, _)| pattern.as_deref().is_none_or(|p| like(p, &t.table)))
        .map(|(t, kind)| {
            vec![
                None,
                Some(t.table),
                Some(kind.to_string()),
                Some(t.database),
                Some(t.schema),
                Some(String::new()),
                None,
            ]
        })
        .collect();
    text_batch(
        &[
            "created_on",
            "name",
            "kind",
            "database_name",
            "schema_name",
            "comment",
            "owner",
        ],
        rows,
    )
}

fn show_views(sf: &SfSession, options: &ShowStatementOptions) -> Result<Output, SfError> {
    let (db, schema) = scope(sf, options, true);
    let pattern = like_pattern(options);
    let rows = visible(sf, db.as_deref(), schema.as_deref())
        .into_iter()
        .filter(|(_, kind)| *kind == "VIEW")
        .filter(|(t, _)| pattern.as_deref().is_none_or(|p| like(p, &t.table)))
        .map(|(t, _)| vec![None, Some(t.table), Some(t.database), Some(t.schema)])
        .collect();
    text_batch(
        &["created_on", "name", "database_name", "schema_name"],
        rows,
    )
}

fn show_schemas(sf: &SfSession, options: &ShowStatementOptions) -> Result<Output, SfError> {
    let (ctx, _) = sf.current();
    let (db, _) = scope(sf, options, false);
    let pattern = like_pattern(options);
    let schemas: BTreeSet<(String, String)> = visible(sf, db.as_deref(), None)
        .into_iter()
        .map(|(t, _)| (t.database, t.schema))
        .collect();
    let rows = schemas
        .into_iter()
        .filter(|(_, s)| pattern.as_deref().is_none_or(|p| like(p, s)))
        .map(|(d, s)| {
            let current = d == ctx.database && s == ctx.schema;
            vec![
                None,
                Some(s),
                Some("N".to_string()),
                Some(if current { "Y" } else { "N" }.to_string()),
                Some(d),
                None,
                Some(String::new()),
            ]
        })
        .collect();
    text_batch(
        &[
            "created_on",
            "name",
            "is_default",
            "is_current",
            "database_name",
            "owner",
            "comment",
        ],
        rows,
    )
}

fn show_databases(sf: &SfSession, options: &ShowStatementOptions) -> Result<Output, SfError> {
    let (ctx, _) = sf.current();
    let pattern = like_pattern(options);
    let dbs: BTreeSet<String> = visible(sf, None, None)
        .into_iter()
        .map(|(t, _)| t.database)
        .collect();
    let rows = dbs
        .into_iter()
        .filter(|d| pattern.as_deref().is_none_or(|p| like(p, d)))
        .map(|d| {
            let current = d == ctx.database;
            vec![
                None,
                Some(d),
                Some("N".to_string()),
                Some(if current { "Y" } else { "N" }.to_string()),
                Some(String::new()),
                None,
                Some(String::new()),
            ]
        })
        .collect();
    text_batch(
        &[
            "created_on",
            "name",
            "is_default",
            "is_current",
            "origin",
            "owner",
            "comment",
        ],
        rows,
    )
}

/// The columns of the tables in scope, from each table's `DESCRIBE` (so
/// exactly what the engine lets the login see).
async fn show_columns(sf: &SfSession, options: &ShowStatementOptions) -> Result<Output, SfError> {
    let (ctx, session) = sf.current();
    let tables: Vec<TableName> = match &options.show_in {
        Some(show_in)
            if matches!(
                show_in.parent_type,
                Some(ShowStatementInParentType::Table) | Some(ShowStatementInParentType::View)
            ) || show_in.parent_type.is_none()
                && show_in.parent_name.as_ref().is_some_and(|n| n.0.len() == 3) =>
        {
            let parts = show_in
                .parent_name
                .as_ref()
                .map(object_parts)
                .unwrap_or_default();
            let t = match parts.as_slice() {
                [t] => TableName {
                    database: ctx.database.clone(),
                    schema: ctx.schema.clone(),
                    table: t.clone(),
                },
                [s, t] => TableName {
                    database: ctx.database.clone(),
                    schema: s.clone(),
                    table: t.clone(),
                },
                [d, s, t] => TableName {
                    database: d.clone(),
                    schema: s.clone(),
                    table: t.clone(),
                },
                _ => {
                    return Err(SfError::syntax(
                        "SQL compilation error: SHOW COLUMNS IN TABLE needs a table name.",
                    ));
                }
            };
            if !session.granted_tables().contains(&t) {
                return Err(SfError::not_authorized(format!(
                    "Object '{t}' does not exist or not authorized."
                )));
            }
            vec![t]
        }
        _ => {
            let (db, schema) = scope(sf, options, false);
            visible(sf, db.as_deref(), schema.as_deref())
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        }
    };
    let pattern = like_pattern(options);
    let mut rows = Vec::new();
    for t in tables {
        for (name, ty, _) in describe_rows(&session, &t).await? {
            if pattern.as_deref().is_some_and(|p| !like(p, &name)) {
                continue;
            }
            let data_type = serde_json::json!({"type": ty, "nullable": true}).to_string();
            rows.push(vec![
                Some(t.table.clone()),
                Some(t.schema.clone()),
                Some(name),
                Some(data_type),
                Some("true".to_string()),
                Some(String::new()),
                Some("COLUMN".to_string()),
                Some(String::new()),
                Some(String::new()),
                Some(t.database.clone()),
                Some(String::new()),
            ]);
        }
    }
    text_batch(
        &[
            "table_name",
            "schema_name",
            "column_name",
            "data_type",
            "null?",
            "default",
            "kind",
            "expression",
            "comment",
            "database_name",
            "autoincrement",
        ],
        rows,
    )
}

/// (name, type, masking policy) of a table's columns, from the engine's
/// `DESCRIBE` (which refuses tables the login may not see).
async fn describe_rows(
    session: &veil_engine::Session,
    t: &TableName,
) -> Result<Vec<(String, String, Option<String>)>, SfError> {
    let sql = format!("DESCRIBE TABLE {t}");
    let batches = session.sql(&sql).await.map_err(SfError::from)?;
    let mut rows = Vec::new();
    for b in &batches {
        let col = |i: usize| -> Result<StringArray, SfError> {
            let a = datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8)
                .map_err(|e| SfError::query_failed(e.to_string()))?;
            Ok(a.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .unwrap_or_else(|| StringArray::from(Vec::<Option<String>>::new())))
        };
        if b.num_columns() < 3 {
            continue;
        }
        let (names, types, policies) = (col(0)?, col(1)?, col(2)?);
        use datafusion::arrow::array::Array;
        for r in 0..b
            .num_rows()
            .min(names.len())
            .min(types.len())
            .min(policies.len())
        {
            rows.push((
                names.value(r).to_string(),
                types.value(r).to_string(),
                (!policies.is_null(r)).then(|| policies.value(r).to_string()),
            ));
        }
    }
    Ok(rows)
}

/// `DESCRIBE TABLE t` in Snowflake's columns.
async fn describe(sf: &SfSession, name: &ObjectName) -> Result<Output, SfError> {
    let (ctx, session) = sf.current();
    let parts = object_parts(name);
    let t = match parts.as_slice() {
        [t] => TableName {
            database: ctx.database.clone(),
            schema: ctx.schema.clone(),
            table: t.clone(),
        },
        [s, t] => TableName {
            database: ctx.database.clone(),
            schema: s.clone(),
            table: t.clone(),
        },
        [d, s, t] => TableName {
            database: d.clone(),
            schema: s.clone(),
            table: t.clone(),
        },
        _ => {
            return Err(SfError::not_authorized(format!(
                "Object '{name}' does not exist or not authorized."
            )));
        }
    };
    let rows = describe_rows(&session, &t)
        .await?
        .into_iter()
        .map(|(n, ty, policy)| {
            vec![
                Some(n),
                Some(ty),
                Some("COLUMN".to_string()),
                Some("Y".to_string()),
                None,
                Some("N".to_string()),
                Some("N".to_string()),
                None,
                None,
                None,
                policy,
            ]
        })
        .collect();
    text_batch(
        &[
            "name",
            "type",
            "kind",
            "null?",
            "default",
            "primary key",
            "unique key",
            "check",
            "expression",
            "comment",
            "policy name",
        ],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qmark_bindings_become_literals_in_order() {
        let sql = bind(
            "select * from t where a = ? and b = ? and c = '?'",
            &json!({"1": {"type": "FIXED", "value": "-5"}, "2": {"type": "TEXT", "value": "it's \\ ok"}}),
        )
        .unwrap();
        assert_eq!(
            sql,
            "select * from t where a = (-5) and b = 'it''s \\\\ ok' and c = '?'"
        );
    }

    #[test]
    fn numeric_and_named_bindings() {
        let sql = bind(
            "select :2, :1, :name, x::int, v:path",
            &json!({"1": {"type": "TEXT", "value": "a"}, "2": {"type": "BOOLEAN", "value": "true"}, "name": {"type": "FIXED", "value": "7"}}),
        )
        .unwrap();
        assert_eq!(sql, "select TRUE, 'a', 7, x::int, v:path");
    }

    #[test]
    fn bindings_refuse_what_is_not_their_type() {
        let e = bind(
            "select ?",
            &json!({"1": {"type": "FIXED", "value": "1; drop"}}),
        )
        .unwrap_err();
        assert_eq!(e.code, "002049");
        let e = bind("select ?", &json!({})).map(|_| ());
        assert!(e.is_ok(), "no bindings: the text is unchanged");
        let e = bind(
            "select ?, ?",
            &json!({"1": {"type": "FIXED", "value": "1"}}),
        )
        .unwrap_err();
        assert!(e.message.contains("Bind variable 2"));
    }

    #[test]
    fn dates_and_timestamps_bind_from_epoch_units() {
        let sql = bind(
            "select ?, ?",
            &json!({"1": {"type": "DATE", "value": "86400000"}, "2": {"type": "TIMESTAMP_NTZ", "value": "1500000000"}}),
        )
        .unwrap();
        assert_eq!(
            sql,
            "select DATE '1970-01-02', TIMESTAMP '1970-01-01 00:00:01.500000000'"
        );
    }

    #[test]
    fn like_matches_as_show_does() {
        assert!(like("CUST%", "customers"));
        assert!(like("_RDERS", "ORDERS"));
        assert!(!like("CUST", "CUSTOMERS"));
    }

    #[test]
    fn numbers_are_validated() {
        for ok in ["1", "-1.5", "1e10", "2.", ".5", "1E-3"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in ["", "-", "1-1", "1e", "0x10", "1 OR 1=1", "."] {
            assert!(!is_number(bad), "{bad}");
        }
    }
}
