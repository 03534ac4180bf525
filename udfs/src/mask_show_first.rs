//! `veil_mask_show_first(value, n, declared_type)`: keeps the first *n*
//! characters; letters become `X`/`x`, digits `n`, other characters stay
//! (SPEC rule 20), then fitted to the declared type.

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

use crate::mask_show::MaskShowFunc;

/// The `veil_mask_show_first` UDF.
pub fn mask_show_first() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskShowFunc::new(true)))
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
