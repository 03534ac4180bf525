//! `veil_mask_show_last(value, n, declared_type)`: keeps the last *n*
//! characters; letters become `X`/`x`, digits `n`, other characters stay
//! (SPEC rule 20), then fitted to the declared type.

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

use crate::mask_show::MaskShowFunc;

/// The `veil_mask_show_last` UDF.
pub fn mask_show_last() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskShowFunc::new(false)))
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
