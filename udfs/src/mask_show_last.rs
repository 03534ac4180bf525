//! `veil_mask_show_last(value, n, declared_type)`: keeps the last *n*
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

/// Partial mask that shows the last *n* characters.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskShowLastFunc {
    signature: Signature,
}

impl Default for MaskShowLastFunc {
    fn default() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskShowLastFunc {
    fn name(&self) -> &str {
        "veil_mask_show_last"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type("show_last", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let keep_text = literal_str(&args.args, 1, "character count")?;
        let Ok(keep) = keep_text.parse::<usize>() else {
            return exec_err!("show_last needs a non-negative character count, got '{keep_text}'");
        };
        let max = max_chars(literal_type(&args.args, 2)?);
        apply_to_first(&args.args, |array| {
            map_strings(array, &mut |value, out| {
                show_into(value, keep, false, max, out);
                true
            })
        })
    }
}

/// The `veil_mask_show_last` UDF.
pub fn mask_show_last() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskShowLastFunc::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::test_util::check_all_layouts;
    use datafusion::common::ScalarValue;

    #[test]
    fn show_last_masks_ssn() {
        check_all_layouts(
            &mask_show_last(),
            &[Some("111-11-1111"), None, Some("Zoë-42")],
            &[
                ScalarValue::Int64(Some(4)),
                ScalarValue::Utf8(Some("VARCHAR(11)".into())),
            ],
            &[Some("nnn-nn-1111"), None, Some("Xxë-42")],
        );
    }

    #[test]
    fn show_last_fits_declared_length() {
        check_all_layouts(
            &mask_show_last(),
            &[Some("abcdef")],
            &[
                ScalarValue::Int64(Some(2)),
                ScalarValue::Utf8(Some("VARCHAR(3)".into())),
            ],
            &[Some("xxx")],
        );
    }
}
