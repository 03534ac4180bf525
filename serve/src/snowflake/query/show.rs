//! `SHOW TABLES|VIEWS|SCHEMAS|DATABASES|COLUMNS` and `DESCRIBE TABLE`,
//! answered from the login's own view of the workspace.

use veil_engine::ident::resolve_table;

use super::*;

pub(super) fn like_pattern(options: &ShowStatementOptions) -> Option<String> {
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
pub(super) fn like(pattern: &str, text: &str) -> bool {
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
pub(super) fn scope(
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

pub(super) fn text_batch(
    names: &[&str],
    rows: Vec<Vec<Option<String>>>,
) -> Result<Output, SfError> {
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
pub(super) fn visible(
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

pub(super) fn show_objects(
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

pub(super) fn show_views(
    sf: &SfSession,
    options: &ShowStatementOptions,
) -> Result<Output, SfError> {
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

pub(super) fn show_schemas(
    sf: &SfSession,
    options: &ShowStatementOptions,
) -> Result<Output, SfError> {
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

pub(super) fn show_databases(
    sf: &SfSession,
    options: &ShowStatementOptions,
) -> Result<Output, SfError> {
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
pub(super) async fn show_columns(
    sf: &SfSession,
    options: &ShowStatementOptions,
) -> Result<Output, SfError> {
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
            let Some(t) = resolve_table(&parts, &ctx.database, &ctx.schema) else {
                return Err(SfError::syntax(
                    "SQL compilation error: SHOW COLUMNS IN TABLE needs a table name.",
                ));
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
pub(super) async fn describe_rows(
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
pub(super) async fn describe(sf: &SfSession, name: &ObjectName) -> Result<Output, SfError> {
    let (ctx, session) = sf.current();
    let parts = object_parts(name);
    let Some(t) = resolve_table(&parts, &ctx.database, &ctx.schema) else {
        return Err(SfError::not_authorized(format!(
            "Object '{name}' does not exist or not authorized."
        )));
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
