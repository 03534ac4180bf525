//! The `pg_catalog` tables: what the login may see (namespaces, classes,
//! attributes), the constant ones (types, settings, keywords), and the
//! ones that are always empty in Veil.

use super::*;

/// Registers every `pg_catalog` table in `pg`.
pub(super) fn register(
    pg: &Arc<dyn SchemaProvider>,
    tables: &[Listed],
    schemas: &BTreeMap<String, i64>,
    database: &str,
    login_pg: &str,
) -> DfResult<()> {
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
    for (name, oid) in schemas {
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
    for l in tables {
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
    for l in tables {
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
        // aclitem[]: psql's `\l` prints it with array_to_string (NULL:
        // default privileges).
        ("datacl", text_list()),
        // What psql 15's `\l` reads beside the above.
        ("datlocprovider", TEXT),
        ("daticulocale", TEXT),
        ("daticurules", TEXT),
        ("datcollversion", TEXT),
    ]);
    t.row(vec![
        i8v(FIRST_OID - 1),
        s(database),
        i8v(OWNER_OID),
        i4v(6),
        s("C"),
        s("C"),
        b(false),
        b(true),
        i4v(-1),
        i8v(1663),
        ScalarValue::try_from(&text_list())?,
        s("c"),
        null_s(),
        null_s(),
        null_s(),
    ]);
    pg.register_table("pg_database".into(), t.build()?)?;

    // pg_roles, pg_user, pg_authid: the login only.
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
        s(login_pg),
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
        s(login_pg),
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
    for l in tables {
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
    for (name, value) in crate::pg::settings::reported() {
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
    Ok(())
}
