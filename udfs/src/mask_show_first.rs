//! `veil_mask_show_first(value, n, declared_type)`: keeps the first *n*
//! characters; letters become `X`/`x`, digits `n`, other characters stay
//! (SPEC rule 20), then fitted to the declared type.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::mask_show::show_into;
use crate::strings::{
    apply_to_first, literal_str, literal_type, map_strings, max_chars, string_return_type,
};

/// Partial mask that shows the first *n* characters.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskShowFirstFunc {
    signature: Signature,
}

impl Default for MaskShowFirstFunc {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskShowFirstFunc {
    fn name(&self) -> &str {
        "veil_mask_show_first"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type("show_first", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let keep_text = literal_str(&args.args, 1, "character count")?;
        let Ok(keep) = keep_text.parse::<usize>() else {
            return exec_err!("show_first needs a non-negative character count, got '{keep_text}'");
        };
        let max = max_chars(literal_type(&args.args, 2)?);
        apply_to_first(&args.args, |array| {
            map_strings(array, &mut |value, out| {
                show_into(value, keep, true, max, out);
                true
            })
        })
    }
}

/// The `veil_mask_show_first` UDF.
pub fn mask_show_first() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskShowFirstFunc::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::check_all_layouts;
    use datafusion::common::ScalarValue;

    #[test]
    fn show_first_masks_the_rest() {
        check_all_layouts(
            &mask_show_first(),
            &[Some("alice@x.com"), None, Some("Ünïcode9")],
            &[
                ScalarValue::Int64(Some(3)),
                ScalarValue::Utf8(Some("VARCHAR(20)".into())),
            ],
            &[Some("alixx@x.xxx"), None, Some("Ünïxxxxn")],
        );
    }
}
