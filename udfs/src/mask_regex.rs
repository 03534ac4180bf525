//! `veil_mask_regex(value, pattern, replacement, declared_type)`: every match
//! of `pattern` (RE2-style syntax, the `regex` crate) is replaced by
//! `replacement` (`$1`, `${name}` refer to groups), then fitted (SPEC rule 19).
//!
//! Patterns with capture groups cost microseconds per value; their results go
//! through the function's bounded [`MaskMemo`]. Compiled patterns are cached
//! too, so a pattern is compiled once per engine, not once per batch.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{HashMap, Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

use crate::fit::push_truncated;
use crate::memo::MaskMemo;
use crate::strings::{
    apply_to_first, literal_str, literal_type, map_strings, max_chars, string_return_type,
};

/// Regex replacement mask with a bounded memo.
pub struct MaskRegexFunc {
    signature: Signature,
    memo: Option<Arc<MaskMemo>>,
    compiled: Mutex<HashMap<String, Arc<Regex>>>,
}

impl std::fmt::Debug for MaskRegexFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskRegexFunc")
            .field("memo", &self.memo)
            .finish()
    }
}

impl PartialEq for MaskRegexFunc {
    fn eq(&self, other: &Self) -> bool {
        // Instances are interchangeable only if they share a memo.
        match (&self.memo, &other.memo) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for MaskRegexFunc {}

impl std::hash::Hash for MaskRegexFunc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "veil_mask_regex".hash(state);
        self.memo.is_some().hash(state);
    }
}

impl MaskRegexFunc {
    /// A regex mask; `memo_capacity == 0` disables memoization.
    pub fn new(memo_capacity: usize) -> Self {
        Self {
            signature: Signature::any(4, Volatility::Immutable),
            memo: (memo_capacity > 0).then(|| Arc::new(MaskMemo::new(memo_capacity))),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    fn regex(&self, pattern: &str) -> Result<Arc<Regex>> {
        let mut compiled = match self.compiled.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(r) = compiled.get(pattern) {
            return Ok(Arc::clone(r));
        }
        let regex = match Regex::new(pattern) {
            Ok(r) => Arc::new(r),
            Err(e) => return exec_err!("regex mask pattern '{pattern}' is invalid: {e}"),
        };
        if compiled.len() > 1024 {
            compiled.clear();
        }
        compiled.insert(pattern.to_string(), Arc::clone(&regex));
        Ok(regex)
    }
}

/// Whether a pattern is costly enough per value to memoize: capture groups
/// referenced by the replacement, or a long pattern.
pub fn worth_memoizing(regex: &Regex, replacement: &str) -> bool {
    (regex.captures_len() > 1 && replacement.contains('$')) || regex.as_str().len() > 48
}

impl ScalarUDFImpl for MaskRegexFunc {
    fn name(&self) -> &str {
        "veil_mask_regex"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        string_return_type("regex", arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let pattern = literal_str(&args.args, 1, "pattern")?;
        let replacement = literal_str(&args.args, 2, "replacement")?;
        let declared = literal_type(&args.args, 3)?;
        let max = max_chars(declared);
        let regex = self.regex(&pattern)?;
        let memo = self
            .memo
            .as_ref()
            .filter(|_| worth_memoizing(&regex, &replacement));
        let policy: Arc<str> = Arc::from(format!("{pattern}\u{0}{replacement}\u{0}{declared}"));
        apply_to_first(&args.args, |array| {
            map_strings(array, &mut |value, out| {
                match memo {
                    Some(memo) => {
                        let masked = memo.get_or_compute(&policy, value, |v| {
                            let mut s = String::new();
                            push_truncated(
                                &mut s,
                                &regex.replace_all(v, replacement.as_str()),
                                max,
                            );
                            Some(s)
                        });
                        if let Some(m) = masked {
                            out.push_str(&m);
                        }
                    }
                    None => {
                        push_truncated(out, &regex.replace_all(value, replacement.as_str()), max)
                    }
                }
                true
            })
        })
    }
}

/// The `veil_mask_regex` UDF with a memo of `memo_capacity` values.
pub fn mask_regex(memo_capacity: usize) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(MaskRegexFunc::new(memo_capacity)))
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
    fn regex_replaces_every_match_and_fits() {
        for memo in [0, 100] {
            check_all_layouts(
                &mask_regex(memo),
                &[Some("call 555-1234 or 555-9876"), None, Some("none")],
                &[lit(r"\d"), lit("#"), lit("VARCHAR(12)")],
                &[Some("call ###-###"), None, Some("none")],
            );
        }
    }

    #[test]
    fn regex_capture_groups_are_memoized_identically() {
        let params = [lit(r"^([^@]+)@(.+)$"), lit("***@$2"), lit("VARCHAR(50)")];
        let input = [
            Some("alice@corp.com"),
            Some("bob@x.org"),
            Some("alice@corp.com"),
            None,
        ];
        let expected = [
            Some("***@corp.com"),
            Some("***@x.org"),
            Some("***@corp.com"),
            None,
        ];
        check_all_layouts(&mask_regex(0), &input, &params, &expected);
        check_all_layouts(&mask_regex(100), &input, &params, &expected);
    }

    #[test]
    fn invalid_pattern_is_an_error_not_a_passthrough() {
        let udf = mask_regex(10);
        let out = crate::strings::test_util::invoke(
            &udf,
            ColumnarValue::Scalar(lit("x")),
            &[lit("("), lit("y"), lit("VARCHAR(5)")],
        );
        assert!(out.is_err());
    }
}
