//! PostgreSQL functions BI tools call in catalog queries that need more
//! than a constant: `current_schemas(include_implicit)` and
//! `format(fmt, args...)` (`%s`, `%I`, `%L`, `%%`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// Registers the functions on a catalog context whose current schema is
/// `schema`.
pub(super) fn register(ctx: &SessionContext, schema: &str) {
    ctx.register_udf(current_schemas(schema.to_string()));
    ctx.register_udf(format_udf());
}

/// `current_schemas(true)`: `{pg_catalog, <schema>}`; `(false)`: `{<schema>}`.
fn current_schemas(schema: String) -> ScalarUDF {
    let item = Arc::new(Field::new("item", DataType::Utf8, true));
    create_udf(
        "current_schemas",
        vec![DataType::Boolean],
        DataType::List(Arc::clone(&item)),
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let list = |implicit: bool| {
                let mut names = Vec::new();
                if implicit {
                    names.push(ScalarValue::Utf8(Some(super::catalog::PG_CATALOG.into())));
                }
                names.push(ScalarValue::Utf8(Some(schema.clone())));
                ScalarValue::List(ScalarValue::new_list_nullable(&names, &DataType::Utf8))
            };
            match &args[0] {
                ColumnarValue::Scalar(ScalarValue::Boolean(b)) => {
                    Ok(ColumnarValue::Scalar(list(b.unwrap_or(false))))
                }
                ColumnarValue::Array(a) => {
                    let flags = a.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                        DataFusionError::Plan("current_schemas takes a boolean".into())
                    })?;
                    let values: Vec<ScalarValue> =
                        flags.iter().map(|b| list(b.unwrap_or(false))).collect();
                    Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
                }
                other => Err(DataFusionError::Plan(format!(
                    "current_schemas takes a boolean, not {}",
                    other.data_type()
                ))),
            }
        }),
    )
}

/// `format(fmt, args...)`, PostgreSQL's.
fn format_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Format {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

impl datafusion::logical_expr::ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let texts: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| {
                let array = a.to_array(rows)?;
                Ok(datafusion::arrow::compute::cast(&array, &DataType::Utf8)?)
            })
            .collect::<DfResult<_>>()?;
        let Some((fmt, values)) = texts.split_first() else {
            return Err(DataFusionError::Plan("format needs a format string".into()));
        };
        let fmt = fmt.as_string::<i32>();
        let values: Vec<_> = values.iter().map(|v| v.as_string::<i32>()).collect();
        let out: StringArray = (0..rows)
            .map(|row| {
                if fmt.is_null(row) {
                    return Ok(None);
                }
                let arg = |i: usize| {
                    values
                        .get(i)
                        .and_then(|v| (!v.is_null(row)).then(|| v.value(row)))
                };
                render(fmt.value(row), values.len(), arg).map(Some)
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// One `format` result; `arg(i)` is the i-th argument (`None`: NULL).
fn render<'a>(fmt: &str, count: usize, arg: impl Fn(usize) -> Option<&'a str>) -> DfResult<String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next();
        if spec == Some('%') {
            out.push('%');
            continue;
        }
        if next >= count {
            return Err(DataFusionError::Plan(
                "too few arguments for format()".into(),
            ));
        }
        let value = arg(next);
        next += 1;
        match spec {
            Some('s') => out.push_str(value.unwrap_or_default()),
            Some('I') => match value {
                Some(v) => out.push_str(&quote_ident(v)),
                None => {
                    return Err(DataFusionError::Plan(
                        "null values cannot be formatted as an SQL identifier".into(),
                    ));
                }
            },
            Some('L') => match value {
                Some(v) => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
                None => out.push_str("NULL"),
            },
            other => {
                return Err(DataFusionError::Plan(format!(
                    "unrecognized format() type specifier \"{}\"",
                    other.map(String::from).unwrap_or_default()
                )));
            }
        }
    }
    Ok(out)
}

/// PostgreSQL's `quote_ident`: quoted unless a lower-case simple name.
fn quote_ident(name: &str) -> String {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if simple {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_postgresql() {
        let args = ["public", "My Table", "it's"];
        let arg = |i: usize| args.get(i).copied();
        assert_eq!(
            render("%I.%I = %L (100%%)", 3, arg).unwrap(),
            "public.\"My Table\" = 'it''s' (100%)"
        );
        assert_eq!(render("%s", 1, |_| None).unwrap(), "");
        assert!(render("%s %s", 1, arg).is_err());
        assert!(render("%x", 1, arg).is_err());
    }
}
