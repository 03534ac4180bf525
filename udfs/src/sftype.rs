//! Declared Snowflake column types (`VARCHAR(n)`, `NUMBER(p,s)`, ...) and
//! their Arrow representation in Veil.

use std::fmt;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// Snowflake's maximum `VARCHAR` length, used for `STRING`, `TEXT` and a
/// `VARCHAR` declared without a length.
pub const MAX_VARCHAR: u32 = 16_777_216;

/// A column type as declared in a workspace, with Snowflake's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnowflakeType {
    /// `VARCHAR(n)`, `STRING`, `TEXT`, `CHAR(n)`: at most `n` Unicode scalar values.
    Varchar(u32),
    /// `NUMBER(p,s)` / `DECIMAL` / `INT` (= `NUMBER(38,0)`).
    Number {
        /// Total digits, 1..=38.
        precision: u8,
        /// Digits after the decimal point, 0..=precision.
        scale: u8,
    },
    /// `FLOAT` / `DOUBLE` / `REAL`.
    Float,
    /// `BOOLEAN`.
    Boolean,
    /// `DATE`.
    Date,
    /// `TIMESTAMP_NTZ` (nanoseconds, no time zone).
    TimestampNtz,
}

impl SnowflakeType {
    /// Parses a declared type such as `VARCHAR(6)`, `NUMBER(10,2)` or `int`.
    /// Returns a one-sentence error naming the type on failure.
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let upper = compact.to_ascii_uppercase();
        let (name, args) = match upper.find('(') {
            Some(open) => {
                if !upper.ends_with(')') {
                    return Err(format!("type '{text}' has an unclosed parenthesis"));
                }
                let inner = &upper[open + 1..upper.len() - 1];
                let args = inner
                    .split(',')
                    .map(|a| {
                        a.parse::<u32>()
                            .map_err(|_| format!("type '{text}' has a non-numeric argument '{a}'"))
                    })
                    .collect::<Result<Vec<u32>, String>>()?;
                (&upper[..open], args)
            }
            None => (upper.as_str(), Vec::new()),
        };
        let bad_args = || format!("type '{text}' has the wrong number of arguments");
        match name {
            "VARCHAR" | "STRING" | "TEXT" | "CHAR" | "CHARACTER" | "NCHAR" | "NVARCHAR"
            | "CHAR VARYING" => {
                let default = if matches!(name, "CHAR" | "CHARACTER" | "NCHAR") {
                    1
                } else {
                    MAX_VARCHAR
                };
                match args.as_slice() {
                    [] => Ok(Self::Varchar(default)),
                    [n] if *n >= 1 && *n <= MAX_VARCHAR => Ok(Self::Varchar(*n)),
                    [_] => Err(format!(
                        "type '{text}' needs a length between 1 and {MAX_VARCHAR}"
                    )),
                    _ => Err(bad_args()),
                }
            }
            "NUMBER" | "DECIMAL" | "NUMERIC" => {
                let (p, s) = match args.as_slice() {
                    [] => (38, 0),
                    [p] => (*p, 0),
                    [p, s] => (*p, *s),
                    _ => return Err(bad_args()),
                };
                if !(1..=38).contains(&p) || s > p {
                    return Err(format!(
                        "type '{text}' needs 1 <= precision <= 38 and 0 <= scale <= precision"
                    ));
                }
                Ok(Self::Number {
                    precision: p as u8,
                    scale: s as u8,
                })
            }
            "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "BYTEINT"
                if args.is_empty() =>
            {
                Ok(Self::Number {
                    precision: 38,
                    scale: 0,
                })
            }
            "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "DOUBLEPRECISION" | "REAL"
                if args.is_empty() =>
            {
                Ok(Self::Float)
            }
            "BOOLEAN" if args.is_empty() => Ok(Self::Boolean),
            "DATE" if args.is_empty() => Ok(Self::Date),
            "TIMESTAMP_NTZ" | "TIMESTAMP" | "DATETIME" if args.len() <= 1 => Ok(Self::TimestampNtz),
            _ => Err(format!("type '{text}' is not a supported Snowflake type")),
        }
    }

    /// The Arrow type Veil stores this declared type as. Strings keep the
    /// layout of their source (see [`Self::holds`]); this is the layout used
    /// where Veil chooses (CSV files, casts).
    pub fn arrow_type(&self) -> DataType {
        match self {
            Self::Varchar(_) => DataType::Utf8,
            Self::Number { precision, scale } => {
                if *scale == 0 && *precision <= 18 {
                    DataType::Int64
                } else {
                    DataType::Decimal128(*precision, *scale as i8)
                }
            }
            Self::Float => DataType::Float64,
            Self::Boolean => DataType::Boolean,
            Self::Date => DataType::Date32,
            Self::TimestampNtz => DataType::Timestamp(TimeUnit::Nanosecond, None),
        }
    }

    /// Whether a physical (file) type can hold values of this declared type,
    /// so a cast to [`Self::arrow_type`] is lossless for valid data.
    pub fn holds(&self, physical: &DataType) -> bool {
        use DataType::*;
        match (self, physical) {
            (_, Dictionary(_, value)) => self.holds(value),
            (Self::Varchar(_), Utf8 | LargeUtf8 | Utf8View) => true,
            (
                Self::Number { scale: 0, .. },
                Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64,
            ) => true,
            (Self::Number { .. }, Decimal32(_, _) | Decimal64(_, _) | Decimal128(_, _)) => true,
            (Self::Float, Float16 | Float32 | Float64) => true,
            (Self::Float, Int8 | Int16 | Int32 | Int64) => true,
            (Self::Boolean, Boolean) => true,
            (Self::Date, Date32 | Date64) => true,
            // ISO text from CSV/JSON is cast; bad values fail the query and `lint` finds them.
            (Self::Date | Self::TimestampNtz, Utf8 | LargeUtf8 | Utf8View) => true,
            (Self::TimestampNtz, Timestamp(_, None) | Date32 | Date64) => true,
            _ => false,
        }
    }

    /// Whether values of this type are strings.
    pub fn is_string(&self) -> bool {
        matches!(self, Self::Varchar(_))
    }

    /// Whether values of this type are numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Self::Number { .. } | Self::Float)
    }

    /// Whether values of this type are dates or timestamps.
    pub fn is_temporal(&self) -> bool {
        matches!(self, Self::Date | Self::TimestampNtz)
    }
}

impl fmt::Display for SnowflakeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Varchar(n) => write!(f, "VARCHAR({n})"),
            Self::Number { precision, scale } => write!(f, "NUMBER({precision},{scale})"),
            Self::Float => f.write_str("FLOAT"),
            Self::Boolean => f.write_str("BOOLEAN"),
            Self::Date => f.write_str("DATE"),
            Self::TimestampNtz => f.write_str("TIMESTAMP_NTZ"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_snowflake_type_spellings() {
        assert_eq!(
            SnowflakeType::parse("varchar(6)"),
            Ok(SnowflakeType::Varchar(6))
        );
        assert_eq!(
            SnowflakeType::parse("STRING"),
            Ok(SnowflakeType::Varchar(MAX_VARCHAR))
        );
        assert_eq!(
            SnowflakeType::parse("NUMBER(10, 2)"),
            Ok(SnowflakeType::Number {
                precision: 10,
                scale: 2
            })
        );
        assert_eq!(
            SnowflakeType::parse("int"),
            Ok(SnowflakeType::Number {
                precision: 38,
                scale: 0
            })
        );
        assert_eq!(
            SnowflakeType::parse("timestamp_ntz"),
            Ok(SnowflakeType::TimestampNtz)
        );
        assert!(SnowflakeType::parse("NUMBER(40,0)").is_err());
        assert!(SnowflakeType::parse("NUMBER(3,4)").is_err());
        assert!(SnowflakeType::parse("VARIANT").is_err());
        assert!(SnowflakeType::parse("VARCHAR(x)").is_err());
    }

    #[test]
    fn display_round_trips() {
        for t in [
            "VARCHAR(6)",
            "NUMBER(3,0)",
            "FLOAT",
            "BOOLEAN",
            "DATE",
            "TIMESTAMP_NTZ",
        ] {
            assert_eq!(SnowflakeType::parse(t).unwrap().to_string(), t);
        }
    }

    #[test]
    fn arrow_types_follow_precision() {
        assert_eq!(
            SnowflakeType::parse("NUMBER(10,0)").unwrap().arrow_type(),
            DataType::Int64
        );
        assert_eq!(
            SnowflakeType::parse("NUMBER(38,0)").unwrap().arrow_type(),
            DataType::Decimal128(38, 0)
        );
        assert!(SnowflakeType::Varchar(4).holds(&DataType::Utf8View));
        assert!(!SnowflakeType::Varchar(4).holds(&DataType::Int64));
    }
}
