//! `veil_mask_null(value)`: NULL of the value's own type (the `nullify` mask,
//! and the fallback of every mask that cannot apply to a type).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Mask that shows NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskNullFunc {
    signature: Signature,
}

impl Default for MaskNullFunc {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskNullFunc {
    fn name(&self) -> &str {
        "veil_mask_null"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => Ok(t.clone()),
            None => exec_err!("veil_mask_null needs a value argument"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // One NULL scalar, broadcast by DataFusion where it needs an array:
        // the input is never read.
        Ok(ColumnarValue::Scalar(ScalarValue::try_from(
            args.return_type(),
        )?))
    }
}

/// The `veil_mask_null` UDF.
pub fn mask_null() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskNullFunc::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::{all_layouts, invoke};
    use datafusion::arrow::array::{Array, Int64Array};

    #[test]
    fn null_mask_keeps_type_and_hides_every_value() {
        for array in all_layouts(&[Some("a"), None, Some("b")]) {
            let out = invoke(&mask_null(), ColumnarValue::Array(array.clone()), &[])
                .unwrap()
                .into_array(3)
                .unwrap();
            assert_eq!(out.data_type(), array.data_type());
            assert_eq!(out.null_count(), 3);
        }
        let numbers: Arc<dyn Array> = Arc::new(Int64Array::from(vec![1, 2]));
        let out = invoke(&mask_null(), ColumnarValue::Array(numbers), &[])
            .unwrap()
            .into_array(2)
            .unwrap();
        assert_eq!(out.data_type(), &DataType::Int64);
        assert_eq!(out.null_count(), 2);
    }
}
