//! Snowflake's declared types as PostgreSQL names them (`format_type`).

use super::*;

/// A declared type as PostgreSQL names it: type oid, type modifier,
/// `format_type` text, length in bytes (-1: variable).
pub(super) fn pg_column_type(t: &SnowflakeType) -> (i64, i32, String, i16) {
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
pub(super) const TYPES: &[(i64, &str, i16, &str)] = &[
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
pub(super) fn format_type(oid: i64, typmod: i64) -> Option<String> {
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
