//! Shared plumbing for the string masks: one loop per Arrow string layout
//! (`Utf8`, `LargeUtf8`, `Utf8View`, dictionaries), scalar arguments, and
//! literal parameters.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericStringBuilder, StringViewBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::ColumnarValue;

use crate::sftype::SnowflakeType;

/// Whether `data_type` is a string layout the masks accept.
pub(crate) fn is_string_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_string_type(value),
        _ => false,
    }
}

/// Maps every non-null string of `array` through `f`, which writes the masked
/// value into the buffer it is given and returns `false` for NULL. The output
/// has the input's layout; a dictionary's values are masked once each and its
/// keys are kept.
pub(crate) fn map_strings<F>(array: &ArrayRef, f: &mut F) -> Result<ArrayRef>
where
    F: FnMut(&str, &mut String) -> bool,
{
    map_strings_sized(array, None, f)
}

/// [`map_strings`] for masks whose output length is known (`bytes_per_value`),
/// so the output buffer is allocated once instead of growing.
pub(crate) fn map_strings_sized<F>(
    array: &ArrayRef,
    bytes_per_value: Option<usize>,
    f: &mut F,
) -> Result<ArrayRef>
where
    F: FnMut(&str, &mut String) -> bool,
{
    let len = array.len();
    let mut buf = String::new();
    match array.data_type() {
        DataType::Utf8 => {
            let input = array.as_string::<i32>();
            let mut out = GenericStringBuilder::<i32>::with_capacity(
                len,
                bytes_per_value.map_or(input.value_data().len(), |b| b * len),
            );
            for value in input.iter() {
                match map_one(value, &mut buf, f) {
                    Some(v) => out.append_value(v),
                    None => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()))
        }
        DataType::LargeUtf8 => {
            let input = array.as_string::<i64>();
            let mut out = GenericStringBuilder::<i64>::with_capacity(
                len,
                bytes_per_value.map_or(input.value_data().len(), |b| b * len),
            );
            for value in input.iter() {
                match map_one(value, &mut buf, f) {
                    Some(v) => out.append_value(v),
                    None => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()))
        }
        DataType::Utf8View => {
            let input = array.as_string_view();
            let mut out = StringViewBuilder::with_capacity(len);
            for value in input.iter() {
                match map_one(value, &mut buf, f) {
                    Some(v) => out.append_value(v),
                    None => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()))
        }
        DataType::Dictionary(_, value) if is_string_type(value) => {
            let dictionary = array.as_any_dictionary();
            let values = map_strings_sized(dictionary.values(), bytes_per_value, f)?;
            Ok(dictionary.with_values(values))
        }
        other => exec_err!("a string mask was applied to a {other} value"),
    }
}

#[inline]
fn map_one<'b, F>(value: Option<&str>, buf: &'b mut String, f: &mut F) -> Option<&'b str>
where
    F: FnMut(&str, &mut String) -> bool,
{
    let v = value?;
    buf.clear();
    if f(v, buf) { Some(buf.as_str()) } else { None }
}

/// Applies `kernel` to the first argument, array or scalar alike.
pub(crate) fn apply_to_first<K>(args: &[ColumnarValue], kernel: K) -> Result<ColumnarValue>
where
    K: FnOnce(&ArrayRef) -> Result<ArrayRef>,
{
    match args.first() {
        Some(ColumnarValue::Array(array)) => Ok(ColumnarValue::Array(kernel(array)?)),
        Some(ColumnarValue::Scalar(scalar)) => {
            let array = scalar.to_array()?;
            let out = kernel(&array)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        }
        None => exec_err!("a mask was called without a value"),
    }
}

/// The literal text parameter at `index` (e.g. a pattern or a declared type).
pub(crate) fn literal_str(args: &[ColumnarValue], index: usize, what: &str) -> Result<String> {
    match args.get(index) {
        Some(ColumnarValue::Scalar(scalar)) => match scalar {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Ok(s.clone()),
            ScalarValue::Int64(Some(n)) => Ok(n.to_string()),
            ScalarValue::Int32(Some(n)) => Ok(n.to_string()),
            other => exec_err!("the {what} argument must be a literal, got {other:?}"),
        },
        Some(ColumnarValue::Array(_)) => exec_err!("the {what} argument must be a literal"),
        None => exec_err!("the {what} argument is missing"),
    }
}

/// The declared type parameter at `index`, e.g. `'VARCHAR(6)'`.
pub(crate) fn literal_type(args: &[ColumnarValue], index: usize) -> Result<SnowflakeType> {
    let text = literal_str(args, index, "declared type")?;
    match SnowflakeType::parse(&text) {
        Ok(t) => Ok(t),
        Err(e) => exec_err!("{e}"),
    }
}

/// The maximum characters a masked string may have in `declared`.
pub(crate) fn max_chars(declared: SnowflakeType) -> u32 {
    match declared {
        SnowflakeType::Varchar(n) => n,
        _ => crate::sftype::MAX_VARCHAR,
    }
}

/// Return type rule shared by the string masks: the value's own layout.
pub(crate) fn string_return_type(name: &str, arg_types: &[DataType]) -> Result<DataType> {
    match arg_types.first() {
        Some(t) if is_string_type(t) => Ok(t.clone()),
        Some(DataType::Null) => Ok(DataType::Utf8),
        Some(other) => exec_err!("{name} masks strings, not {other}"),
        None => exec_err!("{name} needs a value argument"),
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers to run a mask over every string layout.
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Array, ArrayRef, DictionaryArray, LargeStringArray, StringArray, StringViewArray,
    };
    use datafusion::arrow::datatypes::{Field, Int32Type};
    use datafusion::common::config::ConfigOptions;
    use datafusion::common::{Result, ScalarValue};
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

    /// The same values in all four string layouts.
    pub(crate) fn all_layouts(values: &[Option<&str>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(values.to_vec())),
            Arc::new(LargeStringArray::from(values.to_vec())),
            Arc::new(StringViewArray::from(values.to_vec())),
            Arc::new(
                values
                    .iter()
                    .copied()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
        ]
    }

    /// Runs `udf` on `value` followed by literal `params`.
    pub(crate) fn invoke(
        udf: &ScalarUDF,
        value: ColumnarValue,
        params: &[ScalarValue],
    ) -> Result<ColumnarValue> {
        let mut args = vec![value];
        args.extend(params.iter().cloned().map(ColumnarValue::Scalar));
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect::<Vec<_>>();
        let types: Vec<_> = args.iter().map(|a| a.data_type()).collect();
        let return_type = udf.return_type(&types)?;
        let number_rows = match &args[0] {
            ColumnarValue::Array(a) => a.len(),
            ColumnarValue::Scalar(_) => 1,
        };
        udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows,
            return_field: Arc::new(Field::new("r", return_type, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    /// Reads any string layout back as `Option<String>`s.
    pub(crate) fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        let plain =
            datafusion::arrow::compute::cast(array, &datafusion::arrow::datatypes::DataType::Utf8)
                .expect("cast to Utf8");
        let plain = plain.as_any().downcast_ref::<StringArray>().expect("Utf8");
        plain.iter().map(|v| v.map(str::to_string)).collect()
    }

    /// Runs `udf` over every layout and checks each gives `expected` and keeps
    /// its layout.
    pub(crate) fn check_all_layouts(
        udf: &ScalarUDF,
        input: &[Option<&str>],
        params: &[ScalarValue],
        expected: &[Option<&str>],
    ) {
        let expected: Vec<Option<String>> =
            expected.iter().map(|v| v.map(str::to_string)).collect();
        for array in all_layouts(input) {
            let out = invoke(udf, ColumnarValue::Array(Arc::clone(&array)), params)
                .expect("mask runs")
                .into_array(input.len())
                .expect("array");
            assert_eq!(out.data_type(), array.data_type(), "layout kept");
            assert_eq!(strings(&out), expected, "layout {}", array.data_type());
        }
        // Scalars, one value at a time.
        for (value, want) in input.iter().zip(&expected) {
            let scalar = ColumnarValue::Scalar(ScalarValue::Utf8(value.map(str::to_string)));
            let out = invoke(udf, scalar, params).expect("mask runs on a scalar");
            match out {
                ColumnarValue::Scalar(ScalarValue::Utf8(got)) => assert_eq!(&got, want),
                other => panic!("expected a Utf8 scalar, got {other:?}"),
            }
        }
    }
}
