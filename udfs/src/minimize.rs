//! `veil_minimize(percent, salt, col, ...)`: TRUE for a deterministic
//! `percent` % of rows (Immuta's data minimization). A row's bucket is the
//! FNV-1a hash of the salt and the text of the given columns, so repeated
//! queries keep the same rows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::fit::parse_decimal;
use crate::strings::literal_str;

/// Deterministic row sampling for minimization rules.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinimizeFunc {
    signature: Signature,
}

impl Default for MinimizeFunc {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Whether a row whose hash is `h` falls in the first `basis_points` of 10 000.
pub fn in_sample(h: u64, basis_points: u64) -> bool {
    h % 10_000 < basis_points
}

impl ScalarUDFImpl for MinimizeFunc {
    fn name(&self) -> &str {
        "veil_minimize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() < 3 {
            return exec_err!("veil_minimize needs a percent, a salt and at least one column");
        }
        let percent_text = literal_str(&args.args, 0, "percent")?;
        let basis_points = match parse_decimal(&percent_text) {
            Some((m, s)) if m >= 0 => {
                let bp = m * 100 / 10i128.pow(s);
                u64::try_from(bp.min(10_000)).unwrap_or(0)
            }
            _ => {
                return exec_err!(
                    "minimization needs a percent between 0 and 100, got '{percent_text}'"
                );
            }
        };
        let salt = literal_str(&args.args, 1, "salt")?;
        let rows = args.number_rows;
        let columns = args.args[2..]
            .iter()
            .map(|c| {
                let array = c.clone().into_array(rows)?;
                Ok(cast(&array, &DataType::Utf8)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let base = fnv(FNV_OFFSET, salt.as_bytes());
        let out: BooleanArray = (0..rows)
            .map(|row| {
                let mut h = base;
                for column in &columns {
                    let text = column.as_string::<i32>();
                    h = fnv(h, &[0x1f]);
                    if text.is_valid(row) {
                        h = fnv(h, text.value(row).as_bytes());
                    } else {
                        h = fnv(h, &[0xff]);
                    }
                }
                Some(in_sample(h, basis_points))
            })
            .collect();
        if args.args[2..]
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The `veil_minimize` UDF.
pub fn minimize() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MinimizeFunc::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    fn run(percent: &str, n: i64) -> Vec<bool> {
        let ids: Arc<dyn Array> = Arc::new(Int64Array::from_iter_values(0..n));
        let args = vec![
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(percent.into()))),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some("DB.S.T".into()))),
            ColumnarValue::Array(ids),
        ];
        let arg_fields = args
            .iter()
            .map(|a| Arc::new(Field::new("a", a.data_type(), true)))
            .collect();
        let out = minimize()
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields,
                number_rows: n as usize,
                return_field: Arc::new(Field::new("r", DataType::Boolean, true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .unwrap()
            .into_array(n as usize)
            .unwrap();
        out.as_boolean()
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect()
    }

    #[test]
    fn minimization_keeps_about_the_percent_deterministically() {
        let first = run("10", 10_000);
        let kept = first.iter().filter(|v| **v).count();
        assert!((800..1200).contains(&kept), "kept {kept} of 10000");
        assert_eq!(first, run("10", 10_000));
        assert!(run("0", 100).iter().all(|v| !v));
        assert!(run("100", 100).iter().all(|v| *v));
    }
}
