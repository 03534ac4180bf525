//! Property tests of the masks: masked values fit their declared types, NULL
//! stays NULL, hashing is deterministic, `show_last` reveals at most *n*
//! characters, memoized = unmemoized, dictionary = plain; reversible and
//! format-preserving values round-trip through `VEIL_UNMASK` for admitted
//! columns and never for others, and FF1 keeps length and alphabet.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{Int32Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;
use proptest::prelude::*;

use crate::strings::test_util::{invoke, strings};

fn lit(s: &str) -> ScalarValue {
    ScalarValue::Utf8(Some(s.to_string()))
}

fn run(
    udf: &datafusion::logical_expr::ScalarUDF,
    array: ArrayRef,
    params: &[ScalarValue],
) -> ArrayRef {
    let n = array.len();
    invoke(udf, ColumnarValue::Array(array), params)
        .expect("mask runs")
        .into_array(n)
        .expect("array")
}

fn values() -> impl Strategy<Value = Vec<Option<String>>> {
    prop::collection::vec(prop::option::weighted(0.8, "\\PC{0,24}"), 0..40)
}

fn plain(v: &[Option<String>]) -> ArrayRef {
    Arc::new(StringArray::from(
        v.iter().map(|s| s.as_deref()).collect::<Vec<_>>(),
    ))
}

fn dictionary(v: &[Option<String>]) -> ArrayRef {
    Arc::new(
        v.iter()
            .map(|s| s.as_deref())
            .collect::<DictionaryArray<Int32Type>>(),
    )
}

/// Every string mask with its parameters for a `VARCHAR(n)` column.
fn string_masks(n: u32) -> Vec<(datafusion::logical_expr::ScalarUDF, Vec<ScalarValue>)> {
    let ty = lit(&format!("VARCHAR({n})"));
    vec![
        (
            (*crate::mask_hash::mask_hash("k")).clone(),
            vec![lit("DB.S.T"), ty.clone()],
        ),
        (
            (*crate::mask_regex::mask_regex(64)).clone(),
            vec![lit("[aeiou]"), lit("**"), ty.clone()],
        ),
        (
            (*crate::mask_show_first::mask_show_first()).clone(),
            vec![lit("2"), ty.clone()],
        ),
        (
            (*crate::mask_show_last::mask_show_last()).clone(),
            vec![lit("3"), ty.clone()],
        ),
        (
            (*crate::mask_constant::mask_constant()).clone(),
            vec![lit("REDACTED-CONSTANT"), ty],
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn masked_strings_fit_and_keep_nulls(v in values(), n in 1u32..12) {
        for (udf, params) in string_masks(n) {
            let out = strings(&run(&udf, plain(&v), &params));
            for (input, output) in v.iter().zip(&out) {
                match output {
                    Some(s) => prop_assert!(s.chars().count() <= n as usize, "{} gave {:?} for VARCHAR({})", udf.name(), s, n),
                    None => prop_assert!(input.is_none() || udf.name() == "veil_mask_null", "{} turned a value into NULL", udf.name()),
                }
                if input.is_none() && udf.name() != "veil_mask_constant" {
                    prop_assert!(output.is_none(), "{} turned NULL into {:?}", udf.name(), output);
                }
            }
        }
    }

    #[test]
    fn dictionary_and_plain_agree(v in values(), n in 1u32..70) {
        for (udf, params) in string_masks(n) {
            let a = strings(&run(&udf, plain(&v), &params));
            let b = strings(&run(&udf, dictionary(&v), &params));
            prop_assert_eq!(a, b, "{}", udf.name());
        }
    }

    #[test]
    fn hash_is_deterministic_and_equal_inputs_hash_equally(v in values()) {
        let udf = crate::mask_hash::mask_hash("k");
        let params = [lit("DB.S.T"), lit("VARCHAR(64)")];
        let doubled: Vec<Option<String>> = v.iter().chain(v.iter()).cloned().collect();
        let out = strings(&run(&udf, plain(&doubled), &params));
        let (first, second) = out.split_at(v.len());
        prop_assert_eq!(first, second);
        for (input, output) in v.iter().zip(first) {
            if let (Some(i), Some(o)) = (input, output) {
                prop_assert_eq!(o, &crate::mask_hash::reference_hash("k", "DB.S.T", i, 64));
            }
        }
    }

    #[test]
    fn show_last_reveals_at_most_n(v in values(), keep in 0usize..6) {
        let udf = crate::mask_show_last::mask_show_last();
        let out = strings(&run(&udf, plain(&v), &[lit(&keep.to_string()), lit("STRING")]));
        for (input, output) in v.iter().zip(&out) {
            if let (Some(i), Some(o)) = (input, output) {
                let revealed = i.chars().zip(o.chars()).filter(|(a, b)| a == b && (a.is_alphanumeric())).count();
                let total = i.chars().count();
                // Characters equal to their class letter (e.g. an 'x') may coincide.
                let coincidences = i.chars().take(total.saturating_sub(keep)).filter(|c| matches!(c, 'X' | 'x' | 'n')).count();
                prop_assert!(revealed <= keep + coincidences, "{:?} -> {:?}", i, o);
            }
        }
    }

    #[test]
    fn memoized_and_unmemoized_regex_agree(v in values()) {
        let params = [lit("^(\\w)(\\w*)"), lit("$1***"), lit("VARCHAR(20)")];
        let memo = crate::mask_regex::mask_regex(16);
        let plain_udf = crate::mask_regex::mask_regex(0);
        let repeated: Vec<Option<String>> = v.iter().chain(v.iter()).cloned().collect();
        let a = strings(&run(&memo, plain(&repeated), &params));
        let b = strings(&run(&plain_udf, plain(&repeated), &params));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn rounded_numbers_fit_precision(v in prop::collection::vec(prop::option::of(-10_000i64..10_000), 0..40), step in 1i64..500, p in 1u8..5) {
        let udf = crate::mask_round::mask_round();
        let array: ArrayRef = Arc::new(Int64Array::from(v.clone()));
        let out = run(&udf, array, &[lit(&step.to_string()), lit(&format!("NUMBER({p},0)"))]);
        let out = out.as_primitive::<Int64Type>();
        let limit = 10i64.pow(u32::from(p)) - 1;
        for (i, input) in v.iter().enumerate() {
            match input {
                None => prop_assert!(out.is_null(i)),
                Some(_) => {
                    let r = out.value(i);
                    prop_assert!(r.abs() <= limit, "{} exceeds NUMBER({},0)", r, p);
                    prop_assert!(r % step == 0 || r.abs() == limit / step * step, "{} is not a multiple of {}", r, step);
                }
            }
        }
    }

    #[test]
    fn encrypted_values_round_trip_only_for_admitted_columns(v in values(), fpe_values in prop::collection::vec(prop::option::weighted(0.8, "[0-9A-Za-z .@-]{0,24}"), 0..40)) {
        use crate::unmask::{UnmaskGrant, UnmaskKind, column_key, veil_unmask};
        let grant = |kind, policy: &str| UnmaskGrant { kind, scope: "DB.S.T".into(), policy: policy.into() };
        let admitted = veil_unmask("k", std::collections::HashMap::from([
            (column_key("DB", "S", "T", "R"), grant(UnmaskKind::Reversible, "p")),
            (column_key("DB", "S", "T", "F"), grant(UnmaskKind::FormatPreserving, "f")),
        ]));
        // Admitted to other columns only: the same tokens never decrypt.
        let others = veil_unmask("k", std::collections::HashMap::from([
            (column_key("DB", "S", "T", "OTHER"), grant(UnmaskKind::Reversible, "p")),
        ]));
        let cases = [
            (crate::mask_reversible::mask_reversible("k"), "p", "DB.S.T.R", &v),
            (crate::mask_fpe::mask_fpe("k", 16), "f", "DB.S.T.F", &fpe_values),
        ];
        for (mask, policy, column, input) in cases {
            let masked = run(&mask, plain(input), &[lit("DB.S.T"), lit(policy), lit("STRING")]);
            let back = strings(&run(&admitted, Arc::clone(&masked), &[lit(column)]));
            let denied = strings(&run(&others, Arc::clone(&masked), &[lit(column)]));
            let masked = strings(&masked);
            for ((i, m), (b, d)) in input.iter().zip(&masked).zip(back.iter().zip(&denied)) {
                prop_assert!(d.is_none(), "{} unmasked for a user not admitted", column);
                match (i, m) {
                    (None, _) => prop_assert!(m.is_none() && b.is_none()),
                    // FF1 refuses a short class: NULL, and NULL back.
                    (Some(_), None) => prop_assert!(mask.name() == "veil_mask_fpe" && b.is_none()),
                    (Some(i), Some(_)) => prop_assert_eq!(b.as_deref(), Some(i.as_str())),
                }
            }
        }
    }

    #[test]
    fn fpe_keeps_length_and_alphabet(v in "[0-9A-Za-z .@é-]{0,30}") {
        let cipher = crate::mask_fpe::FpeCipher::derive("k", "DB.S.T", "f").expect("cipher");
        let digits = v.chars().filter(char::is_ascii_digit).count();
        let letters = v.chars().filter(char::is_ascii_alphabetic).count();
        match cipher.encrypt(&v) {
            None => prop_assert!((1..crate::mask_fpe::MIN_DIGITS).contains(&digits) || (1..crate::mask_fpe::MIN_LETTERS).contains(&letters)),
            Some(e) => {
                prop_assert_eq!(e.chars().count(), v.chars().count());
                for (a, b) in v.chars().zip(e.chars()) {
                    prop_assert_eq!(a.is_ascii_digit(), b.is_ascii_digit());
                    prop_assert_eq!(a.is_ascii_lowercase(), b.is_ascii_lowercase());
                    prop_assert_eq!(a.is_ascii_uppercase(), b.is_ascii_uppercase());
                    if !a.is_ascii_alphanumeric() {
                        prop_assert_eq!(a, b);
                    }
                }
                prop_assert_eq!(cipher.decrypt(&e), Some(v.clone()));
            }
        }
    }
}
