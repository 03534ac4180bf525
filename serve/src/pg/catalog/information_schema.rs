//! `information_schema`: the login's schemata, tables and columns.

use super::*;

/// Registers the `information_schema` tables in `info`.
pub(super) fn register(
    info: &Arc<dyn SchemaProvider>,
    tables: &[Listed],
    schemas: &BTreeMap<String, i64>,
    database: &str,
) -> DfResult<()> {
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
            s(database),
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
    for l in tables {
        t.row(vec![
            s(database),
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
    for l in tables {
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
                s(database),
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
                s(database),
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
    Ok(())
}
