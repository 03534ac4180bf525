//! `veil_mask_constant(value, literal, declared_type)`: the literal, cast to
//! the value's type and fitted to the declared type (SPEC rule 17). The only
//! mask that turns NULL into a value (rule 15).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::fit::{clamp_to_precision, truncate_chars};
use crate::sftype::SnowflakeType;
use crate::strings::{literal_str, literal_type};

/// Mask that shows one constant.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskConstantFunc {
    signature: Signature,
}

impl Default for MaskConstantFunc {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

/// The constant `literal` as a value of `data_type`, fitted to `declared`;
/// NULL when it cannot be represented (fail closed, never an error).
pub fn fitted_constant(
    literal: &str,
    declared: SnowflakeType,
    data_type: &DataType,
) -> ScalarValue {
    let text = match declared {
        SnowflakeType::Varchar(n) => truncate_chars(literal, n).to_string(),
        _ => literal.to_string(),
    };
    let value = match ScalarValue::try_from_string(text, data_type) {
        Ok(v) => v,
        Err(_) => return ScalarValue::try_from(data_type).unwrap_or(ScalarValue::Null),
    };
    // Numbers that overflow the declared precision are clamped toward zero.
    if let SnowflakeType::Number { precision, .. } = declared {
        let clamped = match &value {
            ScalarValue::Int64(Some(v)) => clamp_to_precision(i128::from(*v), precision, 1)
                .and_then(|c| i64::try_from(c).ok())
                .map(|c| ScalarValue::Int64(Some(c))),
            ScalarValue::Decimal128(Some(v), p, s) => clamp_to_precision(*v, precision, 1)
                .map(|c| ScalarValue::Decimal128(Some(c), *p, *s)),
            other => Some(other.clone()),
        };
        return clamped
            .unwrap_or_else(|| ScalarValue::try_from(data_type).unwrap_or(ScalarValue::Null));
    }
    value
}

impl ScalarUDFImpl for MaskConstantFunc {
    fn name(&self) -> &str {
        "veil_mask_constant"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::Null) => Ok(DataType::Utf8),
            Some(t) => Ok(t.clone()),
            None => exec_err!("veil_mask_constant needs a value argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let literal = literal_str(&args.args, 1, "constant")?;
        let declared = literal_type(&args.args, 2)?;
        let data_type = args.return_type().clone();
        let value_type = match &data_type {
            DataType::Dictionary(_, v) => v.as_ref().clone(),
            other => other.clone(),
        };
        let mut constant = fitted_constant(&literal, declared, &value_type);
        if let DataType::Dictionary(k, _) = &data_type {
            constant = ScalarValue::Dictionary(k.clone(), Box::new(constant));
        }
        // One scalar, broadcast by DataFusion where it needs an array: the
        // input is never read.
        Ok(ColumnarValue::Scalar(constant))
    }
}

/// The `veil_mask_constant` UDF.
pub fn mask_constant() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskConstantFunc::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::check_all_layouts;
    use datafusion::common::ScalarValue;

    fn lit(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    #[test]
    fn constant_is_fitted_and_replaces_null() {
        check_all_layouts(
            &mask_constant(),
            &[Some("bob@x.com"), None],
            &[lit("REDACTED"), lit("VARCHAR(5)")],
            &[Some("REDAC"), Some("REDAC")],
        );
    }

    #[test]
    fn numeric_constants_are_clamped() {
        let d = SnowflakeType::parse("NUMBER(3,0)").unwrap();
        assert_eq!(
            fitted_constant("12345", d, &DataType::Int64),
            ScalarValue::Int64(Some(999))
        );
        assert_eq!(
            fitted_constant("-7", d, &DataType::Int64),
            ScalarValue::Int64(Some(-7))
        );
        assert_eq!(
            fitted_constant("abc", d, &DataType::Int64),
            ScalarValue::Int64(None)
        );
    }
}
