//! `pg_catalog` and `information_schema` for PostgreSQL clients (psql's
//! `\dt`, `\d TABLE`, `\dn`; DBeaver's and Metabase's discovery queries),
//! listing only what the login may see: the tables its session is granted,
//! with their declared column types (masked columns keep their declared
//! type).
//!
//! Catalog queries run in a small DataFusion context of their own, per
//! connection, that holds these catalog tables and nothing else: no user
//! table is registered there, so a catalog query cannot read user data and
//! no path around Veil's statement gate opens. A query that names a user
//! table and a catalog table together fails as not authorized.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{Statement, VisitMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use veil_engine::model::{SnowflakeType, TableName};
use veil_engine::{Engine, Session};

use super::auth::SERVER_VERSION;

/// The schema every catalog table lives in.
pub(super) const PG_CATALOG: &str = "pg_catalog";
/// The SQL-standard catalog schema.
const INFORMATION_SCHEMA: &str = "information_schema";
/// `pg_catalog`'s namespace oid (PostgreSQL's).
const PG_CATALOG_OID: i64 = 11;
/// `information_schema`'s namespace oid.
const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// The owner every object is listed with.
const OWNER_OID: i64 = 10;
/// The owner's name.
const OWNER: &str = "veil";
/// The first oid given to a listed schema; tables follow.
const FIRST_OID: i64 = 16_384;

/// A connection's catalog context, rebuilt when its session's policy
/// version changes.
#[derive(Default)]
pub(crate) struct CatalogCache {
    inner: Mutex<Option<(u64, SessionContext)>>,
}

impl CatalogCache {
    /// The catalog context for `session`'s current view.
    pub(crate) fn context(&self, engine: &Engine, session: &Session) -> DfResult<SessionContext> {
        // `check` refreshes the session's binding to the current version.
        let _ = session.check("SELECT 1");
        let version = session.version();
        let mut slot = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, ctx)) = slot.as_ref()
            && *v == version
        {
            return Ok(ctx.clone());
        }
        let ctx = build(engine, session)?;
        *slot = Some((version, ctx.clone()));
        Ok(ctx)
    }
}

/// How a Veil name shows in PostgreSQL's catalog: Snowflake stores unquoted
/// names upper-case, PostgreSQL lower-case, so an all-upper-case name shows
/// lower-case (and `\d customers` finds `CUSTOMERS`); any other stays exact.
pub(crate) fn pg_name(name: &str) -> String {
    if name.chars().any(|c| c.is_lowercase()) {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

/// A declared type as PostgreSQL names it: type oid, type modifier,
/// `format_type` text, length in bytes (-1: variable).
fn pg_column_type(t: &SnowflakeType) -> (i64, i32, String, i16) {
    match t {
        SnowflakeType::Varchar(n) => (
            1043,
            i32::try_from(*n).unwrap_or(i32::MAX - 4).saturating_add(4),
            format!("character varying({n})"),
            -1,
        ),
        SnowflakeType::Number { precision, scale } => (
            1700,
            ((i32::from(*precision) << 16) | i32::from(*scale)) + 4,
            format!("numeric({precision},{scale})"),
            -1,
        ),
        SnowflakeType::Float => (701, -1, "double precision".into(), 8),
        SnowflakeType::Boolean => (16, -1, "boolean".into(), 1),
        SnowflakeType::Date => (1082, -1, "date".into(), 4),
        SnowflakeType::TimestampNtz => (1114, -1, "timestamp without time zone".into(), 8),
    }
}

/// The built-in types clients look up: oid, name, length, category.
const TYPES: &[(i64, &str, i16, &str)] = &[
    (16, "bool", 1, "B"),
    (17, "bytea", -1, "U"),
    (18, "char", 1, "Z"),
    (19, "name", 64, "S"),
    (20, "int8", 8, "N"),
    (21, "int2", 2, "N"),
    (23, "int4", 4, "N"),
    (25, "text", -1, "S"),
    (26, "oid", 4, "N"),
    (700, "float4", 4, "N"),
    (701, "float8", 8, "N"),
    (1042, "bpchar", -1, "S"),
    (1043, "varchar", -1, "S"),
    (1082, "date", 4, "D"),
    (1114, "timestamp", 8, "D"),
    (1184, "timestamptz", 8, "D"),
    (1700, "numeric", -1, "N"),
];

/// `format_type(oid, typmod)` as PostgreSQL prints it.
fn format_type(oid: i64, typmod: i64) -> Option<String> {
    let base = match oid {
        16 => "boolean",
        17 => "bytea",
        18 => "\"char\"",
        19 => "name",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        700 => "real",
        701 => "double precision",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1700 => "numeric",
        _ => return Some("???".into()),
    };
    Some(match oid {
        1043 | 1042 if typmod >= 4 => format!("{base}({})", typmod - 4),
        1700 if typmod >= 4 => {
            let m = typmod - 4;
            format!("{base}({},{})", (m >> 16) & 0xffff, m & 0xffff)
        }
        _ => base.to_string(),
    })
}

/// Columns of one catalog table, built row by row.
struct TableBuilder {
    fields: Vec<Field>,
    columns: Vec<Vec<ScalarValue>>,
}

impl TableBuilder {
    fn new(fields: &[(&str, DataType)]) -> Self {
        Self {
            fields: fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect(),
            columns: vec![Vec::new(); fields.len()],
        }
    }

    fn row(&mut self, values: Vec<ScalarValue>) {
        for (c, v) in self.columns.iter_mut().zip(values) {
            c.push(v);
        }
    }

    fn build(self) -> DfResult<Arc<MemTable>> {
        let schema = Arc::new(Schema::new(self.fields));
        let arrays = self
            .columns
            .into_iter()
            .zip(schema.fields())
            .map(|(values, f)| {
                if values.is_empty() {
                    Ok(datafusion::arrow::array::new_empty_array(f.data_type()))
                } else {
                    ScalarValue::iter_to_array(values)
                }
            })
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

fn s(v: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(v.to_string()))
}
fn i8v(v: i64) -> ScalarValue {
    ScalarValue::Int64(Some(v))
}
fn i4v(v: i32) -> ScalarValue {
    ScalarValue::Int32(Some(v))
}
fn i2v(v: i16) -> ScalarValue {
    ScalarValue::Int16(Some(v))
}
fn b(v: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(v))
}
fn null_s() -> ScalarValue {
    ScalarValue::Utf8(None)
}

use DataType::{Boolean as BOOL, Int16 as I2, Int32 as I4, Int64 as I8, Utf8 as TEXT};

/// One listed table.
struct Listed {
    oid: i64,
    schema_oid: i64,
    schema: String,
    name: String,
    columns: Vec<(String, SnowflakeType)>,
}

/// Catalogs that are empty in Veil: indexes, constraints, inheritance,
/// defaults, comments, functions, triggers, policies, rules, views, ...
pub(crate) const EMPTY_CATALOGS: &[(&str, &[(&str, DataType)])] = &[
    (
        "pg_description",
        &[
            ("objoid", I8),
            ("classoid", I8),
            ("objsubid", I4),
            ("description", TEXT),
        ],
    ),
    (
        "pg_shdescription",
        &[("objoid", I8), ("classoid", I8), ("description", TEXT)],
    ),
    (
        "pg_index",
        &[
            ("indexrelid", I8),
            ("indrelid", I8),
            ("indnatts", I2),
            ("indnkeyatts", I2),
            ("indisunique", BOOL),
            ("indisprimary", BOOL),
            ("indisclustered", BOOL),
            ("indisvalid", BOOL),
            ("indisreplident", BOOL),
            ("indkey", TEXT),
            ("indexprs", TEXT),
            ("indpred", TEXT),
        ],
    ),
    (
        "pg_constraint",
        &[
            ("oid", I8),
            ("conname", TEXT),
            ("connamespace", I8),
            ("contype", TEXT),
            ("condeferrable", BOOL),
            ("condeferred", BOOL),
            ("convalidated", BOOL),
            ("conrelid", I8),
            ("contypid", I8),
            ("conindid", I8),
            ("confrelid", I8),
            ("conkey", TEXT),
            ("confkey", TEXT),
            ("conislocal", BOOL),
            ("conparentid", I8),
        ],
    ),
    (
        "pg_inherits",
        &[
            ("inhrelid", I8),
            ("inhparent", I8),
            ("inhseqno", I4),
            ("inhdetachpending", BOOL),
        ],
    ),
    (
        "pg_attrdef",
        &[("oid", I8), ("adrelid", I8), ("adnum", I2), ("adbin", TEXT)],
    ),
    (
        "pg_collation",
        &[("oid", I8), ("collname", TEXT), ("collnamespace", I8)],
    ),
    (
        "pg_proc",
        &[
            ("oid", I8),
            ("proname", TEXT),
            ("pronamespace", I8),
            ("proowner", I8),
            ("prokind", TEXT),
            ("prorettype", I8),
            ("proargtypes", TEXT),
            ("proretset", BOOL),
        ],
    ),
    (
        "pg_trigger",
        &[
            ("oid", I8),
            ("tgrelid", I8),
            ("tgname", TEXT),
            ("tgisinternal", BOOL),
            ("tgenabled", TEXT),
            ("tgparentid", I8),
        ],
    ),
    (
        "pg_policy",
        &[
            ("oid", I8),
            ("polname", TEXT),
            ("polrelid", I8),
            ("polcmd", TEXT),
            ("polpermissive", BOOL),
            ("polroles", TEXT),
            ("polqual", TEXT),
            ("polwithcheck", TEXT),
        ],
    ),
    (
        "pg_rewrite",
        &[
            ("oid", I8),
            ("rulename", TEXT),
            ("ev_class", I8),
            ("ev_type", TEXT),
        ],
    ),
    (
        "pg_statistic_ext",
        &[
            ("oid", I8),
            ("stxrelid", I8),
            ("stxname", TEXT),
            ("stxnamespace", I8),
            ("stxowner", I8),
            ("stxstattarget", I4),
            ("stxkeys", TEXT),
            ("stxkind", TEXT),
        ],
    ),
    (
        "pg_publication",
        &[
            ("oid", I8),
            ("pubname", TEXT),
            ("pubowner", I8),
            ("puballtables", BOOL),
            ("pubinsert", BOOL),
            ("pubupdate", BOOL),
            ("pubdelete", BOOL),
            ("pubtruncate", BOOL),
            ("pubviaroot", BOOL),
        ],
    ),
    (
        "pg_publication_rel",
        &[
            ("oid", I8),
            ("prpubid", I8),
            ("prrelid", I8),
            ("prqual", TEXT),
            ("prattrs", TEXT),
        ],
    ),
    (
        "pg_publication_namespace",
        &[("oid", I8), ("pnpubid", I8), ("pnnspid", I8)],
    ),
    (
        "pg_foreign_table",
        &[("ftrelid", I8), ("ftserver", I8), ("ftoptions", TEXT)],
    ),
    (
        "pg_partitioned_table",
        &[("partrelid", I8), ("partstrat", TEXT), ("partnatts", I2)],
    ),
    (
        "pg_views",
        &[
            ("schemaname", TEXT),
            ("viewname", TEXT),
            ("viewowner", TEXT),
            ("definition", TEXT),
        ],
    ),
    (
        "pg_matviews",
        &[
            ("schemaname", TEXT),
            ("matviewname", TEXT),
            ("matviewowner", TEXT),
            ("definition", TEXT),
        ],
    ),
    (
        "pg_extension",
        &[
            ("oid", I8),
            ("extname", TEXT),
            ("extowner", I8),
            ("extnamespace", I8),
            ("extversion", TEXT),
        ],
    ),
    (
        "pg_enum",
        &[
            ("oid", I8),
            ("enumtypid", I8),
            ("enumsortorder", DataType::Float64),
            ("enumlabel", TEXT),
        ],
    ),
    (
        "pg_depend",
        &[
            ("classid", I8),
            ("objid", I8),
            ("objsubid", I4),
            ("refclassid", I8),
            ("refobjid", I8),
            ("refobjsubid", I4),
            ("deptype", TEXT),
        ],
    ),
    (
        "pg_sequence",
        &[
            ("seqrelid", I8),
            ("seqtypid", I8),
            ("seqstart", I8),
            ("seqincrement", I8),
        ],
    ),
    ("pg_event_trigger", &[("oid", I8), ("evtname", TEXT)]),
    (
        "pg_stat_user_tables",
        &[
            ("relid", I8),
            ("schemaname", TEXT),
            ("relname", TEXT),
            ("n_live_tup", I8),
        ],
    ),
    (
        "pg_stat_activity",
        &[
            ("datid", I8),
            ("datname", TEXT),
            ("pid", I4),
            ("usename", TEXT),
            ("application_name", TEXT),
            ("state", TEXT),
            ("query", TEXT),
        ],
    ),
];

/// The tables `session` is granted, with oids, in name order.
fn listed(engine: &Engine, session: &Session) -> (Vec<Listed>, BTreeMap<String, i64>) {
    let version = engine.current();
    let engine_ws = Some(version.workspace());
    let granted: Vec<TableName> = session.granted_tables().into_iter().collect();
    let mut schemas: BTreeMap<String, i64> = BTreeMap::new();
    for t in &granted {
        let next = FIRST_OID + schemas.len() as i64;
        schemas.entry(pg_name(&t.schema)).or_insert(next);
    }
    let first_table = FIRST_OID + 1000;
    let tables = granted
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let schema = pg_name(&t.schema);
            let columns = engine_ws
                .as_ref()
                .and_then(|ws| ws.table(t))
                .map(|table| {
                    table
                        .columns
                        .iter()
                        .map(|c| (pg_name(&c.name), c.declared))
                        .collect()
                })
                .unwrap_or_default();
            Listed {
                oid: first_table + i as i64,
                schema_oid: schemas.get(&schema).copied().unwrap_or(FIRST_OID),
                schema,
                name: pg_name(&t.table),
                columns,
            }
        })
        .collect();
    (tables, schemas)
}

fn build(engine: &Engine, session: &Session) -> DfResult<SessionContext> {
    let database = pg_name(&engine.current().workspace().settings.default_database);
    let login = session.user().to_string();
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(&database, PG_CATALOG)
        .with_information_schema(false)
        .set_str("datafusion.sql_parser.dialect", "postgres");
    let ctx = SessionContext::new_with_config(config);
    let (tables, schemas) = listed(engine, session);
    let catalog = ctx
        .catalog(&database)
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no catalog".into()))?;
    let pg = catalog
        .schema(PG_CATALOG)
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no pg_catalog".into()))?;
    let info: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
    catalog.register_schema(INFORMATION_SCHEMA, Arc::clone(&info))?;

    // pg_namespace
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("nspname", TEXT),
        ("nspowner", I8),
        ("nspacl", TEXT),
    ]);
    t.row(vec![
        i8v(PG_CATALOG_OID),
        s(PG_CATALOG),
        i8v(OWNER_OID),
        null_s(),
    ]);
    t.row(vec![
        i8v(INFORMATION_SCHEMA_OID),
        s(INFORMATION_SCHEMA),
        i8v(OWNER_OID),
        null_s(),
    ]);
    for (name, oid) in &schemas {
        t.row(vec![i8v(*oid), s(name), i8v(OWNER_OID), null_s()]);
    }
    pg.register_table("pg_namespace".into(), t.build()?)?;

    // pg_class
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("relname", TEXT),
        ("relnamespace", I8),
        ("reltype", I8),
        ("reloftype", I8),
        ("relowner", I8),
        ("relam", I8),
        ("relfilenode", I8),
        ("reltablespace", I8),
        ("relpages", I4),
        ("reltuples", DataType::Float64),
        ("relallvisible", I4),
        ("reltoastrelid", I8),
        ("relhasindex", BOOL),
        ("relisshared", BOOL),
        ("relpersistence", TEXT),
        ("relkind", TEXT),
        ("relnatts", I2),
        ("relchecks", I2),
        ("relhasrules", BOOL),
        ("relhastriggers", BOOL),
        ("relhassubclass", BOOL),
        ("relrowsecurity", BOOL),
        ("relforcerowsecurity", BOOL),
        ("relispopulated", BOOL),
        ("relreplident", TEXT),
        ("relispartition", BOOL),
        ("relrewrite", I8),
        ("relacl", TEXT),
        ("reloptions", TEXT),
        ("relpartbound", TEXT),
    ]);
    for l in &tables {
        t.row(vec![
            i8v(l.oid),
            s(&l.name),
            i8v(l.schema_oid),
            i8v(0),
            i8v(0),
            i8v(OWNER_OID),
            i8v(2),
            i8v(0),
            i8v(0),
            i4v(0),
            ScalarValue::Float64(Some(-1.0)),
            i4v(0),
            i8v(0),
            b(false),
            b(false),
            s("p"),
            s("r"),
            i2v(i16::try_from(l.columns.len()).unwrap_or(i16::MAX)),
            i2v(0),
            b(false),
            b(false),
            b(false),
            b(false),
            b(false),
            b(true),
            s("d"),
            b(false),
            i8v(0),
            null_s(),
            null_s(),
            null_s(),
        ]);
    }
    pg.register_table("pg_class".into(), t.build()?)?;

    // pg_attribute
    let mut t = TableBuilder::new(&[
        ("attrelid", I8),
        ("attname", TEXT),
        ("atttypid", I8),
        ("attstattarget", I4),
        ("attlen", I2),
        ("attnum", I2),
        ("attndims", I4),
        ("attcacheoff", I4),
        ("atttypmod", I4),
        ("attbyval", BOOL),
        ("attalign", TEXT),
        ("attstorage", TEXT),
        ("attcompression", TEXT),
        ("attnotnull", BOOL),
        ("atthasdef", BOOL),
        ("atthasmissing", BOOL),
        ("attidentity", TEXT),
        ("attgenerated", TEXT),
        ("attisdropped", BOOL),
        ("attislocal", BOOL),
        ("attinhcount", I4),
        ("attcollation", I8),
        ("attacl", TEXT),
        ("attoptions", TEXT),
        ("attfdwoptions", TEXT),
    ]);
    for l in &tables {
        for (i, (name, ty)) in l.columns.iter().enumerate() {
            let (oid, typmod, _, len) = pg_column_type(ty);
            t.row(vec![
                i8v(l.oid),
                s(name),
                i8v(oid),
                i4v(-1),
                i2v(len),
                i2v(i16::try_from(i + 1).unwrap_or(i16::MAX)),
                i4v(0),
                i4v(-1),
                i4v(typmod),
                b(len > 0),
                s("i"),
                s("x"),
                s(""),
                b(false),
                b(false),
                b(false),
                s(""),
                s(""),
                b(false),
                b(true),
                i4v(0),
                i8v(0),
                null_s(),
                null_s(),
                null_s(),
            ]);
        }
    }
    pg.register_table("pg_attribute".into(), t.build()?)?;

    // pg_type
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("typname", TEXT),
        ("typnamespace", I8),
        ("typowner", I8),
        ("typlen", I2),
        ("typbyval", BOOL),
        ("typtype", TEXT),
        ("typcategory", TEXT),
        ("typisdefined", BOOL),
        ("typdelim", TEXT),
        ("typrelid", I8),
        ("typelem", I8),
        ("typarray", I8),
        ("typbasetype", I8),
        ("typtypmod", I4),
        ("typnotnull", BOOL),
        ("typcollation", I8),
        ("typndims", I4),
        ("typinput", TEXT),
        ("typoutput", TEXT),
    ]);
    for (oid, name, len, cat) in TYPES {
        t.row(vec![
            i8v(*oid),
            s(name),
            i8v(PG_CATALOG_OID),
            i8v(OWNER_OID),
            i2v(*len),
            b(*len > 0),
            s("b"),
            s(cat),
            b(true),
            s(","),
            i8v(0),
            i8v(0),
            i8v(0),
            i8v(0),
            i4v(-1),
            b(false),
            i8v(0),
            i4v(0),
            s(&format!("{name}in")),
            s(&format!("{name}out")),
        ]);
    }
    pg.register_table("pg_type".into(), t.build()?)?;

    // pg_database
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("datname", TEXT),
        ("datdba", I8),
        ("encoding", I4),
        ("datcollate", TEXT),
        ("datctype", TEXT),
        ("datistemplate", BOOL),
        ("datallowconn", BOOL),
        ("datconnlimit", I4),
        ("dattablespace", I8),
        ("datacl", TEXT),
    ]);
    t.row(vec![
        i8v(FIRST_OID - 1),
        s(&database),
        i8v(OWNER_OID),
        i4v(6),
        s("C"),
        s("C"),
        b(false),
        b(true),
        i4v(-1),
        i8v(1663),
        null_s(),
    ]);
    pg.register_table("pg_database".into(), t.build()?)?;

    // pg_roles, pg_user, pg_authid: the login only.
    let login_pg = pg_name(&login);
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("rolname", TEXT),
        ("rolsuper", BOOL),
        ("rolinherit", BOOL),
        ("rolcreaterole", BOOL),
        ("rolcreatedb", BOOL),
        ("rolcanlogin", BOOL),
        ("rolreplication", BOOL),
        ("rolconnlimit", I4),
        ("rolvaliduntil", TEXT),
        ("rolbypassrls", BOOL),
        ("rolconfig", TEXT),
    ]);
    t.row(vec![
        i8v(OWNER_OID + 1),
        s(&login_pg),
        b(false),
        b(true),
        b(false),
        b(false),
        b(true),
        b(false),
        i4v(-1),
        null_s(),
        b(false),
        null_s(),
    ]);
    pg.register_table("pg_roles".into(), t.build()?)?;
    let mut t = TableBuilder::new(&[
        ("usename", TEXT),
        ("usesysid", I8),
        ("usecreatedb", BOOL),
        ("usesuper", BOOL),
        ("userepl", BOOL),
        ("usebypassrls", BOOL),
        ("valuntil", TEXT),
        ("useconfig", TEXT),
    ]);
    t.row(vec![
        s(&login_pg),
        i8v(OWNER_OID + 1),
        b(false),
        b(false),
        b(false),
        b(false),
        null_s(),
        null_s(),
    ]);
    pg.register_table("pg_user".into(), t.build()?)?;

    // pg_am, pg_tablespace
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("amname", TEXT),
        ("amhandler", TEXT),
        ("amtype", TEXT),
    ]);
    t.row(vec![i8v(2), s("heap"), s("heap_tableam_handler"), s("t")]);
    pg.register_table("pg_am".into(), t.build()?)?;
    let mut t = TableBuilder::new(&[
        ("oid", I8),
        ("spcname", TEXT),
        ("spcowner", I8),
        ("spcacl", TEXT),
        ("spcoptions", TEXT),
    ]);
    t.row(vec![
        i8v(1663),
        s("pg_default"),
        i8v(OWNER_OID),
        null_s(),
        null_s(),
    ]);
    pg.register_table("pg_tablespace".into(), t.build()?)?;

    // pg_tables
    let mut t = TableBuilder::new(&[
        ("schemaname", TEXT),
        ("tablename", TEXT),
        ("tableowner", TEXT),
        ("tablespace", TEXT),
        ("hasindexes", BOOL),
        ("hasrules", BOOL),
        ("hastriggers", BOOL),
        ("rowsecurity", BOOL),
    ]);
    for l in &tables {
        t.row(vec![
            s(&l.schema),
            s(&l.name),
            s(OWNER),
            null_s(),
            b(false),
            b(false),
            b(false),
            b(false),
        ]);
    }
    pg.register_table("pg_tables".into(), t.build()?)?;

    // pg_settings
    let mut t = TableBuilder::new(&[
        ("name", TEXT),
        ("setting", TEXT),
        ("unit", TEXT),
        ("category", TEXT),
        ("short_desc", TEXT),
        ("context", TEXT),
        ("vartype", TEXT),
        ("source", TEXT),
    ]);
    for (name, value) in super::settings::reported() {
        t.row(vec![
            s(name),
            s(&value),
            null_s(),
            s("Client"),
            s(""),
            s("user"),
            s("string"),
            s("default"),
        ]);
    }
    pg.register_table("pg_settings".into(), t.build()?)?;

    // pg_get_keywords(), as a table (see rewrite::TABLE_FUNCTIONS): the
    // words Veil's SQL parser knows.
    let mut t = TableBuilder::new(&[
        ("word", TEXT),
        ("catcode", TEXT),
        ("barelabel", BOOL),
        ("catdesc", TEXT),
        ("baredesc", TEXT),
    ]);
    for word in datafusion::sql::sqlparser::keywords::ALL_KEYWORDS {
        t.row(vec![
            s(&word.to_lowercase()),
            s("U"),
            b(true),
            s("unreserved"),
            s("can be bare label"),
        ]);
    }
    pg.register_table("pg_get_keywords".into(), t.build()?)?;

    for (name, fields) in EMPTY_CATALOGS {
        pg.register_table((*name).into(), TableBuilder::new(fields).build()?)?;
    }

    // information_schema
    let mut t = TableBuilder::new(&[
        ("catalog_name", TEXT),
        ("schema_name", TEXT),
        ("schema_owner", TEXT),
        ("default_character_set_catalog", TEXT),
        ("default_character_set_schema", TEXT),
        ("default_character_set_name", TEXT),
        ("sql_path", TEXT),
    ]);
    for name in schemas.keys() {
        t.row(vec![
            s(&database),
            s(name),
            s(OWNER),
            null_s(),
            null_s(),
            null_s(),
            null_s(),
        ]);
    }
    info.register_table("schemata".into(), t.build()?)?;
    let mut t = TableBuilder::new(&[
        ("table_catalog", TEXT),
        ("table_schema", TEXT),
        ("table_name", TEXT),
        ("table_type", TEXT),
        ("self_referencing_column_name", TEXT),
        ("reference_generation", TEXT),
        ("user_defined_type_catalog", TEXT),
        ("user_defined_type_schema", TEXT),
        ("user_defined_type_name", TEXT),
        ("is_insertable_into", TEXT),
        ("is_typed", TEXT),
        ("commit_action", TEXT),
    ]);
    for l in &tables {
        t.row(vec![
            s(&database),
            s(&l.schema),
            s(&l.name),
            s("BASE TABLE"),
            null_s(),
            null_s(),
            null_s(),
            null_s(),
            null_s(),
            s("NO"),
            s("NO"),
            null_s(),
        ]);
    }
    info.register_table("tables".into(), t.build()?)?;
    let mut t = TableBuilder::new(&[
        ("table_catalog", TEXT),
        ("table_schema", TEXT),
        ("table_name", TEXT),
        ("column_name", TEXT),
        ("ordinal_position", I4),
        ("column_default", TEXT),
        ("is_nullable", TEXT),
        ("data_type", TEXT),
        ("character_maximum_length", I4),
        ("character_octet_length", I4),
        ("numeric_precision", I4),
        ("numeric_precision_radix", I4),
        ("numeric_scale", I4),
        ("datetime_precision", I4),
        ("udt_catalog", TEXT),
        ("udt_schema", TEXT),
        ("udt_name", TEXT),
        ("is_identity", TEXT),
        ("is_generated", TEXT),
        ("is_updatable", TEXT),
    ]);
    for l in &tables {
        for (i, (name, ty)) in l.columns.iter().enumerate() {
            let (oid, _, _, _) = pg_column_type(ty);
            let udt = TYPES
                .iter()
                .find(|t| t.0 == oid)
                .map(|t| t.1)
                .unwrap_or("text");
            let (data_type, len, prec, scale) = match ty {
                SnowflakeType::Varchar(n) => {
                    ("character varying", i32::try_from(*n).ok(), None, None)
                }
                SnowflakeType::Number { precision, scale } => (
                    "numeric",
                    None,
                    Some(i32::from(*precision)),
                    Some(i32::from(*scale)),
                ),
                SnowflakeType::Float => ("double precision", None, Some(53), None),
                SnowflakeType::Boolean => ("boolean", None, None, None),
                SnowflakeType::Date => ("date", None, None, None),
                SnowflakeType::TimestampNtz => ("timestamp without time zone", None, None, None),
            };
            t.row(vec![
                s(&database),
                s(&l.schema),
                s(&l.name),
                s(name),
                i4v(i32::try_from(i + 1).unwrap_or(i32::MAX)),
                null_s(),
                s("YES"),
                s(data_type),
                ScalarValue::Int32(len),
                ScalarValue::Int32(len.map(|n| n.saturating_mul(4))),
                ScalarValue::Int32(prec),
                ScalarValue::Int32(prec.map(|_| 10)),
                ScalarValue::Int32(scale),
                ScalarValue::Int32(None),
                s(&database),
                s(PG_CATALOG),
                s(udt),
                s("NO"),
                s("NEVER"),
                s("NO"),
            ]);
        }
    }
    info.register_table("columns".into(), t.build()?)?;
    for (name, fields) in [
        (
            "views",
            &[
                ("table_catalog", TEXT),
                ("table_schema", TEXT),
                ("table_name", TEXT),
                ("view_definition", TEXT),
            ][..],
        ),
        (
            "table_constraints",
            &[
                ("constraint_catalog", TEXT),
                ("constraint_schema", TEXT),
                ("constraint_name", TEXT),
                ("table_schema", TEXT),
                ("table_name", TEXT),
                ("constraint_type", TEXT),
            ][..],
        ),
        (
            "key_column_usage",
            &[
                ("constraint_schema", TEXT),
                ("constraint_name", TEXT),
                ("table_schema", TEXT),
                ("table_name", TEXT),
                ("column_name", TEXT),
                ("ordinal_position", I4),
            ][..],
        ),
        (
            "routines",
            &[
                ("routine_schema", TEXT),
                ("routine_name", TEXT),
                ("routine_type", TEXT),
            ][..],
        ),
    ] {
        info.register_table(name.into(), TableBuilder::new(fields).build()?)?;
    }

    register_functions(
        &ctx,
        &database,
        &login_pg,
        tables.first().map(|l| l.schema.clone()),
    );
    Ok(ctx)
}

/// A catalog function that ignores its arguments and returns a constant.
fn constant_udf(name: &str, value: ScalarValue) -> ScalarUDF {
    ScalarUDF::new_from_impl(Constant {
        name: name.to_string(),
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Stable,
        ),
        value,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Constant {
    name: String,
    signature: Signature,
    value: ScalarValue,
}

impl datafusion::logical_expr::ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.value.data_type())
    }
    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// The functions catalog queries call.
fn register_functions(ctx: &SessionContext, database: &str, login: &str, schema: Option<String>) {
    let schema = schema.unwrap_or_else(|| "public".into());
    let constants: Vec<(&str, ScalarValue)> = vec![
        ("pg_get_userbyid", s(OWNER)),
        ("pg_table_is_visible", b(true)),
        ("pg_type_is_visible", b(true)),
        ("pg_function_is_visible", b(true)),
        ("pg_relation_is_publishable", b(false)),
        ("pg_get_expr", null_s()),
        ("pg_get_indexdef", null_s()),
        ("pg_get_constraintdef", null_s()),
        ("pg_get_viewdef", null_s()),
        ("pg_get_triggerdef", null_s()),
        ("pg_get_ruledef", null_s()),
        ("pg_get_partkeydef", null_s()),
        ("pg_get_statisticsobjdef_columns", null_s()),
        ("obj_description", null_s()),
        ("col_description", null_s()),
        ("shobj_description", null_s()),
        ("has_table_privilege", b(true)),
        ("has_schema_privilege", b(true)),
        ("has_database_privilege", b(true)),
        ("has_column_privilege", b(true)),
        ("has_any_column_privilege", b(true)),
        ("pg_has_role", b(false)),
        ("current_schema", s(&schema)),
        ("current_database", s(database)),
        ("current_catalog", s(database)),
        ("session_user", s(login)),
        ("current_user", s(login)),
        ("user", s(login)),
        ("version", s(&format!("PostgreSQL {SERVER_VERSION}"))),
        ("pg_backend_pid", i4v(0)),
        ("pg_encoding_to_char", s("UTF8")),
        ("pg_is_in_recovery", b(false)),
        ("pg_total_relation_size", i8v(0)),
        ("pg_relation_size", i8v(0)),
        ("pg_table_size", i8v(0)),
        ("pg_indexes_size", i8v(0)),
        ("pg_get_serial_sequence", null_s()),
        ("txid_current", i8v(1)),
    ];
    for (name, value) in constants {
        ctx.register_udf(constant_udf(name, value));
    }
    super::functions::register(ctx, &schema);
    ctx.register_udf(create_udf(
        "format_type",
        vec![I8, I8],
        TEXT,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let cast = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &I8);
            let oids = cast(&arrays[0])?;
            let mods = cast(&arrays[1])?;
            let oids = oids.as_any().downcast_ref::<Int64Array>();
            let mods = mods.as_any().downcast_ref::<Int64Array>();
            let (Some(oids), Some(mods)) = (oids, mods) else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            };
            let out: StringArray = oids
                .iter()
                .zip(mods.iter())
                .map(|(o, m)| o.and_then(|o| format_type(o, m.unwrap_or(-1))))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    ));
}

/// Whether a statement is a catalog query: it names `pg_catalog` or
/// `information_schema`, a `pg_*` relation, or calls a PostgreSQL catalog
/// function. Such statements never reach user tables (see the module doc).
pub(crate) fn is_catalog_query(sql: &str) -> bool {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return false;
    };
    let words: Vec<(String, bool)> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) => (w.value.to_lowercase(), w.quote_style.is_none()),
            Token::LParen => ("(".into(), false),
            Token::Period => (".".into(), false),
            other => (other.to_string(), false),
        })
        .collect();
    const FUNCTIONS: &[&str] = &[
        "version",
        "current_schema",
        "current_schemas",
        "current_database",
        "current_catalog",
        "current_schemas",
        "format_type",
        "obj_description",
        "col_description",
        "shobj_description",
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "current_setting",
        "quote_ident",
        "session_user",
    ];
    words.iter().enumerate().any(|(i, (w, _))| {
        let next = words.get(i + 1).map(|n| n.0.as_str());
        w == PG_CATALOG
            || w == INFORMATION_SCHEMA
            || (w.starts_with("pg_") && next != Some("."))
            || (FUNCTIONS.contains(&w.as_str())
                && (next == Some("(") || w == "session_user" || w == "current_catalog"))
    })
}

/// Runs a catalog query in the connection's catalog context.
pub(crate) async fn run(ctx: &SessionContext, sql: &str) -> DfResult<SendableRecordBatchStream> {
    let dialect = PostgreSqlDialect {};
    let mut statements = Parser::parse_sql(&dialect, sql)?;
    let mut statement: Statement = match statements.len() {
        1 => statements.remove(0),
        _ => {
            return Err(datafusion::error::DataFusionError::Plan(
                "one statement at a time.".into(),
            ));
        }
    };
    super::subquery::over_empty_catalog(&mut statement);
    let _ = VisitMut::visit(&mut statement, &mut super::rewrite::PgSyntax);
    let state = ctx.state();
    let plan = state
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
            statement,
        )))
        .await?;
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)?;
    let df = ctx.execute_logical_plan(plan).await?;
    df.execute_stream().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_queries_are_recognized() {
        assert!(is_catalog_query(
            "SELECT n.nspname FROM pg_catalog.pg_namespace n"
        ));
        assert!(is_catalog_query("select * from information_schema.tables"));
        assert!(is_catalog_query("SELECT version()"));
        assert!(is_catalog_query("select relname from pg_class"));
        assert!(!is_catalog_query("SELECT name, ssn FROM customers"));
        assert!(!is_catalog_query("SELECT current_user"));
    }

    #[test]
    fn names_follow_case_rules() {
        assert_eq!(pg_name("CUSTOMERS"), "customers");
        assert_eq!(pg_name("MixedCase"), "MixedCase");
    }

    #[test]
    fn format_type_prints_modifiers() {
        assert_eq!(
            format_type(1043, 10).as_deref(),
            Some("character varying(6)")
        );
        assert_eq!(
            format_type(1700, ((10 << 16) | 2) + 4).as_deref(),
            Some("numeric(10,2)")
        );
    }
}
